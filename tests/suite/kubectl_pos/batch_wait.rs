//! `kubectl pos batch run --wait`: it polls the Job it created until a `Complete` or
//! `Failed` condition, prints the outcome and the Job's duration, and exits 0 or 1.

use super::{
    Kubeconfig, Output,
    batch_run::{posted_job, schedules},
    fake_api::{FakeApi, Finish},
    run,
};

/// `kubectl pos batch run --job settlement --term day --wait` against a fake API whose
/// Jobs end as `finish` says.
async fn run_and_wait(finish: Finish) -> (FakeApi, Output) {
    let api = FakeApi::start(schedules()).await;
    api.finish_jobs(finish);
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);
    let args = [
        "batch",
        "run",
        "--job",
        "settlement",
        "--term",
        "day",
        "--wait",
    ];
    let out = run(kubeconfig.command(), &args).await;
    (api, out)
}

#[tokio::test]
async fn kubectl_batch_run_wait_exits_0_when_the_job_completes() {
    let (api, out) = run_and_wait(Finish::Complete { polls: 3 }).await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let (_, name) = posted_job(&api, "pos-settlement-day");
    assert_eq!(
        out.stdout,
        format!("job.batch/{name} created\njob.batch/{name} Complete after 1m05s\n")
    );
    let polls = api
        .requests()
        .iter()
        .filter(|request| {
            request.path == format!("/apis/batch/v1/namespaces/pos-alpha/jobs/{name}")
        })
        .count();
    assert_eq!(polls, 3);
}

#[tokio::test]
async fn kubectl_batch_run_wait_exits_1_when_the_job_fails() {
    let (api, out) = run_and_wait(Finish::Failed { polls: 2 }).await;

    assert_eq!(out.code(), Some(1), "stderr: {}", out.stderr);
    let (_, name) = posted_job(&api, "pos-settlement-day");
    assert_eq!(
        out.stdout,
        format!(
            "job.batch/{name} created\n\
             job.batch/{name} Failed after 42s: Job has reached the specified backoff limit\n"
        )
    );
}
