//! Test support: a fresh database per test on either backend, the real server on a
//! loopback port, authenticated clients, and helpers to read rich gRPC errors.

#![allow(dead_code)]

pub mod fake_kakao;
pub mod process;
pub mod stack;

use std::{net::SocketAddr, sync::Arc};

use pos::{
    roles,
    startup::{self, Running},
};
use pos_common::{
    auth::{
        Authenticator, DEFAULT_AUDIENCE, DEFAULT_ISSUER, KeyCache, SigningKey, StaticJwks,
        TokenIssuer,
    },
    storage::Db,
};
use pos_proto::v1::{
    self as pb, store_internal_service_client::StoreInternalServiceClient,
    store_service_client::StoreServiceClient,
};
use pos_store::StoreRepo;
use sqlx::{Connection, Executor};
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_types::StatusExt;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` test once per backend, as `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::support::Backend::Postgres).await
                }
            )*
        }
    };
}

fn admin_url() -> String {
    std::env::var("POS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// The run id xtask sets so it can sweep what a crashed test left behind.
fn run_id() -> String {
    std::env::var("POS_TEST_RUN_ID").unwrap_or_else(|_| "pos_t_local".to_string())
}

/// A database that exists for one test only.
pub enum TestDb {
    Sqlite { dir: tempfile::TempDir },
    Postgres { name: String },
}

impl TestDb {
    pub async fn create(backend: Backend) -> (Self, Db) {
        sqlx::any::install_default_drivers();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let db = Db::sqlite_in_dir(dir.path(), "test.db")
                    .await
                    .expect("open SQLite");
                (Self::Sqlite { dir }, db)
            }
            Backend::Postgres => {
                let name = format!(
                    "{}_{}",
                    run_id(),
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                let admin = admin_url();
                let mut conn = sqlx::AnyConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {admin} is required (set POS_TEST_DATABASE_URL): {e}")
                    });
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let url = database_url(&admin, &name);
                let db = Db::connect(&url).await.expect("connect to test database");
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
            && let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url()).await
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

/// An authorization header value for `token`.
pub fn bearer(token: &str) -> Bearer {
    Bearer(Some(
        format!("Bearer {token}").parse().expect("ascii token"),
    ))
}

pub type StoreClient = StoreServiceClient<InterceptedService<Channel, Bearer>>;
pub type InternalClient = StoreInternalServiceClient<InterceptedService<Channel, Bearer>>;

/// The real server on a loopback port over a fresh database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub issuer: TokenIssuer,
    pub repo: StoreRepo,
    pub backend: Backend,
    running: Running,
    db: Db,
    test_db: TestDb,
    channel: Channel,
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        let (test_db, db) = TestDb::create(backend).await;
        pos_store::migrate(&db).await.expect("migrate");
        let issuer = TokenIssuer::new(
            Arc::new(SigningKey::generate()),
            DEFAULT_ISSUER,
            DEFAULT_AUDIENCE,
        );
        let repo = StoreRepo::new(db.clone());
        let keys = KeyCache::new(
            Arc::new(StaticJwks(issuer.jwks())),
            DEFAULT_ISSUER,
            DEFAULT_AUDIENCE,
        )
        .await;
        let auth = Authenticator::new(Arc::new(keys), None);
        let services = roles::store(repo.clone(), Some(issuer.clone()));
        let running = startup::serve_role("127.0.0.1:0".parse().expect("addr"), services, auth)
            .await
            .expect("start server");
        let channel = Channel::from_shared(format!("http://{}", running.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Self {
            addr: running.addr,
            issuer,
            repo,
            backend,
            running,
            db,
            test_db,
            channel,
        }
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn store(&self, token: Option<&str>) -> StoreClient {
        let value = token.map(|t| format!("Bearer {t}").parse().expect("ascii token"));
        StoreServiceClient::with_interceptor(self.channel(), Bearer(value))
    }

    pub fn internal(&self) -> InternalClient {
        let token = self.issuer.service("test-suite");
        let value = Some(format!("Bearer {token}").parse().expect("ascii token"));
        StoreInternalServiceClient::with_interceptor(self.channel(), Bearer(value))
    }

    pub fn owner_token(&self, user_id: i64, store_id: Option<i64>) -> String {
        self.issuer.owner_access(user_id, store_id, 3600)
    }

    /// Creates a store for `owner_user_id` through the internal API; returns it and an
    /// owner token for it.
    pub async fn new_store(&self, owner_user_id: i64, grade: pb::PosGrade) -> (pb::Store, String) {
        let store = self
            .internal()
            .create_store_for_owner(pb::CreateStoreForOwnerRequest {
                owner_user_id,
                store_name: format!("Store {owner_user_id}"),
                pos_grade: grade as i32,
                settlement_day: 10,
            })
            .await
            .expect("create store")
            .into_inner()
            .store
            .expect("store");
        let token = self.owner_token(owner_user_id, Some(store.id));
        (store, token)
    }

    /// A product created through the public API.
    pub async fn new_product(
        &self,
        owner_token: &str,
        name: &str,
        category: pb::ProductCategory,
        price: i64,
        base_stock: i64,
    ) -> pb::Product {
        self.store(Some(owner_token))
            .create_product(pb::CreateProductRequest {
                name: name.to_string(),
                category: category as i32,
                price,
                base_stock,
            })
            .await
            .expect("create product")
            .into_inner()
            .product
            .expect("product")
    }

    /// A device token for a tablet of the store, issued through the public API.
    pub async fn device_token(&self, owner_token: &str, device_id: i64) -> String {
        self.store(Some(owner_token))
            .issue_device_token(pb::IssueDeviceTokenRequest { device_id })
            .await
            .expect("issue device token")
            .into_inner()
            .device_token
    }

    pub async fn stop(self) {
        self.running
            .stop(std::time::Duration::from_secs(5))
            .await
            .expect("stop server");
        self.db.close().await;
        self.test_db.drop_database().await;
    }
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
    let mut users = pos_proto::v1::user_service_client::UserServiceClient::new(channel);
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
