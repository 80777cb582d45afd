//! A gate is one cross-cutting concern of the edge (classify, authenticate, rate-limit,
//! set a deadline) as a small async check that may rewrite the request or answer it with
//! a gRPC error. [`GateLayer`] turns any gate into a tower layer, so the edge's whole
//! pipeline is one visible `ServiceBuilder` stack.
//!
//! Written here rather than taken from tower: `tower::filter::AsyncFilter` refuses a
//! request with an *error* of the service, which the HTTP server turns into a broken
//! connection, while a gate must answer with a gRPC status the client can read.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use async_trait::async_trait;
use tonic::{Status, body::Body};
use tower::{Layer, Service};

/// One concern of the edge pipeline.
#[async_trait]
pub trait Gate: Clone + Send + Sync + 'static {
    /// Lets the request on (possibly changed), or answers it with `Err(status)`.
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status>;
}

#[derive(Clone)]
pub struct GateLayer<G>(pub G);

impl<S, G: Gate> Layer<S> for GateLayer<G> {
    type Service = GateService<S, G>;

    fn layer(&self, inner: S) -> Self::Service {
        GateService {
            inner,
            gate: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GateService<S, G> {
    inner: S,
    gate: G,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, G> Service<http::Request<Body>> for GateService<S, G>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    G: Gate,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            match gate.check(&mut request).await {
                Ok(()) => inner.call(request).await,
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}
