//! Checks the framing of requests that must carry exactly one message (every RPC but
//! client- or bidi-streaming ones such as reflection) before a service sees them: gRPC
//! frames a message as a flag byte, a 4-byte big-endian length and the bytes. An empty
//! body, a cut-short frame, an unknown flag or a second message is INVALID_ARGUMENT
//! `MALFORMED_REQUEST`; a frame declaring more than the size limit is RESOURCE_EXHAUSTED
//! `MESSAGE_TOO_LARGE`, answered from its header without reading the rest. tonic alone
//! would answer the first INTERNAL, the last OUT_OF_RANGE (neither with `ErrorInfo`),
//! and ignore a second message. Messages whose bytes do not decode are the codec's
//! concern ([`pos_proto::codec`]).
//!
//! Every role serves behind this layer, so the check holds however a role is reached:
//! through the edge (gRPC or grpc-web) or straight from inside the mesh.

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::LazyLock,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, LengthLimitError};
use prost::Message;
use prost_types::FileDescriptorSet;
use tonic::{Status, body::Body};
use tower::{BoxError, Layer, Service};

use crate::{ApiError, Reason};

/// Flag byte and length of a gRPC frame.
const FRAME_HEADER_BYTES: usize = 5;

/// Paths (`/package.Service/Method`) of the RPCs whose request is a single message:
/// every pos.v1 RPC and health's, from their descriptor sets.
static SINGLE_MESSAGE_PATHS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut paths = HashSet::new();
    for encoded in [
        pos_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let set = match FileDescriptorSet::decode(encoded) {
            Ok(set) => set,
            Err(err) => {
                // Built into the binary, so a test catches this; never refuse calls over it.
                tracing::error!(%err, "an embedded descriptor set does not decode");
                continue;
            }
        };
        for file in set.file {
            for service in &file.service {
                for method in service.method.iter().filter(|m| !m.client_streaming()) {
                    paths.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    paths
});

/// Whether a call to `path` must carry exactly one request message.
pub fn carries_one_message(path: &str) -> bool {
    SINGLE_MESSAGE_PATHS.contains(path)
}

/// Checks that single-message requests are one well-formed frame of at most
/// `max_message_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct RequestFramingLayer {
    max_message_bytes: usize,
}

impl RequestFramingLayer {
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes }
    }
}

impl<S> Layer<S> for RequestFramingLayer {
    type Service = RequestFraming<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestFraming {
            inner,
            max_message_bytes: self.max_message_bytes,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestFraming<S> {
    inner: S,
    max_message_bytes: usize,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RequestFraming<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this call; the fresh one waits its turn.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !carries_one_message(request.uri().path()) {
            return Box::pin(inner.call(request.map(Body::new)));
        }
        let limit = self.max_message_bytes;
        // A compressed frame needs the call to name its encoding; tonic answers one it
        // does not accept UNIMPLEMENTED, as gRPC prescribes.
        let compression = request
            .headers()
            .get("grpc-encoding")
            .is_some_and(|encoding| encoding.as_bytes() != b"identity");
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            match one_message(body, limit, compression).await {
                Ok(message) => {
                    let body = Body::new(Full::new(message));
                    inner.call(http::Request::from_parts(parts, body)).await
                }
                Err(refusal) => Ok(refusal.into_http()),
            }
        })
    }
}

/// Reads the whole body and returns it if it is exactly one frame within `limit`.
async fn one_message<B>(body: B, limit: usize, compression: bool) -> Result<Bytes, Status>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut received = BytesMut::new();
    let mut declared = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| unreadable(err.into(), limit))?;
        // Request trailers carry no message; only data counts.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received.extend_from_slice(&data);
        if declared.is_none() && received.len() >= FRAME_HEADER_BYTES {
            declared = Some(declared_length(
                &received[..FRAME_HEADER_BYTES],
                limit,
                compression,
            )?);
        }
        if let Some(length) = declared
            && received.len() > FRAME_HEADER_BYTES + length
        {
            return Err(malformed("a unary call carries exactly one message").into());
        }
    }
    match declared {
        Some(length) if received.len() == FRAME_HEADER_BYTES + length => Ok(received.freeze()),
        _ if received.is_empty() => Err(malformed("the call carries no message").into()),
        _ => Err(malformed("the message is cut short").into()),
    }
}

/// The length a frame header declares, if its flag is known (compressed only when the
/// call names an encoding) and it is within `limit`.
fn declared_length(header: &[u8], limit: usize, compression: bool) -> Result<usize, ApiError> {
    let (flag, length) = match header {
        [flag, a, b, c, d] => (*flag, u32::from_be_bytes([*a, *b, *c, *d]) as usize),
        _ => return Err(malformed("the message is cut short")),
    };
    // 0: as is; 1: compressed with the call's grpc-encoding.
    if flag > 1 {
        return Err(malformed(format!("unknown frame flag {flag}")));
    }
    if flag == 1 && !compression {
        return Err(malformed(
            "the message is flagged compressed but the call names no grpc-encoding",
        ));
    }
    if length > limit {
        return Err(too_large(limit));
    }
    Ok(length)
}

fn malformed(why: impl Into<String>) -> ApiError {
    ApiError::new(
        Reason::MalformedRequest,
        format!("malformed request: {}", why.into()),
    )
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        Reason::MessageTooLarge,
        format!("the request message is over the limit of {limit} bytes"),
    )
    .with_metadata("limit_bytes", limit)
}

/// A body that failed to arrive: over a size cap set in front of us (the edge's), or
/// cut off by the client, which tonic knows how to report.
fn unreadable(err: BoxError, limit: usize) -> Status {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    while let Some(error) = source {
        if error.is::<LengthLimitError>() {
            return too_large(limit).into();
        }
        source = error.source();
    }
    Status::from_error(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_message_rpcs_are_known_and_streaming_requests_are_not() {
        assert!(carries_one_message("/pos.v1.StoreService/ListProducts"));
        assert!(carries_one_message(
            "/pos.v1.TradeService/WatchCurrentTrade"
        ));
        assert!(carries_one_message("/grpc.health.v1.Health/Check"));
        assert!(!carries_one_message(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!carries_one_message("/pos.v1.StoreService/NoSuchMethod"));
    }

    fn frame(message: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
        bytes.extend_from_slice(message);
        bytes
    }

    async fn check(body: Vec<u8>, limit: usize) -> Result<Bytes, Status> {
        one_message(Full::new(Bytes::from(body)), limit, false).await
    }

    #[tokio::test]
    async fn one_frame_passes_and_anything_else_is_refused() {
        assert_eq!(
            check(frame(b"abc"), 3).await.expect("one frame"),
            frame(b"abc")
        );
        for (body, code) in [
            (vec![], tonic::Code::InvalidArgument),
            (vec![0, 0], tonic::Code::InvalidArgument),
            (frame(b"abc")[..6].to_vec(), tonic::Code::InvalidArgument),
            (
                [frame(b""), frame(b"")].concat(),
                tonic::Code::InvalidArgument,
            ),
            (vec![2, 0, 0, 0, 0], tonic::Code::InvalidArgument),
            (vec![1, 0, 0, 0, 0], tonic::Code::InvalidArgument),
            (frame(b"abcd"), tonic::Code::ResourceExhausted),
        ] {
            let refused = check(body.clone(), 3).await.expect_err("refused");
            assert_eq!(refused.code(), code, "{body:?}: {refused:?}");
        }
    }
}
