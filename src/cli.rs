//! The command line: one binary, a subcommand per role (like `thanos query|store|...`).

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use pos_common::{
    auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, SigningKey, TokenIssuer, Verifier},
    config::{AuthArgs, DatabaseArgs, TelemetryArgs},
    storage::Db,
};
use pos_store::StoreRepo;

use crate::{
    demo,
    startup::{self, ServerSpec, StoreRole},
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
    Up(UpArgs),
    /// Runs one role, for Kubernetes.
    Serve(ServeArgs),
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
    #[command(flatten)]
    pub shutdown: ShutdownArgs,
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
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    pub role: Role,
    #[arg(long, env = "POS_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// PKCS#8 PEM Ed25519 key to sign tablet credentials with (IssueDeviceToken).
    #[arg(long, env = "POS_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
    /// Apply migrations before serving (otherwise run `pos migrate` first).
    #[arg(long, env = "POS_MIGRATE_ON_START")]
    pub migrate: bool,
    #[command(flatten)]
    pub shutdown: ShutdownArgs,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Whose tables to migrate.
    #[arg(long, value_enum, default_value = "store")]
    pub service: Role,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => migrate(args).await,
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let db = Db::sqlite_in_dir(&args.data_dir, "store.db").await?;
    pos_store::migrate(&db).await?;
    let key = SigningKey::load_or_generate(&args.data_dir.join("signing-key.pem"))
        .context("cannot load or create the signing key in the data dir")?;
    let issuer = TokenIssuer::new(Arc::new(key), DEFAULT_ISSUER, DEFAULT_AUDIENCE);
    let role = StoreRole {
        repo: StoreRepo::new(db.clone()),
        verifier: Arc::new(issuer.verifier()),
        device_tokens: Some(issuer.clone()),
    };
    if args.demo {
        let seeded = demo::seed(&role.repo, &issuer).await?;
        let path = args.data_dir.join("demo.json");
        let json = serde_json::to_string_pretty(&seeded)?;
        std::fs::write(&path, &json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{json}");
        println!("demo credentials written to {}", path.display());
    }
    let mut running = startup::start(
        args.listen,
        ServerSpec {
            store: role,
            internal: false,
        },
    )
    .await?;
    announce(running.addr);
    wait_for_shutdown(&mut running, &args.shutdown).await?;
    db.close().await;
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let db = Db::connect(&args.database.database_url).await?;
    if args.migrate {
        pos_store::migrate(&db).await?;
    }
    let Some(jwks_file) = &args.auth.jwks_file else {
        bail!("POS_JWKS_FILE (--jwks-file) is required: the public keys that verify tokens");
    };
    let verifier =
        Verifier::from_jwks_file(jwks_file, &args.auth.jwt_issuer, &args.auth.jwt_audience)
            .map_err(anyhow::Error::msg)?;
    let device_tokens = match &args.signing_key_file {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read signing key {}", path.display()))?;
            let key = SigningKey::from_pkcs8_pem(&pem).map_err(anyhow::Error::msg)?;
            Some(TokenIssuer::new(
                Arc::new(key),
                &args.auth.jwt_issuer,
                &args.auth.jwt_audience,
            ))
        }
        None => None,
    };
    let role = StoreRole {
        repo: StoreRepo::new(db.clone()),
        verifier: Arc::new(verifier),
        device_tokens,
    };
    let mut running = startup::start(
        args.listen,
        ServerSpec {
            store: role,
            internal: true,
        },
    )
    .await?;
    announce(running.addr);
    wait_for_shutdown(&mut running, &args.shutdown).await?;
    db.close().await;
    Ok(())
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let db = Db::connect(&args.database.database_url).await?;
    match args.service {
        Role::Store => pos_store::migrate(&db).await?,
    }
    println!("migrations applied");
    db.close().await;
    Ok(())
}

/// The line scripts and tests wait for before calling the server.
fn announce(addr: SocketAddr) {
    use std::io::Write;
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
}

async fn wait_for_shutdown(
    running: &mut startup::Running,
    shutdown: &ShutdownArgs,
) -> anyhow::Result<()> {
    let trigger = running.take_shutdown();
    tokio::select! {
        result = running.wait() => return result,
        _ = startup::shutdown_signal() => {}
    }
    if let Some(trigger) = trigger {
        let _ = trigger.send(());
    }
    // In-flight calls get a grace period; idle keep-alive connections, which hyper may
    // wait on forever (hyperium/hyper#4170), do not hold the exit.
    let grace = std::time::Duration::from_secs(shutdown.grace_secs);
    match tokio::time::timeout(grace, running.wait()).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("in-flight calls still running after the grace period; exiting");
            Ok(())
        }
    }
}
