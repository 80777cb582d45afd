//! `kubectl pos batch list`: the namespace's batch Jobs only, newest first, with job and
//! term from their labels, Running/Complete/Failed, start, duration and whether started
//! by hand; `--limit` keeps the newest.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use super::{
    Kubeconfig,
    fake_api::FakeApi,
    fixtures::{batch_labels, job},
    run,
};

/// Finished batch Jobs in 2025, one still running since two hours ago (its start, as
/// printed, returned), a migration Job and another namespace's batch Job.
fn history() -> (Vec<Value>, String) {
    let running_since = Utc::now() - TimeDelta::hours(2);
    let labels = |job: &str, term: &str| batch_labels("pos", job, term);
    let mut migration = job(
        "pos-alpha",
        "pos-migrate-1",
        "none",
        json!({"app.kubernetes.io/part-of": "pos-mesh", "app.kubernetes.io/component": "migrate"}),
        false,
        "2025-03-01T00:00:00Z",
        Some(("Complete", "2025-03-01T00:00:10Z")),
    );
    migration["metadata"]["ownerReferences"] = json!([]);
    let objects = vec![
        job(
            "pos-alpha",
            "pos-settlement-month-28990000",
            "pos-settlement-month",
            labels("settlement", "month"),
            false,
            "2025-02-01T00:30:00Z",
            Some(("Complete", "2025-02-01T00:30:09Z")),
        ),
        job(
            "pos-alpha",
            "pos-settlement-day-29012340",
            "pos-settlement-day",
            labels("settlement", "day"),
            false,
            "2025-02-28T00:10:00Z",
            Some(("Complete", "2025-02-28T00:12:05Z")),
        ),
        job(
            "pos-alpha",
            "pos-settlement-week-29012345",
            "pos-settlement-week",
            labels("settlement", "week"),
            false,
            &running_since.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            None,
        ),
        job(
            "pos-alpha",
            "pos-settlement-day-manual-b2c4d",
            "pos-settlement-day",
            labels("settlement", "day"),
            true,
            "2025-02-28T09:30:00Z",
            Some(("Failed", "2025-02-28T09:30:42Z")),
        ),
        job(
            "pos-alpha",
            "pos-product-sales-week-29010000",
            "pos-product-sales-week",
            labels("product-sales", "week"),
            false,
            "2025-02-24T00:20:00Z",
            Some(("Complete", "2025-02-24T01:25:30Z")),
        ),
        migration,
        job(
            "pos-beta",
            "pos-settlement-day-29012999",
            "pos-settlement-day",
            labels("settlement", "day"),
            false,
            "2025-03-02T00:10:00Z",
            Some(("Complete", "2025-03-02T00:11:00Z")),
        ),
    ];
    (
        objects,
        running_since.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

#[tokio::test]
async fn kubectl_batch_list_shows_batch_jobs_newest_first() {
    let (objects, started) = history();
    let api = FakeApi::start(objects).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let out = run(kubeconfig.command(), &["batch", "list"]).await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "NAME                              JOB             TERM    STATUS     STARTED                DURATION   MANUAL",
            &format!(
                "pos-settlement-week-29012345      settlement      week    Running    {started}   2h00m      no"
            ),
            "pos-settlement-day-manual-b2c4d   settlement      day     Failed     2025-02-28 09:30:00Z   42s        yes",
            "pos-settlement-day-29012340       settlement      day     Complete   2025-02-28 00:10:00Z   2m05s      no",
            "pos-product-sales-week-29010000   product-sales   week    Complete   2025-02-24 00:20:00Z   1h05m      no",
            "pos-settlement-month-28990000     settlement      month   Complete   2025-02-01 00:30:00Z   9s         no",
        ]
    );
    let requests = api.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/apis/batch/v1/namespaces/pos-alpha/jobs");
    assert_eq!(
        requests[0].query.get("labelSelector").map(String::as_str),
        Some("app.kubernetes.io/part-of=pos-mesh,app.kubernetes.io/component=batch")
    );
}

#[tokio::test]
async fn kubectl_batch_list_limit_keeps_the_newest() {
    let (objects, started) = history();
    let api = FakeApi::start(objects).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let out = run(kubeconfig.command(), &["batch", "list", "--limit", "2"]).await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "NAME                              JOB          TERM   STATUS    STARTED                DURATION   MANUAL",
            &format!(
                "pos-settlement-week-29012345      settlement   week   Running   {started}   2h00m      no"
            ),
            "pos-settlement-day-manual-b2c4d   settlement   day    Failed    2025-02-28 09:30:00Z   42s        yes",
        ]
    );
}
