//! Where requests go, as with kubectl: the current context's server and namespace,
//! `--context` for another server and namespace, `-n` over the context's namespace,
//! `default` for a context without one, `--kubeconfig` over `KUBECONFIG`, and
//! ~/.kube/config when neither is given.

use super::{Kubeconfig, bare_command, fake_api::FakeApi, run};

const JOBS: &str = "/apis/batch/v1/namespaces";

fn jobs_path(namespace: &str) -> String {
    format!("{JOBS}/{namespace}/jobs")
}

fn paths(api: &FakeApi) -> Vec<String> {
    api.requests()
        .into_iter()
        .map(|request| request.path)
        .collect()
}

#[tokio::test]
async fn kubectl_current_context_server_and_namespace_from_kubeconfig_env() {
    let (alpha, beta) = (FakeApi::start(vec![]).await, FakeApi::start(vec![]).await);
    let kubeconfig = Kubeconfig::write(&alpha.url, &beta.url);

    let out = run(kubeconfig.command(), &["batch", "list"]).await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(
        out.stdout,
        "No batch Jobs in namespace `pos-alpha` (label selector \
         `app.kubernetes.io/part-of=pos-mesh,app.kubernetes.io/component=batch`).\n"
    );
    assert_eq!(paths(&alpha), [jobs_path("pos-alpha")]);
    assert!(paths(&beta).is_empty());
}

#[tokio::test]
async fn kubectl_context_flag_switches_server_and_namespace() {
    let (alpha, beta) = (FakeApi::start(vec![]).await, FakeApi::start(vec![]).await);
    let kubeconfig = Kubeconfig::write(&alpha.url, &beta.url);

    let out = run(
        kubeconfig.command(),
        &["batch", "list", "--context", "beta"],
    )
    .await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert!(paths(&alpha).is_empty());
    assert_eq!(paths(&beta), [jobs_path("pos-beta")]);
}

#[tokio::test]
async fn kubectl_namespace_flag_overrides_the_contexts_namespace() {
    let (alpha, beta) = (FakeApi::start(vec![]).await, FakeApi::start(vec![]).await);
    let kubeconfig = Kubeconfig::write(&alpha.url, &beta.url);

    let short = run(
        kubeconfig.command(),
        &["-n", "pos-staging", "batch", "list"],
    )
    .await;
    let long = run(
        kubeconfig.command(),
        &[
            "batch",
            "list",
            "--context",
            "beta",
            "--namespace",
            "pos-canary",
        ],
    )
    .await;

    assert_eq!(short.code(), Some(0), "stderr: {}", short.stderr);
    assert_eq!(long.code(), Some(0), "stderr: {}", long.stderr);
    assert_eq!(paths(&alpha), [jobs_path("pos-staging")]);
    assert_eq!(paths(&beta), [jobs_path("pos-canary")]);
}

#[tokio::test]
async fn kubectl_context_without_namespace_means_default() {
    let api = FakeApi::start(vec![]).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let out = run(
        kubeconfig.command(),
        &["--context", "bare", "batch", "list"],
    )
    .await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(paths(&api), [jobs_path("default")]);
}

#[tokio::test]
async fn kubectl_kubeconfig_flag_wins_over_kubeconfig_env() {
    let api = FakeApi::start(vec![]).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);
    let mut command = bare_command(kubeconfig.dir.path());
    command.env("KUBECONFIG", kubeconfig.dir.path().join("missing.yaml"));
    let flag = kubeconfig.path.to_string_lossy().into_owned();

    let out = run(
        command,
        &["batch", "list", "--kubeconfig", &flag, "--context", "beta"],
    )
    .await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(paths(&api), [jobs_path("pos-beta")]);
}

#[tokio::test]
async fn kubectl_home_kube_config_without_kubeconfig_env() {
    let api = FakeApi::start(vec![]).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir(home.path().join(".kube")).expect("~/.kube");
    std::fs::copy(&kubeconfig.path, home.path().join(".kube/config")).expect("~/.kube/config");

    let out = run(bare_command(home.path()), &["batch", "list"]).await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(paths(&api), [jobs_path("pos-alpha")]);
}

#[tokio::test]
async fn kubectl_unknown_context_is_an_error_before_any_request() {
    let api = FakeApi::start(vec![]).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let out = run(kubeconfig.command(), &["--context", "gamma", "status"]).await;

    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("gamma"), "stderr: {}", out.stderr);
    assert!(api.requests().is_empty());
}
