//! Test support: a fresh database per test on either engine, a role or the whole stack
//! on a loopback port, the binary as a child process, and helpers for clients and rich
//! gRPC errors.

#![allow(dead_code)]

pub mod app;
pub mod fake_kakao;
pub mod process;
pub mod stack;

use std::sync::Arc;

use pos_common::{
    auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, SigningKey, TokenIssuer},
    clock,
    ephemeral::{self, MemoryStore, SharedEphemeral},
    events::{LocalBus, RedisBus, SharedEventBus},
    storage::Database,
};
use pos_proto::v1::{self as pb, user_service_client::UserServiceClient};
use sqlx::{Connection, Executor, PgConnection};
use tonic::{Request, Status, metadata::MetadataValue, service::Interceptor, transport::Channel};
use tonic_types::StatusExt;

/// Which database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Engine)` test once per engine, as `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::support::Engine::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::support::Engine::Postgres).await
                }
            )*
        }
    };
}

pub fn admin_url() -> String {
    std::env::var("POS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// The run id xtask sets so it can sweep what a crashed test left behind.
pub fn run_id() -> String {
    std::env::var("POS_TEST_RUN_ID").unwrap_or_else(|_| "pos_t_local".to_string())
}

/// A database that exists for one test only.
pub enum TestDb {
    Sqlite { dir: tempfile::TempDir },
    Postgres { name: String },
}

impl TestDb {
    pub async fn create(engine: Engine) -> (Self, Database) {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let db = Database::sqlite_in_dir(dir.path(), "test.db")
                    .await
                    .expect("open SQLite");
                (Self::Sqlite { dir }, db)
            }
            Engine::Postgres => {
                let name = format!(
                    "{}_{}",
                    run_id(),
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                let admin = admin_url();
                let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin} is required (set POS_TEST_DATABASE_URL): {e}")
                });
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let url = database_url(&admin, &name);
                let db = Database::connect(&url)
                    .await
                    .expect("connect to test database");
                (Self::Postgres { name }, db)
            }
        }
    }

    /// The URL a separate process (the `pos` binary) can open this database with.
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite { dir } => format!("sqlite://{}", dir.path().join("test.db").display()),
            Self::Postgres { name } => database_url(&admin_url(), name),
        }
    }

    pub async fn drop_database(&self) {
        if let Self::Postgres { name } = self
            && let Ok(mut conn) = PgConnection::connect(&admin_url()).await
        {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// `admin` with its database path replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut url = format!("{}/{}", &base[..host_end], name);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// The shared state a test of `engine` runs with: real Redis beside PostgreSQL (under
/// this run's key prefix), in memory beside SQLite.
pub async fn shared_state(engine: Engine) -> SharedEphemeral {
    match engine {
        Engine::Sqlite => Arc::new(MemoryStore::new(clock::system())),
        Engine::Postgres => ephemeral::connect(Some(&redis_url()), &redis_prefix())
            .await
            .expect("Redis must be reachable for the test suite"),
    }
}

/// The event bus replicas share: Redis under a prefix of this run on PostgreSQL (so two
/// replicas of a role hear each other across it), in memory on SQLite.
pub async fn event_bus(engine: Engine) -> SharedEventBus {
    match engine {
        Engine::Sqlite => Arc::new(LocalBus::new()),
        Engine::Postgres => Arc::new(
            RedisBus::connect(&redis_url(), &redis_prefix())
                .await
                .expect("Redis must be reachable for the test suite"),
        ),
    }
}

pub fn redis_url() -> String {
    std::env::var("POS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix of this run, unique to the caller.
pub fn redis_prefix() -> String {
    format!("{}:{}", run_id(), uuid::Uuid::new_v4().simple())
}

/// Adds a bearer token to every call.
#[derive(Clone)]
pub struct Bearer(pub Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// `message` as a request carrying `token` (for calls without an interceptor, such as
/// straight to a role in the same process).
pub fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

/// An authorization header value for `token`.
pub fn bearer(token: &str) -> Bearer {
    Bearer(Some(
        format!("Bearer {token}").parse().expect("ascii token"),
    ))
}

/// A fresh issuer with the default issuer and audience.
pub fn new_issuer() -> TokenIssuer {
    TokenIssuer::new(
        Arc::new(SigningKey::generate()),
        DEFAULT_ISSUER,
        DEFAULT_AUDIENCE,
    )
}

/// The `ErrorInfo.reason` of a failed call.
pub fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// The fields named by the `BadRequest` violations of a failed call.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts a call failed with `code` and `reason`.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: tonic::Code,
    expected_reason: &str,
) -> Status {
    let status = result.expect_err("call should have failed");
    assert_eq!(status.code(), code, "status: {status:?}");
    assert_eq!(reason(&status), expected_reason, "status: {status:?}");
    status
}

/// Signs a new owner up through `channel` (the edge) with the development provider:
/// login gives a ticket, SignUp spends it. Returns the response (user, store, tokens).
pub async fn dev_signup(
    channel: Channel,
    email: &str,
    store_name: &str,
    grade: pb::PosGrade,
) -> pb::SignUpResponse {
    let mut users = UserServiceClient::new(channel);
    let login = users
        .login_with_provider_token(pb::LoginWithProviderTokenRequest {
            provider_token: Some(pb::ProviderToken {
                provider: "dev".into(),
                access_token: email.into(),
            }),
        })
        .await
        .expect("login")
        .into_inner();
    let Some(pb::login_result::Result::SignupTicket(ticket)) = login.result.and_then(|r| r.result)
    else {
        panic!("a new owner gets a signup ticket");
    };
    users
        .sign_up(pb::SignUpRequest {
            identity: Some(pb::sign_up_request::Identity::SignupTicket(ticket.ticket)),
            store_name: store_name.into(),
            pos_grade: grade as i32,
            settlement_day: 10,
        })
        .await
        .expect("sign up")
        .into_inner()
}

/// A fresh signing key written as PEM into `dir`, its JWKS beside it, and an issuer
/// holding it: what a Kubernetes Secret and ConfigMap would mount.
pub fn key_files(dir: &std::path::Path) -> (TokenIssuer, std::path::PathBuf, std::path::PathBuf) {
    let key = SigningKey::generate();
    let key_file = dir.join("signing-key.pem");
    std::fs::write(&key_file, key.to_pkcs8_pem()).expect("write key");
    let issuer = TokenIssuer::new(Arc::new(key), DEFAULT_ISSUER, DEFAULT_AUDIENCE);
    let jwks_file = dir.join("jwks.json");
    std::fs::write(
        &jwks_file,
        serde_json::to_string(&issuer.jwks()).expect("json"),
    )
    .expect("write jwks");
    (issuer, key_file, jwks_file)
}

/// An instant written as RFC 3339 in a test.
pub fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().expect("a test instant")
}

/// A date written as YYYY-MM-DD in a test.
pub fn date(text: &str) -> chrono::NaiveDate {
    text.parse().expect("a test date")
}
