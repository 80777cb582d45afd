//! `pos up`: every role of the registry in one process behind the edge, on SQLite files
//! and in-memory state, with one signing key. The end-to-end tests and the benchmark
//! start exactly this (on port 0, over either database).

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use clap::{ArgMatches, Args, Command, FromArgMatches};
use pos_common::{
    auth::{
        DEFAULT_AUDIENCE, DEFAULT_ISSUER, KeyCache, Revocations, SigningKey, StaticJwks,
        TokenIssuer,
    },
    clock::SharedClock,
    ephemeral::SharedEphemeral,
    events::{LocalBus, SharedEventBus},
    metrics::rpc::RpcMetrics,
    peer::{LateBinding, ServiceCredential},
    role::{KeySource, PeerRole, RoleContext, Served},
    stopping::Stopping,
    storage::Database,
};
use pos_deny_list_sqlite::SqliteDenyList;

use crate::{
    flags::{MetricsFlags, ShutdownFlags, peer_roles},
    registry::{ROLES, RegisteredRole},
    startup::{self, Running},
};

/// `pos up`'s own flags.
#[derive(Debug, Clone, Args)]
pub struct UpFlags {
    /// Address to serve gRPC, grpc-web, health and reflection on.
    #[arg(long, env = "POS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the SQLite databases and the signing key live.
    #[arg(long, env = "POS_DATA_DIR", default_value = "./pos-data")]
    pub data_dir: PathBuf,
    /// Seed a demo owner, store, menu and tablets, and write demo.json with their tokens.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub metrics: MetricsFlags,
    #[command(flatten)]
    pub shutdown: ShutdownFlags,
}

/// `pos up`: its own flags and every role's.
pub fn command() -> Command {
    let command = UpFlags::augment_args(Command::new("up"));
    ROLES
        .iter()
        .fold(command, |command, role| role.own_flags(command))
        // A flag group's doc comment would otherwise become the command's description.
        .about(
            "Everything in one process on SQLite and in-memory state: the quickest way to try it",
        )
        .long_about(None)
}

/// Parses `pos up` flags from `args` (without the program name), as tests configure it.
pub fn matches(args: &[&str]) -> clap::error::Result<ArgMatches> {
    command().try_get_matches_from(std::iter::once("up").chain(args.iter().copied()))
}

/// Where the roles keep their tables.
pub enum Databases {
    /// One SQLite file per role in this directory (`store.db`, `user.db`, ...).
    SqliteIn(PathBuf),
    /// One database for every role: their tables and migration tables differ.
    Shared(Database),
}

/// What every role in the process shares.
pub struct Plumbing {
    pub listen: SocketAddr,
    pub databases: Databases,
    pub ephemeral: SharedEphemeral,
    /// The access-token deny-list (`pos up`: a file in the data directory).
    pub revocations: Revocations,
    /// Change notifications between the roles' replicas (one bus for the process, or
    /// Redis when tests run two replicas against it).
    pub events: SharedEventBus,
    pub signing_key: Arc<SigningKey>,
    pub clock: SharedClock,
}

/// A running all-in-one system.
pub struct Stack {
    pub running: Running,
    /// Signs tokens with the stack's key (demo credentials, tests).
    pub issuer: TokenIssuer,
    /// Every role that serves gRPC, as the others reach it in this process.
    pub peers: HashMap<&'static str, PeerRole>,
    /// Told when the stack starts to stop (every role of it shares one).
    pub stopping: Stopping,
    plumbing: Plumbing,
    keys: Arc<KeyCache>,
    /// Each role's database, by role name (one database may serve several).
    databases: HashMap<&'static str, Database>,
}

impl Plumbing {
    async fn database(&self, role: &dyn RegisteredRole) -> anyhow::Result<Option<Database>> {
        let Some(migrations) = role.needs().migrations else {
            return Ok(None);
        };
        let database = match &self.databases {
            Databases::SqliteIn(dir) => {
                Database::sqlite_in_dir(dir, &format!("{}.db", role.name())).await?
            }
            Databases::Shared(database) => database.clone(),
        };
        database
            .migrate(migrations)
            .await
            .with_context(|| format!("cannot migrate the {} role's tables", role.name()))?;
        Ok(Some(database))
    }
}

impl Stack {
    /// A context for `role` with this stack's plumbing and `peers`: how tests and the
    /// benchmark build a role of the stack once more (alone, or with a peer replaced).
    pub async fn context(
        &self,
        role: &dyn RegisteredRole,
        peers: HashMap<&'static str, PeerRole>,
    ) -> anyhow::Result<RoleContext> {
        context(
            &self.plumbing,
            &self.issuer,
            &self.keys,
            &self.stopping,
            role,
            peers,
            source_of(role, &self.databases),
        )
        .await
    }

    pub async fn stop(mut self, grace: std::time::Duration) -> anyhow::Result<()> {
        self.stopping.stop();
        self.running.stop_in_place(grace).await?;
        self.close_databases().await;
        Ok(())
    }

    async fn close_databases(&self) {
        for database in self.databases.values() {
            database.close().await;
        }
    }
}

/// The database of the role whose tables `role` reads, if that role is built already.
fn source_of(
    role: &dyn RegisteredRole,
    databases: &HashMap<&'static str, Database>,
) -> Option<Database> {
    role.needs()
        .reads_tables_of
        .and_then(|name| databases.get(name).cloned())
}

async fn context(
    plumbing: &Plumbing,
    issuer: &TokenIssuer,
    keys: &Arc<KeyCache>,
    stopping: &Stopping,
    role: &dyn RegisteredRole,
    peers: HashMap<&'static str, PeerRole>,
    source_database: Option<Database>,
) -> anyhow::Result<RoleContext> {
    Ok(RoleContext {
        database: plumbing.database(role).await?,
        source_database,
        shared_state: Some(plumbing.ephemeral.clone()),
        revocations: Some(plumbing.revocations.clone()),
        events: plumbing.events.clone(),
        keys: keys.clone(),
        key_source: Arc::new(StaticJwks(issuer.jwks())),
        published_keys: (role.needs().key_source == KeySource::Own).then(|| issuer.jwks()),
        service_keys: None,
        signing: Some(issuer.clone()),
        service_credential: Some(ServiceCredential::new(
            issuer.clone(),
            role.name(),
            plumbing.clock.clone(),
        )),
        peers,
        clock: plumbing.clock.clone(),
        listen: plumbing.listen,
        embedded: true,
        stopping: stopping.clone(),
    })
}

/// Starts every role, each after the roles it calls, and serves the edge on `listen`.
pub async fn start(plumbing: Plumbing, matches: &ArgMatches) -> anyhow::Result<Stack> {
    start_measured(plumbing, matches, None).await
}

/// [`start`], each role's calls recorded in `metrics` as a served role's are.
pub async fn start_measured(
    plumbing: Plumbing,
    matches: &ArgMatches,
    metrics: Option<RpcMetrics>,
) -> anyhow::Result<Stack> {
    let issuer = TokenIssuer::new(
        plumbing.signing_key.clone(),
        DEFAULT_ISSUER,
        DEFAULT_AUDIENCE,
    );
    let keys = Arc::new(
        KeyCache::new(
            Arc::new(StaticJwks(issuer.jwks())),
            DEFAULT_ISSUER,
            DEFAULT_AUDIENCE,
        )
        .await,
    );
    let stopping = Stopping::new();
    let mut peers: HashMap<&'static str, PeerRole> = HashMap::new();
    let mut unbound: HashMap<&'static str, Vec<LateBinding>> = HashMap::new();
    let mut databases = HashMap::new();
    let mut front = None;
    for role in ROLES {
        let wanted = peer_roles(*role);
        if let Some((missing, _)) = wanted
            .iter()
            .find(|(name, required)| *required && !peers.contains_key(name))
        {
            bail!(
                "the {} role calls the {missing} role, which must come before it in the registry",
                role.name()
            );
        }
        let mut reachable: HashMap<&'static str, PeerRole> = wanted
            .iter()
            .filter_map(|(name, _)| peers.get(name).map(|peer| (*name, peer.clone())))
            .collect();
        // Optional peers built later (a role that calls this one back) are bound once
        // they exist.
        for (name, _) in wanted.iter().filter(|(name, _)| !peers.contains_key(name)) {
            let Some(later) = crate::registry::role(name) else {
                continue;
            };
            let binding = LateBinding::default();
            reachable.insert(
                *name,
                PeerRole {
                    services: later.services(),
                    peer: binding.peer(),
                },
            );
            unbound.entry(*name).or_default().push(binding);
        }
        let source = source_of(*role, &databases);
        let context = context(
            &plumbing, &issuer, &keys, &stopping, *role, reachable, source,
        )
        .await?;
        if let Some(database) = &context.database {
            databases.insert(role.name(), database.clone());
        }
        let served = role
            .build(matches, context)
            .await
            .map_err(|err| anyhow::anyhow!(err))
            .with_context(|| format!("cannot start the {} role", role.name()))?;
        match served {
            Served::Grpc { services, auth } => {
                let peer = startup::in_process_measured(services, auth, metrics.clone());
                for binding in unbound.remove(role.name()).unwrap_or_default() {
                    binding.bind(peer.clone());
                }
                peers.insert(
                    role.name(),
                    PeerRole {
                        services: role.services(),
                        peer,
                    },
                );
            }
            Served::Front(door) if front.is_none() => front = Some(door),
            Served::Front(_) => bail!("two roles want to be the front door"),
        }
    }
    let Some(front) = front else {
        bail!("no role serves the front door");
    };
    let running = startup::serve_http(plumbing.listen, front).await?;
    Ok(Stack {
        running,
        issuer,
        peers,
        stopping,
        plumbing,
        keys,
        databases,
    })
}

/// `pos up [--demo]` from the command line.
pub async fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let flags = UpFlags::from_arg_matches(matches)?;
    let key = SigningKey::load_or_generate(&flags.data_dir.join("signing-key.pem"))
        .context("cannot load or create the signing key in the data dir")?;
    let deny_list = Arc::new(
        SqliteDenyList::open(
            &flags.data_dir,
            "revocations.db",
            pos_common::clock::system(),
        )
        .await
        .context("cannot open the deny-list (revocations.db) in the data dir")?,
    );
    let (rpc_metrics, _metrics_server) = startup::metrics(flags.metrics.metrics_listen).await?;
    let stack = start_measured(
        Plumbing {
            listen: flags.listen,
            databases: Databases::SqliteIn(flags.data_dir.clone()),
            ephemeral: Arc::new(pos_common::ephemeral::MemoryStore::new(
                pos_common::clock::system(),
            )),
            revocations: Revocations::in_list(deny_list.clone()),
            events: Arc::new(LocalBus::new()),
            signing_key: Arc::new(key),
            clock: pos_common::clock::system(),
        },
        matches,
        rpc_metrics,
    )
    .await?;
    if flags.demo {
        let seeded = crate::demo::seed(stack.running.addr, &stack.issuer).await?;
        let path = flags.data_dir.join("demo.json");
        let json = serde_json::to_string_pretty(&seeded)?;
        std::fs::write(&path, &json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{json}");
        println!("demo credentials written to {}", path.display());
    }
    let mut stack = stack;
    startup::announce(stack.running.addr);
    let stopping = stack.stopping.clone();
    startup::wait_for_shutdown(
        &mut stack.running,
        &stopping,
        flags.shutdown.drain(),
        flags.shutdown.grace(),
    )
    .await?;
    stack.close_databases().await;
    deny_list.close().await;
    Ok(())
}
