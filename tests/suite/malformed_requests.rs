//! Request bodies that are not one well-formed message, sent as hand-built gRPC frames
//! (a flag byte, a 4-byte length, the message) over gRPC on HTTP/2 and grpc-web on
//! HTTP/1.1: through the edge and straight to a role, each answered with a status a
//! client can act on (INVALID_ARGUMENT `MALFORMED_REQUEST`, RESOURCE_EXHAUSTED
//! `MESSAGE_TOO_LARGE`) carrying `ErrorInfo`. Also: how large a header block passes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use pos_common::role::MAX_MESSAGE_BYTES;
use pos_proto::v1::{self as pb, user_service_client::UserServiceClient};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{Engine, app::TestApp, stack::TestStack};

/// One uncompressed gRPC frame holding `message`.
fn frame(message: &[u8]) -> Vec<u8> {
    let length = u32::try_from(message.len()).expect("a small message");
    let mut bytes = vec![0];
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(message);
    bytes
}

/// A frame header declaring `length` bytes, without the message.
fn header_declaring(length: usize) -> Vec<u8> {
    let mut bytes = frame(&[]);
    let length = u32::try_from(length).expect("fits a frame header");
    bytes[1..5].copy_from_slice(&length.to_be_bytes());
    bytes
}

/// Bodies that are not one well-formed message, with the answer each must get.
fn bad_bodies() -> Vec<(&'static str, Vec<u8>, Code, &'static str)> {
    const MALFORMED: &str = "MALFORMED_REQUEST";
    let mut truncated = header_declaring(10);
    truncated.extend_from_slice(&[8, 1, 8, 1]);
    let mut too_large = header_declaring(MAX_MESSAGE_BYTES + 1);
    too_large.extend_from_slice(&[0; 64]);
    vec![
        ("empty body", vec![], Code::InvalidArgument, MALFORMED),
        (
            "truncated header",
            vec![0, 0, 0],
            Code::InvalidArgument,
            MALFORMED,
        ),
        (
            "truncated message",
            truncated,
            Code::InvalidArgument,
            MALFORMED,
        ),
        (
            "two messages",
            [frame(&[]), frame(&[])].concat(),
            Code::InvalidArgument,
            MALFORMED,
        ),
        (
            // Field 1 with wire type 7, which protobuf does not have.
            "garbage message",
            frame(&[0x0f, 0xff, 0xff]),
            Code::InvalidArgument,
            MALFORMED,
        ),
        (
            "unknown frame flag",
            vec![7, 0, 0, 0, 0],
            Code::InvalidArgument,
            MALFORMED,
        ),
        (
            "flagged compressed without a grpc-encoding",
            vec![1, 0, 0, 0, 0],
            Code::InvalidArgument,
            MALFORMED,
        ),
        (
            "declared length over the limit",
            too_large,
            Code::ResourceExhausted,
            "MESSAGE_TOO_LARGE",
        ),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    /// `application/grpc` on HTTP/2.
    Grpc,
    /// `application/grpc-web+proto` on HTTP/1.1.
    GrpcWeb,
}

/// Posts `body` to `path` and reads the call's status, wherever the server put it.
async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    transport: Transport,
    body: Vec<u8>,
) -> Status {
    post_with_headers(addr, path, transport, body, &[]).await
}

async fn post_with_headers(
    addr: std::net::SocketAddr,
    path: &str,
    transport: Transport,
    body: Vec<u8>,
    headers: &[(String, String)],
) -> Status {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(matches!(transport, Transport::Grpc))
        .build_http::<Full<Bytes>>();
    let content_type = match transport {
        Transport::Grpc => "application/grpc",
        Transport::GrpcWeb => "application/grpc-web+proto",
    };
    let mut request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .header("x-grpc-web", "1");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body))).expect("request");
    let response = client.request(request).await.expect("an HTTP answer");
    assert_eq!(response.status(), http::StatusCode::OK, "{response:?}");
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let collected = response
        .into_body()
        .collect()
        .await
        .expect("the response body");
    if let Some(status) = collected.trailers().and_then(Status::from_header_map) {
        return status;
    }
    let trailers = grpc_web_trailers(&collected.to_bytes());
    Status::from_header_map(&trailers).expect("a grpc-status in the trailers")
}

/// The trailer frame (flag 0x80) of a grpc-web response body, as headers.
fn grpc_web_trailers(mut body: &[u8]) -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    while body.len() >= 5 {
        let flag = body[0];
        let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let payload = &body[5..5 + length];
        if flag & 0x80 != 0 {
            for line in String::from_utf8_lossy(payload).split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    trailers.insert(
                        http::HeaderName::from_bytes(name.trim().as_bytes()).expect("a name"),
                        value.trim().parse().expect("a value"),
                    );
                }
            }
        }
        body = &body[5 + length..];
    }
    trailers
}

#[track_caller]
fn assert_structured(status: &Status, code: Code, reason: &str, what: &str) {
    assert_eq!(status.code(), code, "{what}: {status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("{what}: no ErrorInfo in {status:?}"));
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        (reason, "pos.v1"),
        "{what}"
    );
}

#[tokio::test]
async fn malformed_bodies_get_structured_errors_through_the_edge() {
    let stack = TestStack::start(Engine::Sqlite).await;
    let path = "/pos.v1.UserService/GetJwks";
    for transport in [Transport::Grpc, Transport::GrpcWeb] {
        let fine = post(stack.addr, path, transport, frame(&[])).await;
        assert_eq!(fine.code(), Code::Ok, "{transport:?}: {fine:?}");
        for (what, body, code, reason) in bad_bodies() {
            let status = post(stack.addr, path, transport, body).await;
            assert_structured(&status, code, reason, &format!("{transport:?}, {what}"));
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_structured_errors_from_a_role_reached_directly() {
    let app = TestApp::start(Engine::Sqlite).await;
    let path = "/pos.v1.StoreService/ListProducts";
    // A well-formed call gets as far as the handler, which wants a token.
    let fine = post(app.addr, path, Transport::Grpc, frame(&[])).await;
    assert_structured(&fine, Code::Unauthenticated, "TOKEN_MISSING", "one message");
    for (what, body, code, reason) in bad_bodies() {
        let status = post(app.addr, path, Transport::Grpc, body).await;
        assert_structured(&status, code, reason, what);
    }
    app.stop().await;
}

/// `count` headers of 1 KiB each.
fn padding(count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| (format!("x-padding-{i}"), "p".repeat(1024)))
        .collect()
}

#[tokio::test]
async fn header_blocks_of_24_kib_are_accepted_over_grpc_and_grpc_web() {
    let stack = TestStack::start(Engine::Sqlite).await;
    let mut request = tonic::Request::new(pb::GetJwksRequest {});
    for (name, value) in padding(24) {
        let name: tonic::metadata::MetadataKey<_> = name.parse().expect("a key");
        request
            .metadata_mut()
            .insert(name, value.parse().expect("a value"));
    }
    UserServiceClient::new(stack.channel())
        .get_jwks(request)
        .await
        .expect("24 KiB of headers over HTTP/2");

    let status = post_with_headers(
        stack.addr,
        "/pos.v1.UserService/GetJwks",
        Transport::GrpcWeb,
        frame(&[]),
        &padding(24),
    )
    .await;
    assert_eq!(status.code(), Code::Ok, "grpc-web on HTTP/1.1: {status:?}");
    stack.stop().await;
}
