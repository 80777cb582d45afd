//! A role is one deployable part of the system (`store`, `user`, `edge`, ...). Each
//! service crate exports one: its name, the gRPC services it serves, what plumbing it
//! needs (a database with its migrations, shared state, keys, other roles), its own
//! flags, and how it is built. The `pos` binary drives `pos up`, `pos serve <role>`,
//! `pos migrate` and the test harness from one registry of roles, so adding a role is a
//! new crate plus one line there.

use std::{collections::HashMap, convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use async_trait::async_trait;
use tonic::{body::Body, server::NamedService, service::RoutesBuilder};
use tower::Service;

use crate::{
    auth::{Authenticator, JwkSet, JwksSource, KeyCache, Revocations, TokenIssuer},
    clock::SharedClock,
    ephemeral::SharedEphemeral,
    events::SharedEventBus,
    peer::{Peer, ServiceCredential},
    storage::{Database, Migrations},
};

/// Largest request or response message any service accepts (4 MiB).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Largest header block a client may send over HTTP/2, as HTTP/2 counts it (each
/// header's name and value plus 32 bytes): twice hyper's default, so a request with
/// generous metadata passes. Over it, the HTTP/2 layer answers HTTP 431 before any
/// service sees the call.
pub const MAX_HEADER_LIST_BYTES: u32 = 32 * 1024;

/// Whether a role needs a piece of plumbing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    No,
    Optional,
    Required,
}

/// Which other roles a role calls.
#[derive(Debug, Clone, Copy)]
pub enum PeerNeeds {
    /// These roles, each required.
    Roles(&'static [&'static str]),
    /// These roles when they are deployed, none required. In `pos up` they may be built
    /// after this role (two roles can call each other): calls reach them once they are.
    Optional(&'static [&'static str]),
    /// Every other role that serves gRPC (the edge), of which these are required.
    Every { required: &'static [&'static str] },
}

/// Where a role gets the public keys that verify tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// From a JWKS file, or from the user role's GetJwks.
    Published,
    /// From its own signing key (the role that signs owner tokens).
    Own,
}

/// The plumbing a role needs; the binary turns it into flags and a [`RoleContext`].
#[derive(Clone, Copy)]
pub struct Needs {
    /// The role keeps tables: it gets a database, and `pos migrate` applies these.
    pub migrations: Option<&'static Migrations>,
    /// Redis (or memory in `pos up`) for state shared by replicas.
    pub shared_state: Requirement,
    /// The key that signs owner tokens and tablet credentials.
    pub signing_key: Requirement,
    pub key_source: KeySource,
    pub peers: PeerNeeds,
    /// Another role whose tables this role reads, never writes (the settlement reads the
    /// trade's paid bills): its database, or a read replica of it.
    pub reads_tables_of: Option<&'static str>,
}

/// Another role, as this role reaches it.
#[derive(Clone)]
pub struct PeerRole {
    /// The gRPC services it serves.
    pub services: &'static [&'static str],
    pub peer: Peer,
}

/// Everything a role is built from, assembled by the binary from flags (`pos serve`) or
/// from the other roles in the same process (`pos up`).
pub struct RoleContext {
    /// Present when the role has migrations.
    pub database: Option<Database>,
    /// The database of the role named by [`Needs::reads_tables_of`], when the binary knows
    /// it (`pos up`); otherwise the role opens it from its own flags.
    pub source_database: Option<Database>,
    /// Present when the role needs it (always in `pos up`, in memory).
    pub shared_state: Option<SharedEphemeral>,
    /// The access-token deny-list: in the shared state in a deployment, in a file of the
    /// data directory in `pos up` (so a restart forgets no revocation); absent without
    /// shared state.
    pub revocations: Option<Revocations>,
    /// Change notifications between replicas: Redis pub/sub when the shared state is
    /// Redis, else in-process (one bus shared by every role of `pos up`).
    pub events: SharedEventBus,
    /// Verify tokens.
    pub keys: Arc<KeyCache>,
    /// Where those keys come from (the edge publishes them at `/.well-known/jwks.json`).
    pub key_source: Arc<dyn JwksSource>,
    /// For a role whose keys are its own: the public keys it publishes (its signing key's
    /// and retired ones).
    pub published_keys: Option<JwkSet>,
    /// When set, the only keys service tokens may be signed with.
    pub service_keys: Option<Arc<KeyCache>>,
    /// Signs owner tokens or tablet credentials, when the role has the signing key.
    pub signing: Option<TokenIssuer>,
    /// This role's own service token, for calling other roles; absent without a key.
    pub service_credential: Option<ServiceCredential>,
    /// The other roles it may call, by role name.
    pub peers: HashMap<&'static str, PeerRole>,
    pub clock: SharedClock,
    /// Where clients reach this process.
    pub listen: SocketAddr,
    /// `pos up`: one process on a laptop, with development conveniences.
    pub embedded: bool,
    /// Fired when the process starts to stop, before its servers drain: long-lived calls
    /// and background work end on it.
    pub stopping: crate::stopping::Stopping,
}

/// A role asked for something its context lacks: a wiring mistake of the binary or a
/// missing flag, reported at start-up.
#[derive(Debug, thiserror::Error)]
#[error("the {role} role needs {what}")]
pub struct Missing {
    pub role: &'static str,
    pub what: &'static str,
}

impl RoleContext {
    /// The authenticator every part of a role uses: the keys, service keys when
    /// configured, and the deny-list when there is one. Device credentials are
    /// added by the roles that serve tablets.
    pub fn authenticator(&self) -> Authenticator {
        let mut auth = Authenticator::new(self.keys.clone());
        if let Some(service_keys) = &self.service_keys {
            auth = auth.with_service_keys(service_keys.clone());
        }
        if let Some(revocations) = &self.revocations {
            auth = auth.with_revocations(revocations.clone());
        }
        auth
    }

    pub fn peer(&self, role: &'static str, of: &'static str) -> Result<Peer, Missing> {
        self.peers.get(role).map(|p| p.peer.clone()).ok_or(Missing {
            role: of,
            what: role,
        })
    }
}

/// Why a role could not be built.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// What a built role serves.
pub enum Served {
    /// gRPC services, served behind an [`crate::auth::AuthLayer`] of this authenticator
    /// with health and reflection.
    Grpc {
        services: GrpcServices,
        auth: Authenticator,
    },
    /// A whole HTTP front door (the edge), served with each connection's peer address.
    Front(Front),
}

/// A public HTTP front door and how it treats connections.
pub struct Front {
    pub router: axum::Router,
    pub connections: ConnectionLimits,
    /// The health the front door answers itself, kept to its dependencies and turned
    /// NOT_SERVING when it starts to stop; `None` when it answers no health.
    pub health: Option<crate::introspection::ServedHealth>,
}

/// What keeps clients that connect and then send nothing (or stop answering) from
/// holding the process's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A new connection must send a whole request head within this, and an HTTP/1.1
    /// connection its next one after the previous call; else it is closed.
    pub header_read_timeout: Duration,
    /// A connection with no call in flight for this long is closed (HTTP/2 with GOAWAY).
    pub idle_timeout: Duration,
    /// HTTP/2 connections are pinged this often ...
    pub http2_keepalive_interval: Duration,
    /// ... and closed when a ping is not answered within this.
    pub http2_keepalive_timeout: Duration,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// Production values (the edge's flags default to them).
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http2_keepalive_interval: Duration::from_secs(20),
            http2_keepalive_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// A role's gRPC services and their names.
#[derive(Default)]
pub struct GrpcServices {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
}

impl GrpcServices {
    pub fn add<S>(&mut self, service: S) -> &mut Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    pub fn into_parts(self) -> (RoutesBuilder, Vec<&'static str>) {
        (self.routes, self.names)
    }
}

/// One deployable part of the system.
#[async_trait]
pub trait Role: Send + Sync + 'static {
    /// `pos serve <NAME>`; also the `sub` of its service tokens.
    const NAME: &'static str;
    /// One line for `pos serve --help`.
    const ABOUT: &'static str;
    /// Full names of the gRPC services it serves (none for the edge).
    const SERVICES: &'static [&'static str];
    const NEEDS: Needs;
    /// Its own flags (a `clap::Args` struct): only this role accepts them.
    type Args: Send + Sync + 'static;

    async fn build(args: Self::Args, context: RoleContext) -> Result<Served, StartError>;
}
