//! The edge: the only public entry of the system. On one port it speaks gRPC (HTTP/2)
//! and grpc-web (binary and text, HTTP/1.1 and HTTP/2) with CORS, serves the JWKS, and
//! runs every call through one visible pipeline of small gates:
//!
//! strip internal metadata → classify by policy → authenticate → rate-limit →
//! current tablet credential → deadline → dispatch to the service's backend.
//!
//! Internal services and unknown methods never get past classification.

pub mod dispatch;
pub mod gate;
pub mod gates;
pub mod jwks;
pub mod policy;

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{Router, routing::get};
use pos_common::{
    auth::{Authenticator, EDGE_ROLE, JwksSource, StoreDeviceCredentials},
    clock::SharedClock,
    ephemeral::SharedEphemeral,
    framing::RequestFramingLayer,
    introspection::{ReflectionError, ServedHealth, add_health_and_reflection},
    peer::{self, ATTESTATION_TTL_SECS, Peer, attested_by_edge},
    role::{
        ConnectionLimits, Front, KeySource, MAX_MESSAGE_BYTES, Missing, Needs, PeerNeeds,
        Requirement, Role, RoleContext, Served, StartError,
    },
    stopping::Stopping,
};
use tower::{Layer, ServiceBuilder};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    dispatch::Dispatch,
    gate::GateLayer,
    gates::{
        Authenticate, Classify, CurrentDevice, DefaultDeadline, RateLimit, StripInternalMetadata,
    },
};

/// The largest health or reflection request the edge reads: they name a service or a
/// symbol, and they are free of rate limits, so they get no room to carry more.
const INFRASTRUCTURE_MESSAGE_BYTES: usize = 16 * 1024;

/// Settings of the edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Browser origins allowed to call (CORS); `["*"]` allows any, empty allows none.
    pub cors_allowed_origins: Vec<String>,
    /// Calls per principal (or per IP when anonymous) per minute.
    pub rate_limit_per_minute: u32,
    /// Deadline of unary calls: given to those that carry none, and the most any may ask for.
    pub default_deadline: Duration,
    /// Largest request message forwarded.
    pub max_message_bytes: usize,
}

/// What the edge talks to.
pub struct EdgeDeps {
    /// Backends of the public services, by full service name.
    pub backends: HashMap<&'static str, Peer>,
    /// Verifies tokens, the deny-list and tablet credentials.
    pub auth: Authenticator,
    pub ephemeral: SharedEphemeral,
    /// The public keys served at `/.well-known/jwks.json`.
    pub jwks: Arc<dyn JwksSource>,
    pub clock: SharedClock,
    /// Ends the streams in flight when the edge starts to stop.
    pub stopping: Stopping,
}

/// Builds the edge as an HTTP router; serve it with connect info so anonymous callers
/// can be rate-limited by address (the binary's `startup::serve_http` does, with the
/// connection limits of [`EdgeArgs`]).
///
/// Its health answers come back beside it: whoever serves it keeps them to the edge's
/// dependencies (Redis) and turns them NOT_SERVING when it stops.
pub async fn router(
    config: &EdgeConfig,
    deps: EdgeDeps,
) -> Result<(Router, ServedHealth), ReflectionError> {
    let mut backends = deps.backends;
    let served: Vec<&'static str> = backends.keys().copied().collect();
    let (routes, health) = infrastructure(&served).await?;
    let infrastructure =
        peer::in_process(RequestFramingLayer::new(INFRASTRUCTURE_MESSAGE_BYTES).layer(routes));
    for name in policy::INFRASTRUCTURE {
        backends.insert(name, infrastructure.clone());
    }

    let limits = RateLimit::new(deps.ephemeral, config.rate_limit_per_minute, deps.clock);
    let grpc = ServiceBuilder::new()
        .layer(GateLayer(StripInternalMetadata))
        .layer(GateLayer(Classify))
        // Failed authentications are charged to the caller's address.
        .layer(GateLayer(Authenticate::new(
            deps.auth.clone(),
            limits.clone(),
        )))
        .layer(GateLayer(limits))
        .layer(GateLayer(CurrentDevice::new(deps.auth)))
        .layer(GateLayer(DefaultDeadline::new(config.default_deadline)))
        .service(Dispatch::new(
            backends,
            config.max_message_bytes,
            config.default_deadline,
            deps.stopping,
        ));
    let grpc_and_web = tower::Layer::layer(&tonic_web::GrpcWebLayer::new(), grpc);

    let router = Router::new()
        .route("/.well-known/jwks.json", get(jwks::handler))
        .with_state(jwks::JwksDocument::new(deps.jwks))
        .fallback_service(grpc_and_web)
        .layer(cors(&config.cors_allowed_origins));
    Ok((router, health))
}

/// The edge's own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeArgs {
    /// Browser origins allowed to call (CORS), comma-separated; `*` allows any. `pos up`
    /// allows any when unset; `pos serve edge` none.
    #[arg(long, env = "POS_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    /// Calls each principal (or anonymous IP) may make per minute.
    #[arg(long, env = "POS_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,
    /// Deadline of unary calls through the edge, in seconds: given to calls without
    /// `grpc-timeout`, and the most a client may ask for.
    #[arg(long, env = "POS_DEFAULT_DEADLINE_SECS", default_value_t = 30)]
    pub default_deadline_secs: u64,
    /// Seconds a new connection has to send a whole request head (and an HTTP/1.1
    /// connection its next one) before it is closed.
    #[arg(long, env = "POS_HEADER_READ_TIMEOUT_SECS", default_value = "10", value_parser = seconds)]
    pub header_read_timeout_secs: Duration,
    /// Seconds a connection may stay open with no call in flight.
    #[arg(long, env = "POS_IDLE_TIMEOUT_SECS", default_value = "60", value_parser = seconds)]
    pub idle_timeout_secs: Duration,
    /// Seconds between HTTP/2 keep-alive pings.
    #[arg(long, env = "POS_HTTP2_KEEPALIVE_INTERVAL_SECS", default_value = "20", value_parser = seconds)]
    pub http2_keepalive_interval_secs: Duration,
    /// Seconds an HTTP/2 client has to answer a ping before its connection is closed.
    #[arg(long, env = "POS_HTTP2_KEEPALIVE_TIMEOUT_SECS", default_value = "10", value_parser = seconds)]
    pub http2_keepalive_timeout_secs: Duration,
    /// Connections served at once; more are closed as soon as they are accepted. Keep it
    /// below the process's open-file limit.
    #[arg(long, env = "POS_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
}

impl EdgeArgs {
    /// How the edge treats its connections.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.header_read_timeout_secs,
            idle_timeout: self.idle_timeout_secs,
            http2_keepalive_interval: self.http2_keepalive_interval_secs,
            http2_keepalive_timeout: self.http2_keepalive_timeout_secs,
            max_connections: self.max_connections as usize,
        }
    }
}

/// A positive number of seconds, fractions allowed (`0.3`).
fn seconds(value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| format!("{value} is not a number of seconds"))?;
    // NaN is not a duration either.
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{value}: must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|err| format!("{value}: {err}"))
}

pub struct EdgeRole;

#[async_trait]
impl Role for EdgeRole {
    const NAME: &'static str = EDGE_ROLE;
    const ABOUT: &'static str =
        "The only public entry: gRPC + grpc-web, CORS, auth policy, rate limits, routing";
    const SERVICES: &'static [&'static str] = &[];
    const NEEDS: Needs = Needs {
        migrations: None,
        // Rate limits and the deny-list are shared by every replica.
        shared_state: Requirement::Required,
        // Only to sign its service token when it has no service key of its own.
        signing_key: Requirement::Optional,
        key_source: KeySource::Published,
        peers: PeerNeeds::Every {
            required: &["store", "user"],
        },
        reads_tables_of: None,
    };
    type Args = EdgeArgs;

    async fn build(args: EdgeArgs, context: RoleContext) -> Result<Served, StartError> {
        let missing = |what| Missing {
            role: Self::NAME,
            what,
        };
        let credential = context.service_credential.clone().ok_or(missing(
            "a key for its service token (POS_SERVICE_KEY_FILE or POS_SIGNING_KEY_FILE)",
        ))?;
        let ephemeral = context
            .shared_state
            .clone()
            .ok_or(missing("shared state (POS_REDIS_URL)"))?;
        let store = context.peer("store", Self::NAME)?;
        let auth = context
            .authenticator()
            .with_devices(Arc::new(StoreDeviceCredentials::new(store, &credential)));
        // Every public service of every other role, each call vouched for by the edge.
        let attestation = credential.with_lifetime(ATTESTATION_TTL_SECS);
        let mut backends = HashMap::new();
        for peer in context.peers.values() {
            for service in peer.services {
                if pos_proto::PUBLIC_SERVICES.contains(service) {
                    backends.insert(*service, attested_by_edge(peer.peer.clone(), &attestation));
                }
            }
        }
        let connections = args.connection_limits();
        let mut cors_allowed_origins = args.cors_allowed_origins;
        if cors_allowed_origins.is_empty() && context.embedded {
            cors_allowed_origins.push("*".into());
        }
        let config = EdgeConfig {
            cors_allowed_origins,
            rate_limit_per_minute: args.rate_limit_per_minute,
            default_deadline: Duration::from_secs(args.default_deadline_secs),
            max_message_bytes: MAX_MESSAGE_BYTES,
        };
        let (router, health) = router(
            &config,
            EdgeDeps {
                backends,
                auth,
                ephemeral,
                jwks: context.key_source.clone(),
                clock: context.clock.clone(),
                stopping: context.stopping.clone(),
            },
        )
        .await?;
        Ok(Served::Front(Front {
            router,
            connections,
            health: Some(health),
        }))
    }
}

/// Health and reflection answered by the edge itself, for what it routes. Only public
/// services are advertised, from a descriptor set without the internal APIs.
async fn infrastructure(
    served: &[&'static str],
) -> Result<(tonic::service::Routes, ServedHealth), ReflectionError> {
    let public: Vec<&'static str> = served
        .iter()
        .copied()
        .filter(|n| pos_proto::PUBLIC_SERVICES.contains(n))
        .collect();
    let mut routes = tonic::service::RoutesBuilder::default();
    let reporter =
        add_health_and_reflection(&mut routes, &public, pos_proto::PUBLIC_FILE_DESCRIPTOR_SET)
            .await?;
    Ok((
        routes.routes(),
        ServedHealth {
            reporter,
            names: public,
        },
    ))
}

fn cors(allowed_origins: &[String]) -> CorsLayer {
    let origins = if allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            allowed_origins
                .iter()
                .filter_map(|o| http::HeaderValue::from_str(o).ok()),
        )
    };
    let header = http::HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([http::Method::POST, http::Method::GET, http::Method::OPTIONS])
        .allow_headers([
            http::header::AUTHORIZATION,
            http::header::CONTENT_TYPE,
            header("x-grpc-web"),
            header("x-user-agent"),
            header("grpc-timeout"),
            header("connect-protocol-version"),
            header("connect-timeout-ms"),
        ])
        .expose_headers([
            header("grpc-status"),
            header("grpc-message"),
            header("grpc-status-details-bin"),
        ])
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        edge: EdgeArgs,
    }

    #[test]
    fn connection_flags_default_to_the_production_limits_and_take_fractions() {
        let defaults = Flags::try_parse_from(["edge"]).expect("no flags");
        assert_eq!(
            defaults.edge.connection_limits(),
            ConnectionLimits::default()
        );
        let short = Flags::try_parse_from(["edge", "--idle-timeout-secs", "0.3"]).expect("0.3");
        assert_eq!(short.edge.idle_timeout_secs, Duration::from_millis(300));
        for bad in ["0", "-1", "soon", "NaN"] {
            assert!(
                Flags::try_parse_from(["edge", "--idle-timeout-secs", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(Flags::try_parse_from(["edge", "--max-connections", "0"]).is_err());
    }
}
