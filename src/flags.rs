//! The flags shared by several roles, each group registered only on the roles whose
//! [`Needs`] call for it: `pos serve edge` has no `--database-url`, `pos serve store` no
//! `--redis-url` requirement. Every flag can also be set by its `POS_*` environment
//! variable; a flag wins.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use pos_common::role::{KeySource, Needs, PeerNeeds, Requirement};

use crate::registry::{ROLES, RegisteredRole};

/// Where a served role listens and how it stops.
#[derive(Debug, Clone, Args)]
pub struct ServeFlags {
    /// Address to serve on; port 0 picks a free port (printed as `listening on ADDR`).
    #[arg(long, env = "POS_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub metrics: MetricsFlags,
    #[command(flatten)]
    pub shutdown: ShutdownFlags,
}

/// Where Prometheus scrapes the process.
#[derive(Debug, Clone, Args)]
pub struct MetricsFlags {
    /// Address to serve Prometheus metrics on (`GET /metrics`), e.g. 0.0.0.0:9090; unset,
    /// no metrics are served.
    #[arg(long = "metrics-listen", env = "POS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Args)]
pub struct ShutdownFlags {
    /// Seconds a server told to stop keeps serving while its health says NOT_SERVING, so
    /// balancers that watch it move calls elsewhere before it stops accepting.
    #[arg(
        long = "shutdown-drain",
        env = "POS_SHUTDOWN_DRAIN",
        default_value_t = 0
    )]
    pub drain_secs: u64,
    /// Seconds a stopping server waits for in-flight calls before exiting anyway.
    #[arg(
        long = "shutdown-grace-secs",
        env = "POS_SHUTDOWN_GRACE_SECS",
        default_value_t = 10
    )]
    pub grace_secs: u64,
}

impl ShutdownFlags {
    pub fn drain(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.drain_secs)
    }

    pub fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.grace_secs)
    }
}

/// The role's database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseFlags {
    /// Database URL: postgres://user@host/db or sqlite://path/file.db.
    #[arg(long, env = "POS_DATABASE_URL")]
    pub database_url: String,
    /// Apply the role's migrations before serving (otherwise run `pos migrate` first).
    #[arg(long = "migrate", env = "POS_MIGRATE_ON_START")]
    pub migrate_on_start: bool,
}

/// State shared by replicas (Redis).
#[derive(Debug, Clone, Args)]
pub struct SharedStateFlags {
    /// Redis URL for state shared by replicas: logins, the deny-list, rate limits.
    #[arg(long, env = "POS_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this process writes.
    #[arg(long, env = "POS_REDIS_KEY_PREFIX", default_value = "pos")]
    pub redis_key_prefix: String,
}

/// What every token must say.
#[derive(Debug, Clone, Args)]
pub struct TokenFlags {
    /// Expected `iss` claim.
    #[arg(long, env = "POS_JWT_ISSUER", default_value = pos_common::auth::DEFAULT_ISSUER)]
    pub jwt_issuer: String,
    /// Expected `aud` claim.
    #[arg(long, env = "POS_JWT_AUDIENCE", default_value = pos_common::auth::DEFAULT_AUDIENCE)]
    pub jwt_audience: String,
    /// JWKS of the service keys: service tokens are then accepted only from them, and
    /// they are accepted for nothing else.
    #[arg(long, env = "POS_SERVICE_JWKS_FILE")]
    pub service_jwks_file: Option<PathBuf>,
}

/// Keys published by the user role, for every other role.
#[derive(Debug, Clone, Args)]
pub struct PublishedKeyFlags {
    /// JWKS file (`{"keys":[...]}`) with the Ed25519 public keys that verify tokens;
    /// without it they are fetched from the user role (POS_USER_ADDR).
    #[arg(long, env = "POS_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
}

/// Keys of the role that signs owner tokens.
#[derive(Debug, Clone, Args)]
pub struct OwnKeyFlags {
    /// Public keys retired from signing but still accepted until their tokens expire (key
    /// rotation): published beside the signing key's.
    #[arg(long, env = "POS_PREVIOUS_JWKS_FILE")]
    pub previous_jwks_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SigningFlags {
    /// PKCS#8 PEM Ed25519 signing key (a mounted Secret): owner tokens (user), tablet
    /// credentials (store), and this role's service token unless it has a service key.
    #[arg(long, env = "POS_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServiceKeyFlags {
    /// PKCS#8 PEM Ed25519 key that signs only this role's service tokens.
    #[arg(long, env = "POS_SERVICE_KEY_FILE")]
    pub service_key_file: Option<PathBuf>,
}

/// Everything `pos serve <role>` was told.
#[derive(Debug, Clone)]
pub struct RoleFlags {
    pub serve: ServeFlags,
    pub tokens: TokenFlags,
    pub database: Option<DatabaseFlags>,
    pub shared_state: Option<SharedStateFlags>,
    pub published_keys: Option<PublishedKeyFlags>,
    pub own_keys: Option<OwnKeyFlags>,
    pub signing: Option<SigningFlags>,
    pub service_key: Option<ServiceKeyFlags>,
    /// Addresses of other roles, by role name.
    pub peers: BTreeMap<&'static str, String>,
}

/// The role whose keys are its own: the one that publishes the keys every other role
/// verifies tokens with.
pub fn key_publisher() -> Option<&'static str> {
    ROLES
        .iter()
        .find(|role| role.needs().key_source == KeySource::Own)
        .map(|role| role.name())
}

/// The roles a role calls, and whether each is required.
pub fn peer_roles(role: &dyn RegisteredRole) -> Vec<(&'static str, bool)> {
    let serving = || {
        ROLES
            .iter()
            .filter(move |other| other.name() != role.name() && !other.services().is_empty())
    };
    let mut peers: Vec<(&'static str, bool)> = match role.needs().peers {
        PeerNeeds::Roles(names) => serving()
            .filter(|other| names.contains(&other.name()))
            .map(|other| (other.name(), true))
            .collect(),
        PeerNeeds::Optional(names) => serving()
            .filter(|other| names.contains(&other.name()))
            .map(|other| (other.name(), false))
            .collect(),
        PeerNeeds::Every { required } => serving()
            .map(|other| (other.name(), required.contains(&other.name())))
            .collect(),
    };
    // Published keys come from the role that signs them when no JWKS file is given.
    if role.needs().key_source == KeySource::Published
        && let Some(publisher) = key_publisher()
        && !peers.iter().any(|(name, _)| *name == publisher)
    {
        peers.push((publisher, false));
    }
    peers
}

/// Whether the role calls other roles with a service token (required or optional
/// peers; fetching the published keys needs none), so it takes a service key.
fn calls_other_roles(role: &dyn RegisteredRole) -> bool {
    match role.needs().peers {
        PeerNeeds::Roles(names) | PeerNeeds::Optional(names) => !names.is_empty(),
        PeerNeeds::Every { .. } => true,
    }
}

/// `--<role>-addr` and `POS_<ROLE>_ADDR`.
fn peer_flag(role: &str) -> (String, String) {
    (
        format!("{role}-addr"),
        format!("POS_{}_ADDR", role.to_uppercase()),
    )
}

fn required(command: Command, id: &'static str, requirement: Requirement) -> Command {
    if requirement == Requirement::Required {
        command.mut_arg(id, |arg| arg.required(true))
    } else {
        command
    }
}

/// `pos serve <role>`: the shared groups the role needs, its peers' addresses, and its
/// own flags.
pub fn serve_command(role: &dyn RegisteredRole) -> Command {
    let needs: Needs = role.needs();
    let mut command = Command::new(role.name());
    command = ServeFlags::augment_args(command);
    command = TokenFlags::augment_args(command);
    if needs.migrations.is_some() {
        command = DatabaseFlags::augment_args(command);
    }
    if needs.shared_state != Requirement::No {
        command = SharedStateFlags::augment_args(command);
        command = required(command, "redis_url", needs.shared_state);
    }
    command = match needs.key_source {
        KeySource::Published => PublishedKeyFlags::augment_args(command),
        KeySource::Own => OwnKeyFlags::augment_args(command),
    };
    if needs.signing_key != Requirement::No {
        command = SigningFlags::augment_args(command);
        command = required(command, "signing_key_file", needs.signing_key);
    }
    let peers = peer_roles(role);
    if calls_other_roles(role) {
        command = ServiceKeyFlags::augment_args(command);
    }
    for (peer, required) in peers {
        let (long, env) = peer_flag(peer);
        command = command.arg(
            Arg::new(long.clone())
                .long(long)
                .env(env)
                .value_name("URL")
                .required(required)
                .help(format!(
                    "Where the {peer} role listens, e.g. http://{peer}:8080"
                )),
        );
    }
    // A flag group's doc comment would otherwise become the command's description.
    role.own_flags(command).about(role.about()).long_about(None)
}

/// Reads back what [`serve_command`] registered.
pub fn parse_serve(
    role: &dyn RegisteredRole,
    matches: &ArgMatches,
) -> clap::error::Result<RoleFlags> {
    let needs = role.needs();
    let peers = peer_roles(role);
    Ok(RoleFlags {
        serve: ServeFlags::from_arg_matches(matches)?,
        tokens: TokenFlags::from_arg_matches(matches)?,
        database: needs
            .migrations
            .is_some()
            .then(|| DatabaseFlags::from_arg_matches(matches))
            .transpose()?,
        shared_state: (needs.shared_state != Requirement::No)
            .then(|| SharedStateFlags::from_arg_matches(matches))
            .transpose()?,
        published_keys: (needs.key_source == KeySource::Published)
            .then(|| PublishedKeyFlags::from_arg_matches(matches))
            .transpose()?,
        own_keys: (needs.key_source == KeySource::Own)
            .then(|| OwnKeyFlags::from_arg_matches(matches))
            .transpose()?,
        signing: (needs.signing_key != Requirement::No)
            .then(|| SigningFlags::from_arg_matches(matches))
            .transpose()?,
        service_key: calls_other_roles(role)
            .then(|| ServiceKeyFlags::from_arg_matches(matches))
            .transpose()?,
        peers: peers
            .into_iter()
            .filter_map(|(peer, _)| {
                let (long, _) = peer_flag(peer);
                matches
                    .get_one::<String>(&long)
                    .map(|address| (peer, address.clone()))
            })
            .collect(),
    })
}
