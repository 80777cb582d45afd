//! The user role: owners sign up and log in with a social provider (Kakao-compatible
//! OAuth2 with PKCE, or a provider access token), signup creates their store through the
//! store role, and tokens are EdDSA JWTs with rotating refresh families.

pub mod api;
pub mod provider;
pub mod sessions;
pub mod tokens;

use std::sync::Arc;

use async_trait::async_trait;
use pos_common::{
    clock::SharedClock,
    peer::with_service_token,
    role::{
        GrpcServices, KeySource, MAX_MESSAGE_BYTES, Missing, Needs, PeerNeeds, Requirement, Role,
        RoleContext, Served, StartError,
    },
    storage::{Database, Migrations},
};
use pos_proto::v1::{
    store_internal_service_client::StoreInternalServiceClient,
    user_service_server::UserServiceServer,
};
pub use pos_user_storage as storage;
use pos_user_storage::UserStorage;

pub use api::UserApi;
use provider::{DevProvider, Kakao, KakaoConfig, Providers};
use sessions::Sessions;
use tokens::{TokenLifetimes, Tokens};

/// The user role's migrations for both engines, tracked in `user_migrations`.
pub static MIGRATIONS: Migrations = Migrations {
    table: "user_migrations",
    postgres: pos_user_postgres::migrator,
    sqlite: pos_user_sqlite::migrator,
};

/// The user's storage on whichever engine `database` is.
pub fn open_storage(database: &Database, clock: SharedClock) -> Arc<dyn UserStorage> {
    match database {
        Database::Postgres(pool) => {
            Arc::new(pos_user_postgres::PgUserStorage::new(pool.clone(), clock))
        }
        Database::Sqlite(pool) => {
            Arc::new(pos_user_sqlite::SqliteUserStorage::new(pool.clone(), clock))
        }
    }
}

/// The user role's own flags: identity providers and token lifetimes.
#[derive(Debug, Clone, clap::Args)]
pub struct UserArgs {
    /// Kakao (or Kakao-compatible) OAuth client id; the provider "kakao" is off without it.
    #[arg(long, env = "POS_KAKAO_CLIENT_ID")]
    pub kakao_client_id: Option<String>,
    #[arg(long, env = "POS_KAKAO_CLIENT_SECRET")]
    pub kakao_client_secret: Option<String>,
    #[arg(
        long,
        env = "POS_KAKAO_AUTHORIZE_URL",
        default_value = "https://kauth.kakao.com/oauth/authorize"
    )]
    pub kakao_authorize_url: String,
    #[arg(
        long,
        env = "POS_KAKAO_TOKEN_URL",
        default_value = "https://kauth.kakao.com/oauth/token"
    )]
    pub kakao_token_url: String,
    #[arg(
        long,
        env = "POS_KAKAO_PROFILE_URL",
        default_value = "https://kapi.kakao.com/v2/user/me"
    )]
    pub kakao_profile_url: String,
    /// Redirect URIs StartOAuthLogin accepts, comma-separated (`pos up`: its own
    /// `/oauth/callback` when unset).
    #[arg(long, env = "POS_OAUTH_REDIRECT_URIS", value_delimiter = ',')]
    pub oauth_redirect_uris: Vec<String>,
    /// Enable the DEVELOPMENT identity provider "dev" (trusts any e-mail). Always on in `pos up`.
    #[arg(long, env = "POS_DEV_PROVIDER")]
    pub dev_provider: bool,
    #[arg(long, env = "POS_ACCESS_TOKEN_TTL_SECS", default_value_t = 3600)]
    pub access_token_ttl_secs: i64,
    #[arg(long, env = "POS_REFRESH_TOKEN_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub refresh_token_ttl_secs: i64,
}

impl UserArgs {
    fn providers(&self, embedded: bool) -> Result<Providers, StartError> {
        let mut providers = Providers::default();
        if let Some(client_id) = &self.kakao_client_id {
            let kakao = Kakao::new(KakaoConfig {
                authorize_url: self.kakao_authorize_url.clone(),
                token_url: self.kakao_token_url.clone(),
                profile_url: self.kakao_profile_url.clone(),
                client_id: client_id.clone(),
                client_secret: self.kakao_client_secret.clone(),
            })?;
            providers = providers.with("kakao", Arc::new(kakao));
        }
        if embedded || self.dev_provider {
            tracing::warn!(
                "DEVELOPMENT identity provider \"dev\" is enabled: it trusts any e-mail address"
            );
            providers = providers.with("dev", Arc::new(DevProvider));
        }
        Ok(providers)
    }
}

pub struct UserRole;

#[async_trait]
impl Role for UserRole {
    const NAME: &'static str = "user";
    const ABOUT: &'static str =
        "UserService: social login, signup, token pairs and the public keys";
    const SERVICES: &'static [&'static str] = &["pos.v1.UserService"];
    const NEEDS: Needs = Needs {
        migrations: Some(&MIGRATIONS),
        // Refresh families, login state, signup tickets and the deny-list must be seen by
        // every replica and by the edge.
        shared_state: Requirement::Required,
        signing_key: Requirement::Required,
        key_source: KeySource::Own,
        peers: PeerNeeds::Roles(&["store"]),
        reads_tables_of: None,
    };
    type Args = UserArgs;

    async fn build(args: UserArgs, context: RoleContext) -> Result<Served, StartError> {
        let missing = |what| Missing {
            role: Self::NAME,
            what,
        };
        let database = context.database.as_ref().ok_or(missing("a database"))?;
        let state = context
            .shared_state
            .clone()
            .ok_or(missing("shared state (POS_REDIS_URL)"))?;
        let issuer = context
            .signing
            .clone()
            .ok_or(missing("a signing key (POS_SIGNING_KEY_FILE)"))?;
        let credential = context.service_credential.clone().ok_or(missing(
            "a key for its service token (POS_SERVICE_KEY_FILE or POS_SIGNING_KEY_FILE)",
        ))?;
        let revocations = context
            .revocations
            .clone()
            .ok_or(missing("the access-token deny-list (POS_REDIS_URL)"))?;
        let published = context
            .published_keys
            .clone()
            .ok_or(missing("the public keys it publishes"))?;
        let store = context.peer("store", Self::NAME)?;
        let mut redirect_uris = args.oauth_redirect_uris.clone();
        if redirect_uris.is_empty() && context.embedded {
            redirect_uris.push(format!("http://{}/oauth/callback", context.listen));
        }
        let lifetimes = TokenLifetimes {
            access_secs: args.access_token_ttl_secs,
            refresh_secs: args.refresh_token_ttl_secs,
        };
        let auth = context.authenticator();
        let api = UserApi::new(
            open_storage(database, context.clock.clone()),
            args.providers(context.embedded)?,
            Sessions::new(state.clone()),
            Tokens::new(issuer, context.keys.clone(), state, revocations, lifetimes),
            StoreInternalServiceClient::new(with_service_token(store, &credential)),
            redirect_uris,
            published,
        );
        let mut services = GrpcServices::default();
        services.add(
            UserServiceServer::new(api)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        );
        Ok(Served::Grpc { services, auth })
    }
}
