//! `pos batch` pushes its metrics to a real Prometheus Pushgateway (Debian's
//! `prometheus-pushgateway`, started here), read back from its HTTP API: counters kept
//! across invocations, and a failed invocation leaves the last success time alone.

use std::time::Duration;

use super::Books;
use crate::support::{Engine, process::output};

#[tokio::test]
async fn batch_metrics_reach_a_real_pushgateway() {
    metrics_reach_the_pushgateway(Engine::Sqlite).await;
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The value of `metric` in the Pushgateway group with these labels.
fn pushed(groups: &serde_json::Value, job: &str, term: &str, metric: &str) -> Option<f64> {
    groups["data"].as_array()?.iter().find_map(|group| {
        (group["labels"]["job"] == job && group["labels"]["term"] == term)
            .then(|| group[metric]["metrics"][0]["value"].as_str()?.parse().ok())
            .flatten()
    })
}

async fn metrics_reach_the_pushgateway(engine: Engine) {
    let port = free_port();
    let dir = tempfile::tempdir().expect("dir");
    let mut gateway = tokio::process::Command::new("prometheus-pushgateway")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--persistence.file={}",
            dir.path().join("p").display()
        ))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus-pushgateway is installed (cargo xtask test installs it)");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest_free_get(&base).await;
    let mut books = Books::open(engine).await;
    books.two_days().await;
    let url = books.settlement_db.0.url();
    let envs = [("POS_PUSHGATEWAY_URL", base.clone())];
    let run = [
        "run",
        "--job",
        "settlement",
        "--term",
        "day",
        "--date",
        "2024-12-02",
    ];
    books.run_ok(&url, &run, &envs).await;
    books.run_ok(&url, &run, &envs).await;
    let groups = client().await;
    let value = |metric| pushed(&groups, "settlement", "day", metric);
    assert_eq!(value("pos_batch_runs_total"), Some(4.0), "{groups}");
    assert_eq!(value("pos_batch_successes_total"), Some(4.0));
    assert_eq!(value("pos_batch_failures_total"), Some(0.0));
    assert!(value("pos_batch_last_rows_written").unwrap_or(0.0) > 0.0);
    assert!(value("pos_batch_last_rows_read").unwrap_or(0.0) > 0.0);
    assert!(value("pos_batch_last_duration_seconds").is_some());
    let succeeded_at = value("pos_batch_last_success_timestamp_seconds").expect("a success time");
    assert!(succeeded_at > 1.7e9, "{succeeded_at}");

    // A failed invocation (the store role is gone) counts as a failure and leaves the
    // last success time alone.
    books.stop_store().await;
    let (status, _, stderr) = output(books.batch(&url, &run, &envs)).await;
    assert!(!status.success());
    assert!(stderr.contains("store role"), "{stderr}");
    let groups = client().await;
    let value = |metric| pushed(&groups, "settlement", "day", metric);
    assert_eq!(value("pos_batch_runs_total"), Some(5.0), "{groups}");
    assert_eq!(value("pos_batch_failures_total"), Some(1.0));
    assert_eq!(
        value("pos_batch_last_success_timestamp_seconds"),
        Some(succeeded_at)
    );
    books.finish().await;
    gateway.kill().await.ok();
}

/// A function reading the Pushgateway's metrics API (over plain HTTP/1.1), once it
/// answers.
async fn reqwest_free_get(
    base: &str,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = serde_json::Value>>> {
    let url = format!("{base}/api/v1/metrics");
    let get = move || {
        let url = url.clone();
        Box::pin(async move { http_get_json(&url).await.expect("the Pushgateway answers") })
            as std::pin::Pin<Box<dyn std::future::Future<Output = serde_json::Value>>>
    };
    for _ in 0..100 {
        if http_get_json(&format!("{base}/api/v1/metrics"))
            .await
            .is_some()
        {
            return get;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the Pushgateway did not start");
}

async fn http_get_json(url: &str) -> Option<serde_json::Value> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client.get(url.parse().ok()?).await.ok()?;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}
