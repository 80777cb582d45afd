//! The real `pos` binary serves Prometheus metrics on `POS_METRICS_LISTEN`: each call
//! counted by service, method and its real gRPC code (a refused call too), its latency
//! in a histogram, and the process's memory, CPU time and open files.

use std::time::Duration;

use crate::support::{
    Engine, TestDb, bearer,
    process::{PosProcess, migrate, pos},
};
use pos_proto::v1::{self as pb, store_service_client::StoreServiceClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A port free a moment ago: `pos` binds it itself, so the test knows where to scrape.
fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// `GET /metrics` at `addr`: the content type and the body.
async fn scrape(addr: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: pos\r\n\r\n")
        .await
        .expect("request");
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("answered in time")
    .expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let content_type = head
        .lines()
        .find_map(|line| line.strip_prefix("content-type: "))
        .expect("a content type")
        .to_string();
    (content_type, body.to_string())
}

/// The value of the sample whose name and labels are `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a number"))
}

fn assert_process_metrics(text: &str) {
    assert!(
        sample(text, "process_resident_memory_bytes").expect("RSS") > 0.0,
        "{text}"
    );
    assert!(
        sample(text, "process_cpu_seconds_total").is_some(),
        "{text}"
    );
    assert!(
        sample(text, "process_open_fds").expect("open fds") > 0.0,
        "{text}"
    );
}

#[tokio::test]
async fn pos_serve_store_counts_calls_by_their_grpc_code() {
    let (test_db, _db) = TestDb::create(Engine::Sqlite).await;
    let url = test_db.url();
    migrate(&url, "store").await;
    let files = tempfile::tempdir().expect("temp dir");
    let (_issuer, key_file, jwks_file) = crate::support::key_files(files.path());
    let metrics_addr = free_port();
    let mut command = pos();
    command
        .args(["serve", "store", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", &metrics_addr])
        .env("POS_DATABASE_URL", &url)
        .env("POS_JWKS_FILE", &jwks_file)
        .env("POS_SIGNING_KEY_FILE", &key_file);
    let served = PosProcess::spawn("serve store", command).await;
    let channel = Channel::from_shared(format!("http://{}", served.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    for _ in 0..2 {
        HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: "pos.v1.StoreService".into(),
            })
            .await
            .expect("health check");
    }
    let refused = StoreServiceClient::new(channel.clone())
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let (content_type, text) = scrape(&metrics_addr).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert_eq!(
        sample(
            &text,
            r#"pos_rpc_server_requests_total{service="grpc.health.v1.Health",method="Check",code="OK"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"pos_rpc_server_requests_total{service="pos.v1.StoreService",method="ListProducts",code="UNAUTHENTICATED"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"pos_rpc_server_duration_seconds_count{service="grpc.health.v1.Health",method="Check"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"pos_rpc_server_duration_seconds_bucket{le="+Inf",service="pos.v1.StoreService",method="ListProducts"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"pos_rpc_server_in_flight{service="pos.v1.StoreService",method="ListProducts"}"#
        ),
        Some(0.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE pos_rpc_server_duration_seconds histogram"),
        "{text}"
    );
    assert_process_metrics(&text);
    served.stop_with_sigterm().await;
}

#[tokio::test]
async fn pos_up_counts_the_calls_its_roles_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let metrics_addr = free_port();
    let mut command = pos();
    command
        .args([
            "up",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--shutdown-grace-secs",
            "2",
        ])
        .args(["--metrics-listen", &metrics_addr])
        .arg("--data-dir")
        .arg(dir.path());
    let up = PosProcess::spawn("up", command).await;
    let demo: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo.json")).expect("demo.json"),
    )
    .expect("JSON");
    let tablet = demo["device_tokens"][0].as_str().expect("a tablet token");
    let series = r#"pos_rpc_server_requests_total{service="pos.v1.StoreService",method="ListProducts",code="OK"}"#;
    let (_, before) = scrape(&metrics_addr).await;
    let before = sample(&before, series).unwrap_or(0.0);
    let channel = Channel::from_shared(format!("http://{}", up.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    StoreServiceClient::with_interceptor(channel, bearer(tablet))
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("the menu");

    let (_, text) = scrape(&metrics_addr).await;
    assert_eq!(sample(&text, series), Some(before + 1.0), "{text}");
    assert_process_metrics(&text);
    up.stop_with_sigterm().await;
}
