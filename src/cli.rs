//! The command line: one binary, a subcommand per role (like `thanos query|store|...`).

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use pos_common::{
    auth::SigningKey,
    config::{AuthArgs, DatabaseArgs, EphemeralArgs, TelemetryArgs},
    ephemeral::MemoryStore,
    storage::Db,
};
use pos_edge::EdgeConfig;
use pos_user::{
    provider::{DevProvider, Kakao, KakaoConfig, Providers},
    tokens::TokenLifetimes,
};

use crate::{
    demo,
    stack::{self, StackConfig},
    startup::{self, MAX_MESSAGE_BYTES, Running},
};

#[derive(Debug, Parser)]
#[command(
    name = "pos",
    version,
    about = "POS settlement mesh: one binary, many roles"
)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process on SQLite and in-memory state: the quickest way to try it.
    Up(Box<UpArgs>),
    /// Runs one role, for Kubernetes.
    Serve(Box<ServeArgs>),
    /// Applies database migrations and exits.
    Migrate(MigrateArgs),
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Address to serve gRPC, gRPC-web, health and reflection on.
    #[arg(long, env = "POS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the SQLite databases and the signing key live.
    #[arg(long, env = "POS_DATA_DIR", default_value = "./pos-data")]
    pub data_dir: PathBuf,
    /// Seed a demo owner, store, menu and tablets, and write demo.json with their tokens.
    #[arg(long)]
    pub demo: bool,
    /// Browser origins allowed to call (CORS), comma-separated; `*` allows any.
    #[arg(
        long,
        env = "POS_CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "*"
    )]
    pub cors_allowed_origins: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub shutdown: ShutdownArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IdentityArgs {
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
    /// Redirect URIs StartOAuthLogin accepts, comma-separated.
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

impl IdentityArgs {
    pub(crate) fn providers(&self, dev: bool) -> anyhow::Result<Providers> {
        let mut providers = Providers::default();
        if let Some(client_id) = &self.kakao_client_id {
            let kakao = Kakao::new(KakaoConfig {
                authorize_url: self.kakao_authorize_url.clone(),
                token_url: self.kakao_token_url.clone(),
                profile_url: self.kakao_profile_url.clone(),
                client_id: client_id.clone(),
                client_secret: self.kakao_client_secret.clone(),
            })
            .map_err(anyhow::Error::msg)?;
            providers = providers.with("kakao", Arc::new(kakao));
        }
        if dev || self.dev_provider {
            tracing::warn!(
                "DEVELOPMENT identity provider \"dev\" is enabled: it trusts any e-mail address"
            );
            providers = providers.with("dev", Arc::new(DevProvider));
        }
        Ok(providers)
    }

    pub(crate) fn lifetimes(&self) -> TokenLifetimes {
        TokenLifetimes {
            access_secs: self.access_token_ttl_secs,
            refresh_secs: self.refresh_token_ttl_secs,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Calls each principal (or anonymous IP) may make per minute through the edge.
    #[arg(long, env = "POS_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,
    /// Deadline the edge gives unary calls that set none, in seconds.
    #[arg(long, env = "POS_DEFAULT_DEADLINE_SECS", default_value_t = 30)]
    pub default_deadline_secs: u64,
}

impl LimitArgs {
    pub(crate) fn edge_config(&self, cors_allowed_origins: Vec<String>) -> EdgeConfig {
        EdgeConfig {
            cors_allowed_origins,
            rate_limit_per_minute: self.rate_limit_per_minute,
            default_deadline: Duration::from_secs(self.default_deadline_secs),
            max_message_bytes: MAX_MESSAGE_BYTES,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownArgs {
    /// Seconds a stopping server waits for in-flight calls before exiting anyway.
    #[arg(
        long = "shutdown-grace-secs",
        env = "POS_SHUTDOWN_GRACE_SECS",
        default_value_t = 10
    )]
    pub grace_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// StoreService and StoreInternalService.
    Store,
    /// UserService.
    User,
    /// The public entry: gRPC + grpc-web, CORS, auth policy, rate limits, routing.
    Edge,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    pub role: Role,
    #[arg(long, env = "POS_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Database URL (store and user roles): postgres://… or sqlite://….
    #[arg(long, env = "POS_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// PKCS#8 PEM Ed25519 signing key: signs tokens (user) and tablet credentials (store);
    /// also this role's service token for internal calls unless a service key is given.
    #[arg(long, env = "POS_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
    /// PKCS#8 PEM Ed25519 key that signs only service tokens (user, edge): the edge then
    /// needs no signing key at all.
    #[arg(long, env = "POS_SERVICE_KEY_FILE")]
    pub service_key_file: Option<PathBuf>,
    /// JWKS of the service keys (store): service tokens are then accepted only from them,
    /// and they are accepted for nothing else.
    #[arg(long, env = "POS_SERVICE_JWKS_FILE")]
    pub service_jwks_file: Option<PathBuf>,
    /// Apply migrations before serving (otherwise run `pos migrate` first).
    #[arg(long, env = "POS_MIGRATE_ON_START")]
    pub migrate: bool,
    #[command(flatten)]
    pub ephemeral: EphemeralArgs,
    #[command(flatten)]
    pub peers: PeerArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Browser origins allowed to call the edge (CORS), comma-separated; `*` allows any.
    #[arg(long, env = "POS_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    #[command(flatten)]
    pub shutdown: ShutdownArgs,
}

/// Where the other roles are, as `http://host:port`.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerArgs {
    #[arg(long, env = "POS_STORE_ADDR")]
    pub store_addr: Option<String>,
    #[arg(long, env = "POS_USER_ADDR")]
    pub user_addr: Option<String>,
    #[arg(long, env = "POS_TRADE_ADDR")]
    pub trade_addr: Option<String>,
    #[arg(long, env = "POS_SETTLEMENT_ADDR")]
    pub settlement_addr: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MigrateTarget {
    Store,
    User,
    /// Every service (one shared database).
    All,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Whose tables to migrate.
    #[arg(long, value_enum, default_value = "all")]
    pub service: MigrateTarget,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up(*args).await,
        Command::Serve(args) => crate::serve::serve(*args).await,
        Command::Migrate(args) => migrate(args).await,
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let store_db = Db::sqlite_in_dir(&args.data_dir, "store.db").await?;
    let user_db = Db::sqlite_in_dir(&args.data_dir, "user.db").await?;
    let key = SigningKey::load_or_generate(&args.data_dir.join("signing-key.pem"))
        .context("cannot load or create the signing key in the data dir")?;
    let mut redirect_uris = args.identity.oauth_redirect_uris.clone();
    if redirect_uris.is_empty() {
        redirect_uris.push(format!("http://{}/oauth/callback", args.listen));
    }
    let stack = stack::start(StackConfig {
        listen: args.listen,
        store_db: store_db.clone(),
        user_db: user_db.clone(),
        ephemeral: Arc::new(MemoryStore::new()),
        signing_key: Arc::new(key),
        edge: args.limits.edge_config(args.cors_allowed_origins.clone()),
        providers: args.identity.providers(true)?,
        redirect_uris,
        lifetimes: args.identity.lifetimes(),
    })
    .await?;
    if args.demo {
        let seeded = demo::seed(&stack.store_repo, &stack.user_repo, &stack.issuer).await?;
        let path = args.data_dir.join("demo.json");
        let json = serde_json::to_string_pretty(&seeded)?;
        std::fs::write(&path, &json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{json}");
        println!("demo credentials written to {}", path.display());
    }
    let mut running = stack.running;
    announce(running.addr);
    wait_for_shutdown(&mut running, &args.shutdown).await?;
    store_db.close().await;
    user_db.close().await;
    Ok(())
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let db = Db::connect(&args.database.database_url).await?;
    if matches!(args.service, MigrateTarget::Store | MigrateTarget::All) {
        pos_store::migrate(&db).await?;
    }
    if matches!(args.service, MigrateTarget::User | MigrateTarget::All) {
        pos_user::migrate(&db).await?;
    }
    println!("migrations applied");
    db.close().await;
    Ok(())
}

/// The line scripts and tests wait for before calling the server.
pub(crate) fn announce(addr: SocketAddr) {
    use std::io::Write;
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
}

/// Runs until a fatal error or a stop signal, then stops within the grace period.
pub(crate) async fn wait_for_shutdown(
    running: &mut Running,
    shutdown: &ShutdownArgs,
) -> anyhow::Result<()> {
    tokio::select! {
        result = running.wait() => return result,
        _ = startup::shutdown_signal() => {}
    }
    let grace = Duration::from_secs(shutdown.grace_secs);
    running.stop_in_place(grace).await
}
