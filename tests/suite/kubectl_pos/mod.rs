//! `kubectl-pos`, the kubectl plugin, as a separate process against a fake Kubernetes API
//! server on loopback: what it reads for `status` and `batch list` and prints, the Job it
//! POSTs for `batch run` (or refuses to), `--wait`'s exit codes, and which server and
//! namespace its requests go to for `--context`, `-n`, `--kubeconfig` and `KUBECONFIG`.

mod batch_list;
mod batch_run;
mod batch_wait;
mod chart;
mod connection;
mod cronjob_choice;
mod fake_api;
mod fixtures;
mod status;

use std::{path::PathBuf, process::ExitStatus, time::Duration};

use tokio::process::Command;

/// A kubeconfig file in its own directory (also the plugin's HOME, so no
/// ~/.kube/config of whoever runs the tests is read). Contexts: `alpha` (the current
/// one: cluster `alpha`, namespace `pos-alpha`), `beta` (cluster `beta`, namespace
/// `pos-beta`) and `bare` (cluster `alpha`, no namespace).
pub struct Kubeconfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Kubeconfig {
    pub fn write(alpha: &str, beta: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kubeconfig.yaml");
        let text = format!(
            "apiVersion: v1
kind: Config
current-context: alpha
clusters:
- name: alpha
  cluster:
    server: {alpha}
- name: beta
  cluster:
    server: {beta}
users:
- name: tester
  user:
    token: not-a-real-token
contexts:
- name: alpha
  context:
    cluster: alpha
    user: tester
    namespace: pos-alpha
- name: beta
  context:
    cluster: beta
    user: tester
    namespace: pos-beta
- name: bare
  context:
    cluster: alpha
    user: tester
"
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        Self { dir, path }
    }

    /// `kubectl-pos` with this kubeconfig in `KUBECONFIG` and nothing else of the
    /// caller's environment that could point it elsewhere.
    pub fn command(&self) -> Command {
        let mut command = bare_command(self.dir.path());
        command.env("KUBECONFIG", &self.path);
        command
    }
}

/// `kubectl-pos` with HOME at `home`, no `KUBECONFIG`, not in a pod, and `--wait`'s poll
/// shortened.
pub fn bare_command(home: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-pos"));
    command
        .kill_on_drop(true)
        .env("HOME", home)
        .env("KUBECTL_POS_POLL_MS", "20")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("http_proxy");
    command
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

pub async fn run(mut command: Command, args: &[&str]) -> Output {
    command.args(args);
    let out = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("kubectl-pos finished within 30 s")
        .expect("run kubectl-pos");
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
