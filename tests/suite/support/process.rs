//! The `pos` binary as a child process: start it, wait for its `listening on` line, and
//! stop it with SIGTERM expecting a clean exit (or kill it with SIGKILL, as a crash or an
//! evicted pod would end it). A child never outlives its test (it is
//! killed when its handle drops, a failing test included), and what it wrote to stderr
//! is printed when the test fails, so the failure says why.

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
};

/// A running `pos` process and the address it announced.
pub struct PosProcess {
    pub addr: String,
    name: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

/// A `pos` command built from this test crate's binary, without the `POS_*` settings
/// of whoever runs the tests (a `POS_REDIS_URL` in a developer's shell must not change
/// what a test starts).
pub fn pos() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pos"));
    command.kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("POS_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `command` to completion: its exit status, stdout and stderr.
pub async fn output(mut command: Command) -> (std::process::ExitStatus, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("pos finished within a minute")
        .expect("run pos");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `pos migrate --role <role>` (`all`: every role) on the database at `url`, as a
/// deployment's migration Job runs it; asserts it succeeded.
pub async fn migrate(url: &str, role: &str) {
    let mut migrate = pos();
    migrate.args(["migrate", "--database-url", url, "--role", role]);
    let (status, _, stderr) = output(migrate).await;
    assert!(status.success(), "pos migrate --role {role}: {stderr}");
}

impl PosProcess {
    /// Spawns `command` and waits until it prints `listening on ADDR`. `name` labels its
    /// output in failure messages.
    pub async fn spawn(name: &str, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pos");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let announced = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return Some(addr.to_string());
                }
            }
            None
        })
        .await;
        let Ok(Some(addr)) = announced else {
            // Give the stderr reader a moment to collect the last words.
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!(
                "pos {name} did not start listening; its stderr:\n{}",
                stderr.lock().expect("lock")
            );
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            addr,
            name: name.to_string(),
            child,
            stderr,
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Sends SIGTERM and asserts the process exits 0 within ten seconds.
    pub async fn stop_with_sigterm(mut self) {
        let pid = self.child.id().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("kill");
        assert!(sent.success());
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("pos {} did not stop on SIGTERM", self.name))
            .expect("wait");
        assert!(
            exit.success(),
            "pos {} exited with {exit}; its stderr:\n{}",
            self.name,
            self.stderr()
        );
    }

    /// Kills the process with SIGKILL (no chance to finish anything, as in a crash) and
    /// waits until it is gone, so its port is free again.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("pos {} outlived SIGKILL", self.name))
            .expect("wait");
        assert!(!exit.success(), "pos {} was killed, not stopped", self.name);
    }
}

impl Drop for PosProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- stderr of pos {} ----\n{}\n---- end of pos {} ----",
                self.name,
                self.stderr(),
                self.name
            );
        }
    }
}
