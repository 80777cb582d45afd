//! How one role reaches another role's gRPC services: over the network (a tonic
//! `Channel`, in Kubernetes) or in the same process (the role's own routes, in `pos up`).
//! Both are the same boxed tower service, so callers never care which. A peer named by
//! host name balances over every address the name resolves to ([`balance`]).

use std::{
    sync::{Arc, OnceLock, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tonic::body::Body;
use tower::{BoxError, Layer, Service, ServiceExt, util::BoxCloneSyncService};
use tower_http::set_header::{MakeHeaderValue, SetRequestHeader, SetRequestHeaderLayer};

use crate::{
    auth::{EDGE_ATTESTATION, SERVICE_TOKEN_TTL_SECS, TokenIssuer},
    clock::SharedClock,
};

pub mod balance;
pub mod resolve;

/// How long an edge attestation is valid (it is re-minted at half of it).
pub const ATTESTATION_TTL_SECS: i64 = 600;

/// A gRPC endpoint of another role: HTTP requests in, HTTP responses out.
pub type Peer = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, PeerError>;

/// Why a peer could not answer (connection refused, reset, ...).
///
/// A concrete type rather than a bare `BoxError`: generated clients over a boxed error
/// trip a higher-ranked lifetime limitation of the compiler in async trait methods.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PeerError(BoxError);

/// A peer address that is not a URI.
#[derive(Debug, thiserror::Error)]
#[error("invalid service address {address}")]
pub struct InvalidAddress {
    address: String,
    #[source]
    source: tonic::transport::Error,
}

/// A peer over the network.
pub fn remote(channel: tonic::transport::Channel) -> Peer {
    BoxCloneSyncService::new(channel.map_err(|e| PeerError(e.into())))
}

/// A peer in this process, e.g. a role's tonic routes behind its auth layer.
pub fn in_process<S>(service: S) -> Peer
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(service.map_err(|e| PeerError(e.into())))
}

/// A peer built after the role that calls it (`pos up` builds roles in order, and two
/// roles may call each other): calls made before it is bound fail as an unreachable
/// peer would, and callers retry as they would then.
#[derive(Clone, Default)]
pub struct LateBinding(Arc<OnceLock<Peer>>);

impl LateBinding {
    /// Binds the peer; false when it was bound before (the first binding stays).
    pub fn bind(&self, peer: Peer) -> bool {
        self.0.set(peer).is_ok()
    }

    /// The peer as callers hold it, bound or not yet.
    pub fn peer(&self) -> Peer {
        let binding = self.0.clone();
        in_process(tower::service_fn(move |request: http::Request<Body>| {
            let bound = binding.get().cloned();
            async move {
                match bound {
                    Some(peer) => peer.oneshot(request).await,
                    None => Err(PeerError(Box::new(NotBoundYet))),
                }
            }
        }))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the peer is not running yet")]
struct NotBoundYet;

/// Connects lazily to `uri` (`http://host:port`): a role that is down at start-up is
/// reached once it is up, and calls meanwhile fail UNAVAILABLE.
///
/// When the host is a name (a headless Service in Kubernetes), calls are balanced over
/// every address it resolves to, re-resolved every [`balance::REFRESH_INTERVAL`]; an IP
/// literal or `localhost` (`pos up`, tests) gets a single connection.
pub fn connect_lazy(uri: &str) -> Result<Peer, InvalidAddress> {
    let endpoint = tonic::transport::Endpoint::from_shared(uri.to_string()).map_err(|source| {
        InvalidAddress {
            address: uri.to_string(),
            source,
        }
    })?;
    match balance::Target::named(endpoint.uri()) {
        Some(target) => {
            let (peer, _, _) = balance::balanced(target, resolve::Dns, balance::REFRESH_INTERVAL);
            Ok(peer)
        }
        None => Ok(remote(configured(endpoint).connect_lazy())),
    }
}

/// Today's settings of every connection to a peer.
fn configured(endpoint: tonic::transport::Endpoint) -> tonic::transport::Endpoint {
    endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
}

/// A role's service token, as a header value that renews itself: re-minted once half
/// its lifetime has passed, so a long-running process never presents an expired one.
#[derive(Clone)]
pub struct ServiceCredential {
    inner: Arc<Credential>,
}

struct Credential {
    issuer: TokenIssuer,
    role: String,
    clock: SharedClock,
    ttl_secs: i64,
    current: RwLock<Minted>,
}

/// A token, its header values (made once: every call sends one), and the instant after
/// which it is re-minted.
#[derive(Clone)]
struct Minted {
    token: String,
    bearer: http::HeaderValue,
    bare: http::HeaderValue,
    renew_at: DateTime<Utc>,
}

fn mint(issuer: &TokenIssuer, role: &str, clock: &SharedClock, ttl_secs: i64) -> Minted {
    let token = issuer.service_for(role, ttl_secs);
    // A compact JWT is base64url and dots: always a valid header value.
    let header = |value: &str| {
        http::HeaderValue::from_str(value).expect("a compact JWT is a valid header value")
    };
    Minted {
        bearer: header(&format!("Bearer {token}")),
        bare: header(&token),
        token,
        renew_at: clock.now() + chrono::Duration::seconds(ttl_secs / 2),
    }
}

impl ServiceCredential {
    /// Service tokens naming `role`, signed by `issuer`.
    pub fn new(issuer: TokenIssuer, role: &str, clock: SharedClock) -> Self {
        Self::lasting(issuer, role, clock, SERVICE_TOKEN_TTL_SECS)
    }

    fn lasting(issuer: TokenIssuer, role: &str, clock: SharedClock, ttl_secs: i64) -> Self {
        let first = mint(&issuer, role, &clock, ttl_secs);
        Self {
            inner: Arc::new(Credential {
                issuer,
                role: role.to_string(),
                clock,
                ttl_secs,
                current: RwLock::new(first),
            }),
        }
    }

    /// The same role's tokens, each valid for `ttl_secs` only (re-minted at half of it).
    pub fn with_lifetime(&self, ttl_secs: i64) -> Self {
        let credential = &self.inner;
        Self::lasting(
            credential.issuer.clone(),
            &credential.role,
            credential.clock.clone(),
            ttl_secs,
        )
    }

    fn current(&self) -> Minted {
        let credential = &self.inner;
        let now = credential.clock.now();
        {
            let current = credential.current.read().unwrap_or_else(|p| p.into_inner());
            if now < current.renew_at {
                return current.clone();
            }
        }
        let fresh = mint(
            &credential.issuer,
            &credential.role,
            &credential.clock,
            credential.ttl_secs,
        );
        *credential
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        fresh
    }

    /// The current token.
    pub fn token(&self) -> String {
        self.current().token
    }
}

/// `authorization: Bearer <service token>`: how a role proves it is one of ours to
/// another role's internal API.
#[derive(Clone)]
pub struct BearerServiceToken(ServiceCredential);

impl<T> MakeHeaderValue<T> for BearerServiceToken {
    fn make_header_value(&mut self, _: &T) -> Option<http::HeaderValue> {
        Some(self.0.current().bearer)
    }
}

/// The edge's attestation header: its bare service token.
#[derive(Clone)]
pub struct EdgeAttestation(ServiceCredential);

impl<T> MakeHeaderValue<T> for EdgeAttestation {
    fn make_header_value(&mut self, _: &T) -> Option<http::HeaderValue> {
        Some(self.0.current().bare)
    }
}

/// A peer whose every call carries this role's service token.
pub type WithServiceToken<S> = SetRequestHeader<S, BearerServiceToken>;

pub fn with_service_token<S>(peer: S, credential: &ServiceCredential) -> WithServiceToken<S> {
    SetRequestHeaderLayer::overriding(
        http::header::AUTHORIZATION,
        BearerServiceToken(credential.clone()),
    )
    .layer(peer)
}

/// A peer whose every call carries the edge's attestation (see [`EDGE_ATTESTATION`]):
/// only the edge wraps its peers with it, with a short-lived credential
/// ([`ATTESTATION_TTL_SECS`]), so an attestation read off the internal network is of use
/// for minutes, not a day.
pub fn attested_by_edge(peer: Peer, edge: &ServiceCredential) -> Peer {
    let header = http::HeaderName::from_static(EDGE_ATTESTATION);
    BoxCloneSyncService::new(
        SetRequestHeaderLayer::overriding(header, EdgeAttestation(edge.clone())).layer(peer),
    )
}

/// What a failed call to another role means for our caller. A failure of the call itself
/// (the role down, slow, or broken) is UNAVAILABLE, retryable; anything else means the
/// mesh is miswired, which a caller cannot fix, and is INTERNAL (its cause logged, not
/// sent).
pub fn call_failure(role: &str, status: tonic::Status) -> crate::ApiError {
    use tonic::Code;
    match status.code() {
        Code::Unavailable
        | Code::Unknown
        | Code::Internal
        | Code::DeadlineExceeded
        | Code::Cancelled => crate::ApiError::unavailable(&format!("the {role} service"), status),
        _ => crate::ApiError::internal(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::SigningKey, clock::ManualClock};

    #[tokio::test]
    async fn a_late_peer_fails_until_bound_and_then_forwards() {
        let binding = LateBinding::default();
        let peer = binding.peer();
        let request = || http::Request::new(Body::empty());
        assert!(peer.clone().oneshot(request()).await.is_err());
        let answering = in_process(tower::service_fn(|_: http::Request<Body>| async {
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(204)
                    .body(Body::empty())
                    .expect("response"),
            )
        }));
        assert!(binding.bind(answering.clone()));
        assert!(!binding.bind(answering), "the first binding stays");
        let answer = peer.oneshot(request()).await.expect("forwarded");
        assert_eq!(answer.status(), 204);
    }

    #[test]
    fn service_tokens_are_reminted_once_half_their_life_has_passed() {
        let clock = ManualClock::new(Utc::now());
        let issuer = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let credential = ServiceCredential::new(issuer, "edge", clock.clone());
        let first = credential.token();
        clock.advance(Duration::from_secs(3600));
        assert_eq!(credential.token(), first, "not due yet: the same token");
        clock.advance(Duration::from_secs(
            SERVICE_TOKEN_TTL_SECS.unsigned_abs() / 2,
        ));
        assert_ne!(credential.token(), first, "due: a fresh token");
    }
}
