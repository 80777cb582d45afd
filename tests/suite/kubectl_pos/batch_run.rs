//! `kubectl pos batch run`: the Job POSTed is the CronJob's job template as
//! `kubectl create job --from=cronjob/…` makes it (name, labels, annotations, owner,
//! spec), with `--date` on the `batch` container only; refused with nothing POSTed while a
//! Job of the CronJob runs (unless `--force`) or for bad input. Also the fixtures and
//! checks the other `batch run` tests share.

use serde_json::{Value, json};

use super::{
    Kubeconfig,
    fake_api::FakeApi,
    fixtures::{batch_labels, cronjob, job, job_template_spec},
    run,
};

pub(super) const SETTLEMENT_DAY: &str = "app.kubernetes.io/part-of=pos-mesh,app.kubernetes.io/component=batch,\
                              pos-mesh.io/job=settlement,pos-mesh.io/term=day";

/// The batch CronJobs of release `pos` in pos-alpha, one in pos-beta, a finished Job of
/// the settlement-day CronJob and a running one of settlement-week.
pub(super) fn schedules() -> Vec<Value> {
    vec![
        cronjob("pos-alpha", "pos", "settlement", "day", &[]),
        cronjob(
            "pos-alpha",
            "pos",
            "settlement",
            "week",
            &["pos-settlement-week-29012345"],
        ),
        cronjob("pos-alpha", "pos", "product-sales", "week", &[]),
        cronjob("pos-beta", "pos", "settlement", "day", &[]),
        job(
            "pos-alpha",
            "pos-settlement-day-29012340",
            "pos-settlement-day",
            batch_labels("pos", "settlement", "day"),
            false,
            "2025-02-28T00:10:00Z",
            Some(("Complete", "2025-02-28T00:12:00Z")),
        ),
        job(
            "pos-alpha",
            "pos-settlement-week-29012345",
            "pos-settlement-week",
            batch_labels("pos", "settlement", "week"),
            false,
            "2025-03-01T00:10:00Z",
            None,
        ),
    ]
}

/// The Job kubectl would make from `<release>-<job>-<term>` under `name`, with `spec`.
pub(super) fn expected_job(name: &str, release: &str, job: &str, term: &str, spec: Value) -> Value {
    let cronjob = format!("{release}-{job}-{term}");
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": batch_labels(release, job, term),
            "annotations": {
                "cronjob.kubernetes.io/instantiate": "manual",
                "pos-mesh.io/owner": "settlement-team",
            },
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": cronjob,
                "uid": format!("uid-{cronjob}"),
                "controller": true,
            }],
        },
        "spec": spec,
    })
}

/// The one Job POSTed, checked to be named `<cronjob>-manual-<5 of generateName's
/// characters>`, and its name.
pub(super) fn posted_job(api: &FakeApi, cronjob: &str) -> (Value, String) {
    let posted = api.posted();
    assert_eq!(posted.len(), 1, "one Job POSTed: {posted:#?}");
    let job = posted[0].clone();
    let name = job["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_string();
    let suffix = name
        .strip_prefix(&format!("{cronjob}-manual-"))
        .unwrap_or_else(|| panic!("{name} is {cronjob}-manual-…"));
    assert_eq!(suffix.len(), 5, "{name}");
    assert!(
        suffix
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{name}"
    );
    (job, name)
}

#[tokio::test]
async fn kubectl_batch_run_posts_the_cronjobs_job_with_the_date_on_the_batch_container() {
    let api = FakeApi::start(schedules()).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let args = [
        "batch",
        "run",
        "--job",
        "settlement",
        "--term",
        "day",
        "--date",
        "2025-02-28",
    ];
    let out = run(kubeconfig.command(), &args).await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let (posted, name) = posted_job(&api, "pos-settlement-day");
    let mut spec = job_template_spec("settlement", "day");
    spec["template"]["spec"]["containers"][0]["args"] = json!([
        "batch",
        "run",
        "--job",
        "settlement",
        "--term",
        "day",
        "--date",
        "2025-02-28"
    ]);
    assert_eq!(
        posted,
        expected_job(&name, "pos", "settlement", "day", spec)
    );
    assert_eq!(out.stdout, format!("job.batch/{name} created\n"));

    let requests = api.requests();
    assert_eq!(
        requests[0].path,
        "/apis/batch/v1/namespaces/pos-alpha/cronjobs"
    );
    assert_eq!(
        requests[0].query.get("labelSelector").map(String::as_str),
        Some(SETTLEMENT_DAY)
    );
    let post = requests
        .iter()
        .find(|request| request.method == "POST")
        .expect("a POST");
    assert_eq!(post.path, "/apis/batch/v1/namespaces/pos-alpha/jobs");
    assert!(
        api.namespaces()
            .iter()
            .all(|namespace| namespace == "pos-alpha")
    );
}

#[tokio::test]
async fn kubectl_batch_run_without_date_copies_the_template_spec_unchanged() {
    let api = FakeApi::start(schedules()).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let args = ["batch", "run", "--job", "product-sales", "--term", "week"];
    let out = run(kubeconfig.command(), &args).await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let (posted, name) = posted_job(&api, "pos-product-sales-week");
    let spec = job_template_spec("product-sales", "week");
    assert_eq!(
        posted,
        expected_job(&name, "pos", "product-sales", "week", spec)
    );
}

#[tokio::test]
async fn kubectl_batch_run_refuses_while_a_job_of_the_cronjob_runs_unless_forced() {
    let api = FakeApi::start(schedules()).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);
    let args = ["batch", "run", "--job", "settlement", "--term", "week"];

    let refused = run(kubeconfig.command(), &args).await;

    assert_eq!(refused.code(), Some(3), "stdout: {}", refused.stdout);
    assert!(
        refused.stderr.contains(
            "Job `pos-settlement-week-29012345` of CronJob `pos-settlement-week` is still running"
        ),
        "stderr: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--force"),
        "stderr: {}",
        refused.stderr
    );
    assert!(api.posted().is_empty());

    let forced = run(kubeconfig.command(), &[&args[..], &["--force"]].concat()).await;

    assert_eq!(forced.code(), Some(0), "stderr: {}", forced.stderr);
    assert!(
        forced.stderr.contains("pos-settlement-week-29012345"),
        "{}",
        forced.stderr
    );
    let (posted, name) = posted_job(&api, "pos-settlement-week");
    let spec = job_template_spec("settlement", "week");
    assert_eq!(
        posted,
        expected_job(&name, "pos", "settlement", "week", spec)
    );
}

#[tokio::test]
async fn kubectl_batch_run_refuses_for_a_job_only_the_cronjobs_status_lists() {
    // A running Job without an ownerReference that the CronJob still counts as active.
    let mut orphan = job(
        "pos-alpha",
        "pos-settlement-day-manual-x7k2p",
        "pos-settlement-day",
        batch_labels("pos", "settlement", "day"),
        true,
        "2025-03-01T00:10:00Z",
        None,
    );
    orphan["metadata"]["ownerReferences"] = json!([]);
    let objects = vec![
        cronjob(
            "pos-alpha",
            "pos",
            "settlement",
            "day",
            &["pos-settlement-day-manual-x7k2p"],
        ),
        orphan,
    ];
    let api = FakeApi::start(objects).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let out = run(
        kubeconfig.command(),
        &["batch", "run", "--job", "settlement", "--term", "day"],
    )
    .await;

    assert_eq!(out.code(), Some(3), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("`pos-settlement-day-manual-x7k2p`"),
        "{}",
        out.stderr
    );
    assert!(api.posted().is_empty());
}

#[tokio::test]
async fn kubectl_batch_run_refuses_bad_input_before_any_request() {
    let api = FakeApi::start(schedules()).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);
    let base = ["batch", "run", "--job", "settlement", "--term", "day"];

    for bad in [
        &[&base[..], &["--date", "2025-02-30"]].concat(),
        &[&base[..], &["--date", "28-02-2025"]].concat(),
        &[&base[..], &["--date", "2025-2-8"]].concat(),
        &["batch", "run", "--job", "refunds", "--term", "day"][..],
        &["batch", "run", "--job", "settlement", "--term", "year"][..],
        &["batch", "run", "--term", "day"][..],
    ] {
        let out = run(kubeconfig.command(), bad).await;
        assert_eq!(out.code(), Some(2), "{bad:?}: {}", out.stderr);
        assert!(out.stderr.contains("error:"), "{bad:?}: {}", out.stderr);
    }
    assert!(api.requests().is_empty(), "{:#?}", api.requests());
}

#[tokio::test]
async fn kubectl_batch_run_with_date_needs_a_batch_container() {
    let mut renamed = cronjob("pos-alpha", "pos", "settlement", "day", &[]);
    renamed["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["name"] =
        json!("pos");
    let api = FakeApi::start(vec![renamed]).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let args = [
        "batch",
        "run",
        "--job",
        "settlement",
        "--term",
        "day",
        "--date",
        "2025-02-28",
    ];
    let out = run(kubeconfig.command(), &args).await;

    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr
            .contains("CronJob `pos-settlement-day` has no container named `batch`"),
        "{}",
        out.stderr
    );
    assert!(api.posted().is_empty());
}
