//! The innermost edge service: forwards a vetted request to the backend that serves its
//! gRPC service (in-process in `pos up`, over the network in Kubernetes).

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use pos_common::peer::Peer;
use tonic::{Status, body::Body};
use tower::{Service, ServiceExt};

use crate::{gates::parse_grpc_timeout, policy::Route};

#[derive(Clone)]
pub struct Dispatch {
    backends: Arc<HashMap<&'static str, Peer>>,
    max_message_bytes: usize,
}

impl Dispatch {
    pub fn new(backends: HashMap<&'static str, Peer>, max_message_bytes: usize) -> Self {
        Self {
            backends: Arc::new(backends),
            max_message_bytes,
        }
    }
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
        let service = match request.extensions().get::<Route>() {
            Some(Route::Rpc { service, .. } | Route::Infrastructure { service }) => *service,
            _ => "",
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
            let deadline = request
                .headers()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_grpc_timeout);
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
                Ok(response) => Ok(response),
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
