//! The innermost edge service: forwards a vetted request to the backend that serves its
//! gRPC service (in-process in `pos up`, over the network in Kubernetes). Health and
//! reflection calls, which anyone may make without a rate limit, live at most the
//! default deadline, their streams included, so they cannot hold connections open. A
//! streaming call in flight when the edge starts to stop ends at once with UNAVAILABLE
//! (`SERVER_STOPPING`), so its client reconnects through another edge replica instead
//! of being held for the shutdown's grace period and then cut.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use pos_common::{ApiError, Reason, peer::Peer, stopping::Stopping};
use tonic::{Status, body::Body};
use tower::{Service, ServiceExt};

use crate::{gates::parse_grpc_timeout, policy::Route};

#[derive(Clone)]
pub struct Dispatch {
    backends: Arc<HashMap<&'static str, Peer>>,
    max_message_bytes: usize,
    /// How long a health or reflection call may last, its response stream included.
    infrastructure_lifetime: Duration,
    stopping: Stopping,
}

impl Dispatch {
    pub fn new(
        backends: HashMap<&'static str, Peer>,
        max_message_bytes: usize,
        infrastructure_lifetime: Duration,
        stopping: Stopping,
    ) -> Self {
        Self {
            backends: Arc::new(backends),
            max_message_bytes,
            infrastructure_lifetime,
            stopping,
        }
    }
}

/// How a response stream may be cut short.
enum Cut {
    /// Health and reflection: after this long.
    After(Duration),
    /// A public streaming RPC: when the edge starts to stop.
    OnStop(Stopping),
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<Body>> for Dispatch {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (service, cut) = match request.extensions().get::<Route>() {
            Some(Route::Rpc { service, rule }) if rule.streaming => {
                (*service, Some(Cut::OnStop(self.stopping.clone())))
            }
            Some(Route::Rpc { service, .. }) => (*service, None),
            Some(Route::Infrastructure { service }) => {
                (*service, Some(Cut::After(self.infrastructure_lifetime)))
            }
            _ => ("", None),
        };
        let lifetime = match &cut {
            Some(Cut::After(lifetime)) => Some(*lifetime),
            _ => None,
        };
        let backend = self.backends.get(service).cloned();
        // A client cannot make the edge buffer more than one maximal message plus framing.
        let limit = self.max_message_bytes + 5;
        Box::pin(async move {
            let Some(backend) = backend else {
                return Ok(
                    Status::unimplemented(format!("{service} is not deployed here")).into_http(),
                );
            };
            let asked = request
                .headers()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_grpc_timeout);
            let deadline = match (asked, lifetime) {
                (Some(asked), Some(lifetime)) => Some(asked.min(lifetime)),
                (asked, lifetime) => asked.or(lifetime),
            };
            let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
            let call = backend.oneshot(request);
            let answer = match deadline {
                Some(deadline) => match tokio::time::timeout(deadline, call).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        return Ok(Status::deadline_exceeded(format!(
                            "{service} did not answer in time"
                        ))
                        .into_http());
                    }
                },
                None => call.await,
            };
            match answer {
                Ok(response) => Ok(match cut {
                    Some(cut) => response.map(|body| Body::new(Bounded::new(body, cut))),
                    None => response,
                }),
                Err(err) => {
                    tracing::warn!(%err, service, "backend unreachable");
                    Ok(
                        Status::unavailable(format!("{service} is unavailable, retry later"))
                            .into_http(),
                    )
                }
            }
        })
    }
}

/// A response body that ends early with a status of its own: DEADLINE_EXCEEDED once its
/// lifetime is over, or UNAVAILABLE `SERVER_STOPPING` once the edge starts to stop.
struct Bounded {
    inner: Body,
    over: Pin<Box<dyn Future<Output = ()> + Send>>,
    why: Status,
    ended: bool,
}

impl Bounded {
    fn new(inner: Body, cut: Cut) -> Self {
        let (over, why): (Pin<Box<dyn Future<Output = ()> + Send>>, Status) = match cut {
            Cut::After(lifetime) => (
                Box::pin(tokio::time::sleep(lifetime)),
                Status::deadline_exceeded("the call outlived the edge's deadline"),
            ),
            Cut::OnStop(stopping) => (
                Box::pin(async move { stopping.stopped().await }),
                ApiError::new(
                    Reason::ServerStopping,
                    "this edge is stopping; call again to reach another",
                )
                .into(),
            ),
        };
        Self {
            inner,
            over,
            why,
            ended: false,
        }
    }
}

impl http_body::Body for Bounded {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.ended = frame.is_none();
            return Poll::Ready(frame);
        }
        if this.over.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.ended = true;
        let mut trailers = http::HeaderMap::new();
        if let Err(unencodable) = this.why.add_header(&mut trailers) {
            return Poll::Ready(Some(Err(unencodable)));
        }
        Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}
