//! What the edge's rate limit counts and what it never touches: health and reflection
//! answer however busy an address is, and calls whose token proves no one are counted
//! against their address like anonymous calls.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pos_common::clock::ManualClock;
use tonic::{Code, Status};

use crate::{
    edge_pipeline::{call, edge, issuer, memory, owner_bearer},
    support::{assert_error, reason},
};

const HEALTH: &str = "/grpc.health.v1.Health/Check";
/// Public and anonymous; the test edge has no user backend, so an allowed call is
/// answered UNIMPLEMENTED after the rate limit let it through.
const GET_JWKS: &str = "/pos.v1.UserService/GetJwks";

/// A clock at the start of a one-minute window, so a test never straddles two.
fn window_start() -> std::sync::Arc<ManualClock> {
    // 1,800,000,000 s is a whole number of minutes after the epoch.
    let start: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).expect("an instant");
    ManualClock::new(start)
}

/// Whether the rate limit let an anonymous GetJwks through.
fn let_through(result: &Result<(), Status>) -> bool {
    matches!(result, Err(status) if status.code() == Code::Unimplemented)
}

async fn list_services(addr: std::net::SocketAddr) -> Result<(), Status> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner()
        .message()
        .await?
        .ok_or_else(|| Status::internal("no reflection answer"))
        .map(|_| ())
}

#[tokio::test]
async fn health_and_reflection_are_never_rate_limited_nor_counted() {
    let clock = window_start();
    let edge = edge(memory(), 3, issuer(), clock.clone()).await;
    // Probes do not spend the address's budget ...
    for probe in 0..6 {
        call(edge.addr, HEALTH, &[])
            .await
            .unwrap_or_else(|e| panic!("health check {probe}: {e:?}"));
    }
    list_services(edge.addr).await.expect("reflection");
    // ... which is whole for ordinary anonymous calls,
    for attempt in 0..3 {
        let result = call(edge.addr, GET_JWKS, &[]).await;
        assert!(let_through(&result), "call {attempt}: {result:?}");
    }
    let over = call(edge.addr, GET_JWKS, &[]).await;
    assert_error(over, Code::ResourceExhausted, "RATE_LIMITED");
    // ... and an address over its limit still passes its probes.
    call(edge.addr, HEALTH, &[])
        .await
        .expect("health over the limit");
    list_services(edge.addr)
        .await
        .expect("reflection over the limit");
}

#[tokio::test]
async fn failed_authentications_count_against_the_callers_address() {
    let clock = window_start();
    let edge = edge(memory(), 3, issuer(), clock.clone()).await;
    // Signed by a key the edge does not know: a forged token.
    let forged = owner_bearer(&issuer(), 1);
    let path = "/pos.v1.StoreService/GetMyStore";
    for attempt in 0..3 {
        let status = call(edge.addr, path, &[("authorization", forged.clone())])
            .await
            .expect_err("a forged token is refused");
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::Unauthenticated, "TOKEN_INVALID"),
            "attempt {attempt}: {status:?}"
        );
    }
    let status = assert_error(
        call(edge.addr, path, &[("authorization", forged.clone())]).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    let details = tonic_types::StatusExt::get_error_details(&status);
    let info = details.error_info().expect("error info");
    assert_eq!(info.domain, "pos.v1");
    assert!(
        info.metadata.contains_key("retry_after_seconds"),
        "{info:?}"
    );
    // A missing token on an owner RPC proves no one either.
    assert_error(
        call(edge.addr, path, &[]).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    // The address's anonymous budget is the one spent.
    assert_error(
        call(edge.addr, GET_JWKS, &[]).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    // A caller with a valid token has a budget of its own, even from that address.
    call(
        edge.addr,
        path,
        &[("authorization", owner_bearer(&edge.issuer, 1))],
    )
    .await
    .expect("a valid owner is not held to the address's failures");
    // Next minute, the address may try again.
    clock.advance(Duration::from_secs(60));
    let status = call(edge.addr, path, &[("authorization", forged)])
        .await
        .expect_err("still forged");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

/// Free of rate limits, health and reflection get no way to hold a connection: the edge
/// does not serve health's Watch stream, and ends a reflection stream at its deadline.
#[tokio::test]
async fn free_infrastructure_calls_cannot_hold_a_connection_open() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let edge = edge(memory(), 3, issuer(), window_start()).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", edge.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let watch = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .watch(tonic_health::pb::HealthCheckRequest::default())
        .await;
    assert_eq!(
        watch.expect_err("not served").code(),
        Code::Unimplemented,
        "health Watch"
    );

    // A reflection stream whose client never closes its side.
    let (requests, pending) = tokio::sync::mpsc::channel(1);
    requests
        .send(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        })
        .await
        .expect("queue");
    let started = std::time::Instant::now();
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(pending))
        .await
        .expect("reflection")
        .into_inner();
    responses.message().await.expect("read").expect("the list");
    let ended = tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("the edge ends the stream");
    assert_eq!(
        ended.expect_err("cut").code(),
        Code::DeadlineExceeded,
        "after {:?}",
        started.elapsed()
    );
    drop(requests);
}

/// A valid token used where it may not go (an owner's on a tablet-only RPC) is charged
/// like a failed one: refusals are never free.
#[tokio::test]
async fn refused_roles_count_against_the_callers_address() {
    let edge = edge(memory(), 3, issuer(), window_start()).await;
    let owner = owner_bearer(&edge.issuer, 1);
    let path = "/pos.v1.TradeService/PlaceOrder";
    for attempt in 0..3 {
        let status = call(edge.addr, path, &[("authorization", owner.clone())])
            .await
            .expect_err("owners do not place orders");
        assert_eq!(status.code(), Code::PermissionDenied, "attempt {attempt}");
    }
    assert_error(
        call(edge.addr, path, &[("authorization", owner)]).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
}
