//! The RED metrics of a gRPC server, recorded by a tower layer around it:
//! `pos_rpc_server_requests_total{service,method,code}`,
//! `pos_rpc_server_duration_seconds{service,method}` and
//! `pos_rpc_server_in_flight{service,method}`.
//!
//! Service and method come from the `:path` (`/package.Service/Method`); a path no
//! served descriptor declares is labelled `unknown`/`unknown`, so probes of made-up
//! paths cannot grow the label sets. The code is the call's real gRPC status: the
//! `grpc-status` header of a trailers-only response, otherwise the `grpc-status`
//! trailer at the end of the body. A call whose body is dropped before its end
//! (the client went away) is CANCELLED; a body that ends without a status is UNKNOWN.
//! A call lasts until its response body ends, so a stream's duration is the stream's.

use std::{
    any::Any,
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::LazyLock,
    task::{Context, Poll, ready},
    time::Instant,
};

use bytes::Buf;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};
use prost::Message;
use prost_types::FileDescriptorSet;
use tonic::Code;
use tower::{BoxError, Layer, Service};

/// Upper bounds of the latency buckets, in seconds: RPCs here take milliseconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The label of a service or method no served descriptor declares.
pub const UNKNOWN: &str = "unknown";

/// `/package.Service/Method` of every RPC a role can serve: pos.v1's, health's and
/// reflection's.
static KNOWN_PATHS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut paths = HashSet::new();
    for encoded in [
        pos_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = FileDescriptorSet::decode(encoded) else {
            tracing::error!("an embedded descriptor set does not decode");
            continue;
        };
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    method: String,
    code: &'static str,
}

impl MethodLabels {
    /// The labels of a call to `path`, `unknown` unless a descriptor declares it.
    fn of(path: &str) -> Self {
        let known = KNOWN_PATHS
            .contains(path)
            .then(|| path.strip_prefix('/')?.split_once('/'))
            .flatten();
        let (service, method) = known.unwrap_or((UNKNOWN, UNKNOWN));
        Self {
            service: service.to_owned(),
            method: method.to_owned(),
        }
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The families a server records its calls in; cheap to clone, all clones record into
/// the registry they were registered in.
#[derive(Clone, Debug)]
pub struct RpcMetrics {
    requests: Family<CallLabels, Counter>,
    duration: Family<MethodLabels, Histogram, fn() -> Histogram>,
    in_flight: Family<MethodLabels, Gauge>,
}

impl RpcMetrics {
    /// Registers the RPC server metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            in_flight: Family::default(),
        };
        registry.register(
            "pos_rpc_server_requests",
            "gRPC calls answered, by service, method and gRPC status code.",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "pos_rpc_server_duration",
            "Time from a call's request to the end of its response.",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        registry.register(
            "pos_rpc_server_in_flight",
            "gRPC calls started and not yet answered.",
            metrics.in_flight.clone(),
        );
        metrics
    }

    fn start(&self, path: &str) -> Call {
        let labels = MethodLabels::of(path);
        self.in_flight.get_or_create(&labels).inc();
        Call {
            metrics: self.clone(),
            labels,
            started: Instant::now(),
            code: None,
        }
    }
}

/// One call being answered: counted, timed and taken out of flight when dropped.
struct Call {
    metrics: RpcMetrics,
    labels: MethodLabels,
    started: Instant,
    code: Option<Code>,
}

impl Call {
    fn finish(mut self, code: Code) {
        self.code = Some(code);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(Code::Cancelled);
        let metrics = &self.metrics;
        metrics.in_flight.get_or_create(&self.labels).dec();
        metrics
            .duration
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
        metrics
            .requests
            .get_or_create(&CallLabels {
                service: self.labels.service.clone(),
                method: self.labels.method.clone(),
                code: code_name(code),
            })
            .inc();
    }
}

/// The gRPC status in `headers` (a trailers-only response's headers, or trailers).
fn status_in(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The status of a call that failed instead of answering: a [`tonic::Status`] error
/// (bare or boxed) says it, anything else is UNKNOWN.
fn error_code<E: 'static>(err: &E) -> Code {
    let err: &dyn Any = err;
    let status = err.downcast_ref::<tonic::Status>().or_else(|| {
        err.downcast_ref::<BoxError>()
            .and_then(|boxed| boxed.downcast_ref::<tonic::Status>())
    });
    status.map_or(Code::Unknown, tonic::Status::code)
}

/// The status code's name as the gRPC specification spells it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Records the calls of the service it wraps; without metrics it only passes them on.
#[derive(Clone, Debug, Default)]
pub struct RpcMetricsLayer {
    metrics: Option<RpcMetrics>,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Option<RpcMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RpcMetricsService<S> {
    inner: S,
    metrics: Option<RpcMetrics>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcMetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: 'static,
{
    type Response = http::Response<MeasuredBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let call = self
            .metrics
            .as_ref()
            .map(|metrics| metrics.start(request.uri().path()));
        ResponseFuture {
            inner: self.inner.call(request),
            call,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of a recorded call: its body carries the call to its end.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: 'static,
{
    type Output = Result<http::Response<MeasuredBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut call = this.call.take();
        match result {
            Ok(response) => {
                // Trailers-only: the status is in the headers and the body says no more.
                if let Some(code) = status_in(response.headers())
                    && let Some(call) = call.take()
                {
                    call.finish(code);
                }
                Poll::Ready(Ok(response.map(|inner| MeasuredBody { inner, call })))
            }
            Err(err) => {
                if let Some(call) = call {
                    call.finish(error_code(&err));
                }
                Poll::Ready(Err(err))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its call when its trailers arrive, when it ends
    /// without them (UNKNOWN), or when it is dropped before its end (CANCELLED).
    pub struct MeasuredBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B> Body for MeasuredBody<B>
where
    B: Body,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = this.call.take()
                {
                    call.finish(status_in(trailers).unwrap_or(Code::Unknown));
                }
            }
            Some(Err(_)) | None => {
                if let Some(call) = this.call.take() {
                    call.finish(Code::Unknown);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[path = "rpc_tests.rs"]
mod tests;
