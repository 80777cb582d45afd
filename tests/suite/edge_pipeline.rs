//! The edge pipeline in isolation, with recording backends instead of services: what it
//! strips and adds before forwarding, limits shared by replicas through Redis, the JWKS
//! document, CORS, reflection that shows public services only, and the streams in flight
//! ended when the edge stops.

use std::{
    collections::HashMap,
    convert::Infallible,
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pos_common::{
    ApiResult,
    auth::{
        Authenticator, DeviceCredential, DeviceCredentials, KeyCache, Revocations, SigningKey,
        StaticJwks, TokenIssuer,
    },
    clock::{self, ManualClock, SharedClock},
    domain::{DeviceId, StoreId, UserId},
    ephemeral::{self, MemoryStore, SharedEphemeral},
    peer::{self, Peer},
    role::{ConnectionLimits, Front},
    stopping::Stopping,
};
use pos_edge::{EdgeConfig, EdgeDeps};
use tonic::{Code, Status, body::Body, transport::Channel};

#[derive(Clone, PartialEq, prost::Message)]
struct Anything {}

/// Every tablet's current credential is version 3.
struct AllDevicesAtVersion3;

#[async_trait]
impl DeviceCredentials for AllDevicesAtVersion3 {
    async fn current(&self, _: StoreId, _: DeviceId) -> ApiResult<Option<DeviceCredential>> {
        Ok(Some(DeviceCredential {
            version: 3,
            revoked: false,
        }))
    }
}

/// `Bearer <owner token>` of owner `id` (of store `id`).
pub(crate) fn owner_bearer(issuer: &TokenIssuer, id: i64) -> String {
    format!(
        "Bearer {}",
        issuer.owner_access(UserId::from_stored(id), Some(StoreId::from_stored(id)), 60)
    )
}

pub(crate) fn memory() -> SharedEphemeral {
    Arc::new(MemoryStore::new(clock::system()))
}

type Seen = Arc<Mutex<Vec<http::HeaderMap>>>;

/// A backend that records request headers and answers a bare OK (no message).
fn recording() -> (Peer, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let service = tower::service_fn(move |request: http::Request<Body>| {
        log.lock().expect("lock").push(request.headers().clone());
        async move {
            let response = http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "0")
                .body(Body::empty())
                .expect("response");
            Ok::<_, Infallible>(response)
        }
    });
    (peer::in_process(service), seen)
}

/// Records like the recording backend, but holds WatchOpenTrades open: its answer is
/// headers and then a body that never ends, as a quiet watch's is.
fn with_an_endless_watch(record: Peer) -> Peer {
    peer::in_process(tower::service_fn(move |request: http::Request<Body>| {
        let record = record.clone();
        async move {
            if request.uri().path() == "/pos.v1.TradeService/WatchOpenTrades" {
                let endless =
                    futures::stream::pending::<Result<hyper::body::Frame<bytes::Bytes>, Status>>();
                let response = http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(Body::new(http_body_util::StreamBody::new(endless)))
                    .expect("response");
                return Ok(response);
            }
            tower::ServiceExt::oneshot(record, request).await
        }
    }))
}

/// A backend that never answers in time.
fn slow() -> Peer {
    peer::in_process(tower::service_fn(|_request: http::Request<Body>| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, Infallible>(http::Response::new(Body::empty()))
    }))
}

pub(crate) struct Edge {
    pub addr: std::net::SocketAddr,
    pub issuer: TokenIssuer,
    seen: Seen,
    /// Stops the edge's streams, as the process's stop signal would.
    pub stopping: Stopping,
    /// Serving until the test ends.
    _running: pos::startup::Running,
}

pub(crate) async fn edge(
    ephemeral: SharedEphemeral,
    rate_limit_per_minute: u32,
    issuer: TokenIssuer,
    clock: SharedClock,
) -> Edge {
    let jwks = Arc::new(StaticJwks(issuer.jwks()));
    let keys = Arc::new(KeyCache::new(jwks.clone(), "pos-mesh", "pos-mesh").await);
    let (store, seen) = recording();
    let stopping = Stopping::new();
    let (router, health) = pos_edge::router(
        &EdgeConfig {
            cors_allowed_origins: vec!["https://tablet.example".into()],
            rate_limit_per_minute,
            default_deadline: Duration::from_millis(1500),
            max_message_bytes: 1024,
        },
        EdgeDeps {
            backends: HashMap::from([
                ("pos.v1.StoreService", store.clone()),
                ("pos.v1.TradeService", with_an_endless_watch(store)),
                ("pos.v1.SettlementService", slow()),
            ]),
            auth: Authenticator::new(keys)
                .with_revocations(Revocations::new(ephemeral.clone()))
                .with_devices(Arc::new(AllDevicesAtVersion3)),
            ephemeral,
            jwks,
            clock,
            stopping: stopping.clone(),
        },
    )
    .await
    .expect("edge");
    let running = pos::startup::serve_http(
        "127.0.0.1:0".parse().expect("addr"),
        Front {
            router,
            connections: ConnectionLimits::default(),
            health: Some(health),
        },
    )
    .await
    .expect("serve");
    Edge {
        addr: running.addr,
        issuer,
        seen,
        stopping,
        _running: running,
    }
}

pub(crate) fn issuer() -> TokenIssuer {
    TokenIssuer::new(Arc::new(SigningKey::generate()), "pos-mesh", "pos-mesh")
}

pub(crate) async fn call(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, String)],
) -> Result<(), Status> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(Anything {});
    for (name, value) in headers {
        let key = tonic::metadata::MetadataKey::from_str(name).expect("key");
        request
            .metadata_mut()
            .insert(key, value.parse().expect("value"));
    }
    let path = http::uri::PathAndQuery::from_str(path).expect("path");
    match grpc
        .unary::<Anything, Anything, _>(request, path, tonic_prost::ProstCodec::default())
        .await
    {
        // The recording backend's bare OK: the call went all the way through the edge.
        Err(status)
            if status.code() == Code::Internal
                && status.message() == "Missing response message." =>
        {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

#[tokio::test]
async fn internal_metadata_is_stripped_and_unary_calls_get_a_deadline() {
    let edge = edge(memory(), 1000, issuer(), clock::system()).await;
    let owner = owner_bearer(&edge.issuer, 1);
    let tablet = format!(
        "Bearer {}",
        edge.issuer
            .device(StoreId::from_stored(1), DeviceId::from_stored(2), 3)
    );
    call(
        edge.addr,
        "/pos.v1.StoreService/GetMyStore",
        &[
            ("authorization", owner),
            ("x-pos-principal", "owner:999".into()),
            ("x-pos-store-id", "7".into()),
        ],
    )
    .await
    .expect("owner call");
    call(
        edge.addr,
        "/pos.v1.TradeService/WatchCurrentTrade",
        &[("authorization", tablet.clone())],
    )
    .await
    .expect("stream call");
    call(
        edge.addr,
        "/pos.v1.StoreService/ListProducts",
        &[("authorization", tablet), ("grpc-timeout", "250m".into())],
    )
    .await
    .expect("call with own deadline");
    let owner = owner_bearer(&edge.issuer, 1);
    call(
        edge.addr,
        "/pos.v1.StoreService/GetMyStore",
        &[("authorization", owner), ("grpc-timeout", "60S".into())],
    )
    .await
    .expect("call asking for more than the edge allows");
    let seen = edge.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        seen[3]
            .get("grpc-timeout")
            .map(|v| v.to_str().expect("ascii")),
        Some("1500m"),
        "capped at the edge's deadline"
    );
    assert!(
        seen[0].keys().all(|k| !k.as_str().starts_with("x-pos-")),
        "{:?}",
        seen[0]
    );
    assert_eq!(
        seen[0]
            .get("grpc-timeout")
            .map(|v| v.to_str().expect("ascii")),
        Some("1500m")
    );
    assert!(
        seen[1].get("grpc-timeout").is_none(),
        "streams keep no default deadline"
    );
    assert_eq!(
        seen[2]
            .get("grpc-timeout")
            .map(|v| v.to_str().expect("ascii")),
        Some("250m")
    );
}

#[tokio::test]
async fn a_stopping_edge_ends_the_streams_it_forwards() {
    let edge = edge(memory(), 1000, issuer(), clock::system()).await;
    let channel = Channel::from_shared(format!("http://{}", edge.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(Anything {});
    request.metadata_mut().insert(
        "authorization",
        owner_bearer(&edge.issuer, 1).parse().expect("value"),
    );
    let path = http::uri::PathAndQuery::from_static("/pos.v1.TradeService/WatchOpenTrades");
    let mut stream = grpc
        .server_streaming::<Anything, Anything, _>(
            request,
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect("the watch is open")
        .into_inner();
    // Quiet, as a watch with nothing to say is...
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.message())
            .await
            .is_err()
    );
    // ...until the edge starts to stop: the client is told to go elsewhere.
    edge.stopping.stop();
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("ended promptly");
    crate::support::assert_error(ended, Code::Unavailable, "SERVER_STOPPING");
}

#[tokio::test]
async fn rate_limits_are_shared_by_edge_replicas_through_redis() {
    let shared = ephemeral::connect(
        Some(&crate::support::redis_url()),
        &crate::support::redis_prefix(),
    )
    .await
    .expect("Redis for the test suite");
    // Limits count in one-minute windows: both replicas read one clock, standing at the
    // start of a window, so the test never straddles two.
    // 1,800,000,000 s is a whole number of minutes after the epoch.
    let start: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).expect("a valid instant");
    let clock = ManualClock::new(start);
    let issuer = issuer();
    let first = edge(shared.clone(), 5, issuer.clone(), clock.clone()).await;
    let second = edge(shared, 5, issuer.clone(), clock.clone()).await;
    let other = owner_bearer(&issuer, 2);
    let owner = owner_bearer(&issuer, 1);
    let path = "/pos.v1.StoreService/GetMyStore";
    for replica in [&first, &second, &first, &second, &first] {
        call(replica.addr, path, &[("authorization", owner.clone())])
            .await
            .expect("within the limit");
    }
    for replica in [&first, &second] {
        let status = call(replica.addr, path, &[("authorization", owner.clone())])
            .await
            .expect_err("over");
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = tonic_types::StatusExt::get_error_details(&status);
        assert_eq!(
            details.error_info().map(|i| i.reason.as_str()),
            Some("RATE_LIMITED")
        );
    }
    call(first.addr, path, &[("authorization", other)])
        .await
        .expect("another owner has their own budget");
    // The next minute is a new window with a fresh budget.
    clock.advance(Duration::from_secs(60));
    call(second.addr, path, &[("authorization", owner.clone())])
        .await
        .expect("a new window");
}

#[tokio::test]
async fn jwks_cors_and_reflection() {
    let edge = edge(memory(), 1000, issuer(), clock::system()).await;
    let router_addr = edge.addr;

    // The JWKS document over plain HTTP.
    let body = http_get(router_addr, "/.well-known/jwks.json", &[]).await;
    let jwks: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).expect("body")).expect("json");
    assert_eq!(
        jwks["keys"][0]["kid"].as_str(),
        edge.issuer.jwks().keys[0].common.key_id.as_deref()
    );
    assert_eq!(jwks["keys"][0]["alg"].as_str(), Some("EdDSA"));

    // CORS: the configured origin is allowed, another is not.
    let allowed = http_options(router_addr, "https://tablet.example").await;
    assert!(
        allowed.contains("access-control-allow-origin: https://tablet.example"),
        "{allowed}"
    );
    let refused = http_options(router_addr, "https://evil.example").await;
    assert!(
        !refused.contains("access-control-allow-origin"),
        "{refused}"
    );

    // Reflection lists the public services it routes, never internal ones.
    let channel = Channel::from_shared(format!("http://{router_addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let response = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner()
        .message()
        .await
        .expect("read")
        .expect("message");
    let Some(
        tonic_reflection::pb::v1::server_reflection_response::MessageResponse::ListServicesResponse(
            list,
        ),
    ) = response.message_response
    else {
        panic!("unexpected {response:?}");
    };
    let mut names: Vec<String> = list
        .service
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.starts_with("pos."))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "pos.v1.SettlementService",
            "pos.v1.StoreService",
            "pos.v1.TradeService"
        ]
    );

    // Nor can a client describe an internal API by symbol or file name.
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    for message in [
        MessageRequest::FileContainingSymbol("pos.v1.StoreInternalService".into()),
        MessageRequest::FileByFilename("pos/v1/store_internal.proto".into()),
        MessageRequest::FileContainingSymbol("pos.v1.ReserveStockRequest".into()),
    ] {
        let request = tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(message.clone()),
        };
        let answer = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection")
            .into_inner()
            .message()
            .await;
        let refused = match &answer {
            Err(status) => status.code() == Code::NotFound,
            Ok(Some(response)) => matches!(
                response.message_response,
                Some(tonic_reflection::pb::v1::server_reflection_response::MessageResponse::ErrorResponse(_))
            ),
            Ok(None) => false,
        };
        assert!(refused, "{message:?} must not be described: {answer:?}");
    }
    // Public symbols are described.
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "pos.v1.StoreService".into(),
        )),
    };
    let response = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner()
        .message()
        .await
        .expect("read")
        .expect("message");
    assert!(matches!(
        response.message_response,
        Some(tonic_reflection::pb::v1::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
    ));
}

async fn http_get(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    let mut extra = String::new();
    for (k, v) in headers {
        extra.push_str(&format!("{k}: {v}\r\n"));
    }
    raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}\r\n"),
    )
    .await
}

async fn http_options(addr: std::net::SocketAddr, origin: &str) -> String {
    raw_http(
        addr,
        &format!(
            "OPTIONS /pos.v1.StoreService/ListProducts HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
             origin: {origin}\r\naccess-control-request-method: POST\r\n\
             access-control-request-headers: authorization,content-type,x-grpc-web\r\n\r\n"
        ),
    )
    .await
    .to_lowercase()
}

async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

#[tokio::test]
async fn the_edge_enforces_deadlines_on_slow_backends() {
    let edge = edge(memory(), 1000, issuer(), clock::system()).await;
    let owner = owner_bearer(&edge.issuer, 1);
    let started = std::time::Instant::now();
    let status = call(
        edge.addr,
        "/pos.v1.SettlementService/GetSettlement",
        &[("authorization", owner)],
    )
    .await
    .expect_err("the backend is too slow");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut at the 1.5 s default"
    );
}
