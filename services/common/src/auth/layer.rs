//! The tower layer every role's gRPC services run behind: it authenticates a bearer
//! token (if any) and puts the [`Principal`] and the token's [`Claims`] into the
//! request's extensions, where handlers find them with [`Principal::of`]. Requests
//! without a token pass through (public RPCs, health, reflection); a bad token is
//! answered here with UNAUTHENTICATED. A call the edge vouches for is only re-verified.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::Status;
use tower::{Layer, Service};

use super::{Authenticator, Checks, Claims, EDGE_ATTESTATION, Principal, bearer_token};

#[derive(Clone)]
pub struct AuthLayer {
    auth: Authenticator,
}

impl AuthLayer {
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Authenticator,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this call; the fresh one waits its turn.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            // Nothing from the client may pose as a verified principal.
            request.extensions_mut().remove::<Principal>();
            request.extensions_mut().remove::<Claims>();
            // Whatever the call, the attestation is for this layer only.
            let attestation = request
                .headers_mut()
                .remove(EDGE_ATTESTATION)
                .and_then(|value| value.to_str().ok().map(str::to_owned));
            let token = match bearer_token(request.headers()) {
                Ok(token) => token.map(str::to_owned),
                Err(err) => return Ok(Status::from(err).into_http()),
            };
            if let Some(token) = token {
                let checks = match attestation {
                    Some(edge) if auth.vouched_by_edge(&edge).await => Checks::VouchedByEdge,
                    Some(_) => {
                        // A misconfigured role (service keys it was not given) or a forgery:
                        // either way the call is checked in full.
                        tracing::debug!("an edge attestation did not verify; checking in full");
                        Checks::Full
                    }
                    None => Checks::Full,
                };
                match auth.authenticate(&token, checks).await {
                    Ok((principal, claims)) => {
                        request.extensions_mut().insert(principal);
                        request.extensions_mut().insert(claims);
                    }
                    Err(err) => return Ok(Status::from(err).into_http()),
                }
            }
            inner.call(request).await
        })
    }
}
