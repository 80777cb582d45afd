//! How one part of the system reaches a gRPC service: over the network (a tonic
//! `Channel`, in Kubernetes) or in the same process (the service's own routes, in
//! `pos up`). Both are the same boxed tower service, so the edge and service-to-service
//! clients never care which.

use std::task::{Context, Poll};

use tonic::body::Body;
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
/// is one of ours to another service's internal API.
#[derive(Clone)]
pub struct ServiceTokenLayer {
    header: http::HeaderValue,
}

impl ServiceTokenLayer {
    pub fn new(token: &str) -> Result<Self, String> {
        http::HeaderValue::from_str(&format!("Bearer {token}"))
            .map(|header| Self { header })
            .map_err(|_| "service token is not a valid header value".to_string())
    }
}

impl<S> Layer<S> for ServiceTokenLayer {
    type Service = WithServiceToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithServiceToken {
            inner,
            header: self.header.clone(),
        }
    }
}

#[derive(Clone)]
pub struct WithServiceToken<S> {
    inner: S,
    header: http::HeaderValue,
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
            .insert(http::header::AUTHORIZATION, self.header.clone());
        self.inner.call(request)
    }
}
