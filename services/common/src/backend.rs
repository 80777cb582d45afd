//! How one part of the system reaches a gRPC service: over the network (a tonic
//! `Channel`, in Kubernetes) or in the same process (the service's own routes, in
//! `pos up`). Both are the same boxed tower service, so the edge and service-to-service
//! clients never care which.

use std::{
    sync::{Arc, RwLock},
    task::{Context, Poll},
};

use tonic::body::Body;

use crate::auth::{SERVICE_TOKEN_TTL_SECS, TokenIssuer};
use tower::{BoxError, Layer, Service, ServiceExt, util::BoxCloneSyncService};

/// A gRPC endpoint: HTTP requests in, HTTP responses out.
pub type Backend = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BackendError>;

/// Why a backend could not answer (connection refused, reset, ...).
///
/// A concrete type rather than a bare `BoxError`: generated clients over a boxed error
/// trip a higher-ranked lifetime limitation of the compiler in async trait methods.
#[derive(Debug)]
pub struct BackendError(pub BoxError);

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// A backend over the network.
pub fn remote(channel: tonic::transport::Channel) -> Backend {
    BoxCloneSyncService::new(channel.map_err(|e| BackendError(e.into())))
}

/// A backend in this process, e.g. a role's tonic routes behind its auth layer.
pub fn in_process<S>(service: S) -> Backend
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(service.map_err(|e| BackendError(e.into())))
}

/// Connects lazily to `uri` (`http://host:port`): a service that is down at start-up is
/// reached once it is up, and calls meanwhile fail UNAVAILABLE.
pub fn connect_lazy(uri: &str) -> Result<Backend, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(uri.to_string())
        .map_err(|e| format!("invalid service address {uri}: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true);
    Ok(remote(endpoint.connect_lazy()))
}

/// Adds `authorization: Bearer <service token>` to every call: how a service proves it
/// is one of ours to another service's internal API. The token is re-minted when half
/// its lifetime has passed, so a long-running process never presents an expired one.
#[derive(Clone)]
pub struct ServiceTokenLayer {
    credential: Arc<ServiceCredential>,
}

struct ServiceCredential {
    issuer: TokenIssuer,
    name: String,
    /// The header and the Unix time after which it is re-minted.
    current: RwLock<(http::HeaderValue, i64)>,
}

impl ServiceCredential {
    fn mint(issuer: &TokenIssuer, name: &str) -> (http::HeaderValue, i64) {
        let token = issuer.service(name);
        // A JWT is base64url and dots: always a valid header value.
        let header = http::HeaderValue::from_str(&format!("Bearer {token}"))
            .expect("a compact JWT is a valid header value");
        let renew_at = chrono::Utc::now().timestamp() + SERVICE_TOKEN_TTL_SECS / 2;
        (header, renew_at)
    }

    fn header(&self) -> http::HeaderValue {
        let now = chrono::Utc::now().timestamp();
        {
            let current = self.current.read().unwrap_or_else(|p| p.into_inner());
            if now < current.1 {
                return current.0.clone();
            }
        }
        let fresh = Self::mint(&self.issuer, &self.name);
        let header = fresh.0.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        header
    }
}

impl ServiceTokenLayer {
    /// Service tokens for the service called `name`, signed by `issuer`.
    pub fn new(issuer: TokenIssuer, name: &str) -> Self {
        let current = RwLock::new(ServiceCredential::mint(&issuer, name));
        Self {
            credential: Arc::new(ServiceCredential {
                issuer,
                name: name.to_string(),
                current,
            }),
        }
    }
}

impl<S> Layer<S> for ServiceTokenLayer {
    type Service = WithServiceToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithServiceToken {
            inner,
            credential: self.credential.clone(),
        }
    }
}

#[derive(Clone)]
pub struct WithServiceToken<S> {
    inner: S,
    credential: Arc<ServiceCredential>,
}

impl<S, B> Service<http::Request<B>> for WithServiceToken<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, self.credential.header());
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SigningKey;

    #[test]
    fn service_tokens_are_reminted_once_due() {
        let issuer = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let layer = ServiceTokenLayer::new(issuer, "edge");
        let first = layer.credential.header();
        assert_eq!(
            layer.credential.header(),
            first,
            "not due yet: the same token"
        );
        // Pretend half the lifetime has passed.
        layer.credential.current.write().expect("lock").1 = 0;
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let renewed = layer.credential.header();
        assert_ne!(renewed, first);
        assert!(layer.credential.current.read().expect("lock").1 > chrono::Utc::now().timestamp());
    }
}
