//! The `pos` binary as a child of the benchmark: found next to the benchmark's own
//! executable (so a release benchmark drives a release `pos`), started without the
//! caller's `POS_*` settings, its stderr (the log) kept in a file, ready once it prints
//! `listening on ADDR`, and stopped with SIGTERM. A child never outlives the benchmark:
//! it is killed when its handle drops, on an error too.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// How long a role may take to start listening (migrations and connections included).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping role may take: its grace period, plus a margin.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The `pos` executable beside this one (`target/release/pos` for a release benchmark).
pub fn pos_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find the benchmark's own executable")?;
    let pos = me
        .parent()
        .context("the benchmark's executable has no directory")?
        .join(format!("pos{}", std::env::consts::EXE_SUFFIX));
    if !pos.is_file() {
        bail!(
            "{} not found: build both binaries with the same profile, e.g. \
             `cargo build --release --bin pos --bin pos-bench`",
            pos.display()
        );
    }
    Ok(pos)
}

/// A `pos` command that sees none of the caller's `POS_*` variables: the benchmark says
/// everything the system is started with.
pub fn pos_command(pos: &Path) -> Command {
    let mut command = Command::new(pos);
    command.kill_on_drop(true).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("POS_") {
            command.env_remove(name);
        }
    }
    command
}

/// The last lines of a log, for an error message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Runs `command` (e.g. `pos migrate`) to completion; an error unless it exits 0.
pub async fn run_to_end(name: &str, mut command: Command) -> anyhow::Result<()> {
    let output = tokio::time::timeout(START_TIMEOUT, command.output())
        .await
        .with_context(|| format!("pos {name} did not finish within {START_TIMEOUT:?}"))?
        .with_context(|| format!("cannot run pos {name}"))?;
    if !output.status.success() {
        bail!(
            "pos {name} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A running `pos` process and the address it serves on.
pub struct PosChild {
    pub name: String,
    pub addr: SocketAddr,
    pub log: PathBuf,
    child: Child,
}

impl PosChild {
    /// Starts `command` with its stderr in `log_dir/<name>.log`, and waits until it
    /// announces its address.
    pub async fn spawn(name: &str, mut command: Command, log_dir: &Path) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start pos {name}"))?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let announced = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return Some(addr.to_string());
                }
            }
            None
        })
        .await;
        let Ok(Some(addr)) = announced else {
            let _ = child.kill().await;
            bail!(
                "pos {name} did not start listening; the end of its log:\n{}",
                log_tail(&log)
            );
        };
        let addr = addr
            .parse()
            .with_context(|| format!("pos {name} announced {addr:?}, not an address"))?;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            name: name.to_string(),
            addr,
            log,
            child,
        })
    }

    /// The process id, for `perf record -p`.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process has exited (a crash during the run).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Stops the process with SIGTERM (killing it when it does not stop in time); an error
    /// unless it exits 0.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let pid = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
                .context("a child's pid")?;
            // Already gone is not an error here: `wait` below tells how it ended.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => bail!(
                "pos {} exited with {status}; the end of its log:\n{}",
                self.name,
                log_tail(&self.log)
            ),
            Ok(Err(err)) => Err(err).context(format!("waiting for pos {}", self.name)),
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("pos {} did not stop within {STOP_TIMEOUT:?}", self.name)
            }
        }
    }
}
