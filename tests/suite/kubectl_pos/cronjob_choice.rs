//! Which CronJob `kubectl pos batch run` starts from: none matching is an error naming
//! the label selector; two releases in one namespace are an error listing both until
//! `--instance` picks one. Nothing is POSTed until exactly one matches.

use super::{
    Kubeconfig,
    batch_run::{SETTLEMENT_DAY, expected_job, posted_job, schedules},
    fake_api::FakeApi,
    fixtures::{cronjob, job_template_spec},
    run,
};

#[tokio::test]
async fn kubectl_batch_run_without_a_matching_cronjob_names_the_selector() {
    let api = FakeApi::start(schedules()).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let out = run(
        kubeconfig.command(),
        &["batch", "run", "--job", "product-sales", "--term", "month"],
    )
    .await;

    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains(
            "no CronJob in namespace `pos-alpha` matches label selector \
             `app.kubernetes.io/part-of=pos-mesh,app.kubernetes.io/component=batch,\
             pos-mesh.io/job=product-sales,pos-mesh.io/term=month`"
        ),
        "{}",
        out.stderr
    );
    assert!(api.posted().is_empty());
}

#[tokio::test]
async fn kubectl_batch_run_with_two_releases_asks_for_instance() {
    let mut objects = schedules();
    objects.push(cronjob("pos-alpha", "pos-canary", "settlement", "day", &[]));
    let api = FakeApi::start(objects).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);
    let args = ["batch", "run", "--job", "settlement", "--term", "day"];

    let ambiguous = run(kubeconfig.command(), &args).await;

    assert_eq!(ambiguous.code(), Some(1));
    assert!(
        ambiguous.stderr.contains(
            "2 CronJobs in namespace `pos-alpha` match label selector `{SETTLEMENT_DAY}`: \
             pos-canary-settlement-day (instance pos-canary), pos-settlement-day (instance pos); \
             choose one with --instance <release>"
                .replace("{SETTLEMENT_DAY}", SETTLEMENT_DAY)
                .as_str()
        ),
        "{}",
        ambiguous.stderr
    );
    assert!(api.posted().is_empty());

    let chosen = run(
        kubeconfig.command(),
        &[&args[..], &["--instance", "pos-canary"]].concat(),
    )
    .await;

    assert_eq!(chosen.code(), Some(0), "stderr: {}", chosen.stderr);
    let selectors: Vec<String> = api
        .requests()
        .iter()
        .filter(|request| request.path.ends_with("/cronjobs"))
        .filter_map(|request| request.query.get("labelSelector").cloned())
        .collect();
    assert_eq!(
        selectors,
        [
            SETTLEMENT_DAY.to_string(),
            format!("{SETTLEMENT_DAY},app.kubernetes.io/instance=pos-canary")
        ]
    );
    let (posted, name) = posted_job(&api, "pos-canary-settlement-day");
    let spec = job_template_spec("settlement", "day");
    assert_eq!(
        posted,
        expected_job(&name, "pos-canary", "settlement", "day", spec)
    );
}
