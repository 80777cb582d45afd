//! The edge: the only public entry of the system. On one port it speaks gRPC (HTTP/2)
//! and grpc-web (binary and text, HTTP/1.1 and HTTP/2) with CORS, serves the JWKS, and
//! runs every call through one visible pipeline of small gates:
//!
//! strip internal metadata → classify by policy → authenticate → rate-limit →
//! current tablet credential → deadline → dispatch to the service's backend.
//!
//! Internal services and unknown methods never get past classification.

pub mod devices;
pub mod dispatch;
pub mod gate;
pub mod gates;
pub mod jwks;
pub mod policy;

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{Router, routing::get};
use pos_common::{
    auth::{Authenticator, JwksSource},
    backend::{self, Backend},
    ephemeral::SharedEphemeral,
    introspection::add_health_and_reflection,
};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    dispatch::Dispatch,
    gate::GateLayer,
    gates::{
        Authenticate, Classify, CurrentDevice, DefaultDeadline, DeviceCredentials, RateLimit,
        StripInternalMetadata,
    },
};

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
    pub backends: HashMap<&'static str, Backend>,
    pub auth: Authenticator,
    pub devices: Arc<dyn DeviceCredentials>,
    pub ephemeral: SharedEphemeral,
    /// The public keys served at `/.well-known/jwks.json`.
    pub jwks: Arc<dyn JwksSource>,
}

/// Builds the edge as an HTTP router; serve it with connect info so anonymous callers
/// can be rate-limited by address.
pub async fn router(config: &EdgeConfig, deps: EdgeDeps) -> Result<Router, String> {
    let mut backends = deps.backends;
    let served: Vec<&'static str> = backends.keys().copied().collect();
    let infrastructure = backend::in_process(infrastructure(&served).await?);
    for name in policy::INFRASTRUCTURE {
        backends.insert(name, infrastructure.clone());
    }

    let grpc = ServiceBuilder::new()
        .layer(GateLayer(StripInternalMetadata))
        .layer(GateLayer(Classify))
        .layer(GateLayer(Authenticate::new(deps.auth)))
        .layer(GateLayer(RateLimit::new(
            deps.ephemeral,
            config.rate_limit_per_minute,
        )))
        .layer(GateLayer(CurrentDevice::new(deps.devices)))
        .layer(GateLayer(DefaultDeadline::new(config.default_deadline)))
        .service(Dispatch::new(backends, config.max_message_bytes));
    let grpc_and_web = tower::Layer::layer(&tonic_web::GrpcWebLayer::new(), grpc);

    Ok(Router::new()
        .route("/.well-known/jwks.json", get(jwks::handler))
        .with_state(jwks::JwksDocument::new(deps.jwks))
        .fallback_service(grpc_and_web)
        .layer(cors(&config.cors_allowed_origins)))
}

/// Health and reflection answered by the edge itself, for what it routes. Only public
/// services are advertised, from a descriptor set without the internal APIs.
async fn infrastructure(served: &[&'static str]) -> Result<tonic::service::Routes, String> {
    let public: Vec<&'static str> = served
        .iter()
        .copied()
        .filter(|n| pos_proto::PUBLIC_SERVICES.contains(n))
        .collect();
    let mut routes = tonic::service::RoutesBuilder::default();
    add_health_and_reflection(&mut routes, &public, pos_proto::PUBLIC_FILE_DESCRIPTOR_SET).await?;
    Ok(routes.routes())
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
