//! The RPC layer around an in-process tower service answering as a gRPC server does:
//! the code of a call is the one its trailers (or trailers-only headers) carry.

use std::convert::Infallible;

use bytes::Bytes;
use futures::stream;
use http_body_util::{BodyExt, StreamBody};
use tower::{ServiceExt, service_fn};

use super::*;

const CHECK: &str = "/grpc.health.v1.Health/Check";
const WATCH: &str = "/grpc.health.v1.Health/Watch";

type Frames = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn trailers(code: &str) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", code.parse().expect("header value"));
    trailers
}

/// A message, then trailers with `code`.
fn answered(code: &'static str) -> http::Response<Frames> {
    http::Response::new(StreamBody::new(stream::iter(vec![
        Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
        Ok(Frame::trailers(trailers(code))),
    ])))
}

/// No body; the status in the headers.
fn trailers_only(code: &'static str) -> http::Response<Frames> {
    let mut response = http::Response::new(StreamBody::new(stream::iter(vec![])));
    *response.headers_mut() = trailers(code);
    response
}

/// Calls `path` on a server answering `respond`, reading the whole response body unless
/// `read_body` is false (the client went away).
async fn call(
    metrics: &RpcMetrics,
    path: &str,
    respond: fn() -> http::Response<Frames>,
    read_body: bool,
) {
    let server = RpcMetricsLayer::new(Some(metrics.clone())).layer(service_fn(
        move |_: http::Request<()>| async move { Ok::<_, Infallible>(respond()) },
    ));
    let request = http::Request::builder()
        .uri(format!("http://pos{path}"))
        .body(())
        .expect("request");
    let response = server.oneshot(request).await.expect("response");
    if read_body {
        response.into_body().collect().await.expect("body");
    }
}

fn scrape(registry: &Registry) -> String {
    crate::metrics::encode(registry).expect("encode")
}

fn count(text: &str, method: &str, code: &str) -> Option<u64> {
    let prefix = format!(
        "pos_rpc_server_requests_total{{service=\"grpc.health.v1.Health\",method=\"{method}\",code=\"{code}\"}} "
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.parse().expect("a count"))
}

#[tokio::test]
async fn a_call_counts_the_code_of_its_trailers() {
    let mut registry = Registry::default();
    let metrics = RpcMetrics::register(&mut registry);
    call(&metrics, CHECK, || answered("0"), true).await;
    call(&metrics, CHECK, || answered("0"), true).await;
    call(&metrics, CHECK, || answered("5"), true).await;
    let text = scrape(&registry);
    assert_eq!(count(&text, "Check", "OK"), Some(2), "{text}");
    assert_eq!(count(&text, "Check", "NOT_FOUND"), Some(1), "{text}");
    assert!(
        text.contains(
            "pos_rpc_server_duration_seconds_count{service=\"grpc.health.v1.Health\",method=\"Check\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "pos_rpc_server_duration_seconds_bucket{le=\"0.0005\",service=\"grpc.health.v1.Health\",method=\"Check\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "pos_rpc_server_in_flight{service=\"grpc.health.v1.Health\",method=\"Check\"} 0"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_trailers_only_error_counts_the_code_of_its_headers() {
    let mut registry = Registry::default();
    let metrics = RpcMetrics::register(&mut registry);
    call(&metrics, CHECK, || trailers_only("16"), true).await;
    let text = scrape(&registry);
    assert_eq!(count(&text, "Check", "UNAUTHENTICATED"), Some(1), "{text}");
    assert_eq!(count(&text, "Check", "OK"), None, "{text}");
}

#[tokio::test]
async fn a_response_dropped_before_its_end_counts_as_cancelled() {
    let mut registry = Registry::default();
    let metrics = RpcMetrics::register(&mut registry);
    call(&metrics, WATCH, || answered("0"), false).await;
    let text = scrape(&registry);
    assert_eq!(count(&text, "Watch", "CANCELLED"), Some(1), "{text}");
    assert_eq!(count(&text, "Watch", "OK"), None, "{text}");
}

#[tokio::test]
async fn an_unknown_path_is_labelled_unknown() {
    let mut registry = Registry::default();
    let metrics = RpcMetrics::register(&mut registry);
    call(
        &metrics,
        "/evil.Probe/Anything",
        || trailers_only("12"),
        true,
    )
    .await;
    call(
        &metrics,
        "/grpc.health.v1.Health/Nope",
        || trailers_only("12"),
        true,
    )
    .await;
    let text = scrape(&registry);
    assert!(
        text.contains(
            "pos_rpc_server_requests_total{service=\"unknown\",method=\"unknown\",code=\"UNIMPLEMENTED\"} 2"
        ),
        "{text}"
    );
    assert!(!text.contains("evil"), "{text}");
    assert!(!text.contains("Nope"), "{text}");
}

#[tokio::test]
async fn a_call_in_progress_is_in_flight() {
    let mut registry = Registry::default();
    let metrics = RpcMetrics::register(&mut registry);
    let call = metrics.start(WATCH);
    assert!(scrape(&registry).contains(
        "pos_rpc_server_in_flight{service=\"grpc.health.v1.Health\",method=\"Watch\"} 1"
    ));
    call.finish(Code::Ok);
    assert!(scrape(&registry).contains(
        "pos_rpc_server_in_flight{service=\"grpc.health.v1.Health\",method=\"Watch\"} 0"
    ));
}
