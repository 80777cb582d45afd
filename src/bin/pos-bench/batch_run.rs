//! Batch runs as the schedule starts them: `pos batch run --job J --term T --date D` as a
//! child process against the benchmark's database (trade, store and settlement tables in
//! one), asking a `pos serve store` of its own which stores a window covers, timed from
//! starting the process to its exit — its rows committed by then. Each process's peak
//! resident memory is sampled while it runs; the largest is kept.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use pos_batch::{Job, Term};

use crate::{
    child::{PosChild, pos_binary, pos_command},
    memory,
    target::key_files,
};

/// How often a batch process's peak memory is read while it runs: its peak only grows,
/// so the last reading before it exits is (nearly) its peak.
const MEMORY_SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// A run as the schedule starts it.
#[derive(Debug, Clone, Copy)]
pub struct BatchRun {
    pub job: Job,
    pub term: Term,
    pub date: NaiveDate,
    /// `--from-raw`: a WEEK or MONTH from the paid trades, not from DAY rows.
    pub from_raw: bool,
}

fn job_name(job: Job) -> &'static str {
    match job {
        Job::ProductSales => "product-sales",
        Job::Settlement => "settlement",
    }
}

fn term_name(term: Term) -> &'static str {
    match term {
        Term::Day => "day",
        Term::Week => "week",
        Term::Month => "month",
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| arg.to_string()).collect()
}

impl BatchRun {
    fn args(&self) -> Vec<String> {
        let date = self.date.to_string();
        let mut args = vec!["batch", "run", "--job", job_name(self.job)];
        args.extend(["--term", term_name(self.term), "--date", &date]);
        if self.from_raw {
            args.push("--from-raw");
        }
        strings(&args)
    }
}

/// The store role the batch asks, and what a batch process is started with.
pub struct Batches {
    pos: PathBuf,
    url: String,
    key_file: String,
    store: Option<PosChild>,
    /// The largest peak memory of any batch process so far, in KiB.
    peak_kib: Arc<AtomicU64>,
}

impl Batches {
    /// Starts `pos serve store` on the database at `url`; its key files and log go to
    /// `workdir`.
    pub async fn start(url: &str, workdir: &Path) -> anyhow::Result<Self> {
        let pos = pos_binary()?;
        let (key_file, jwks) = key_files(workdir, "signing-key")?;
        let mut command = pos_command(&pos);
        command
            .args(["serve", "store", "--listen", "127.0.0.1:0"])
            .env("POS_DATABASE_URL", url)
            .env("POS_JWKS_FILE", jwks)
            .env("POS_SIGNING_KEY_FILE", &key_file);
        let store = PosChild::spawn("store", command, workdir).await?;
        Ok(Self {
            pos,
            url: url.to_string(),
            key_file,
            store: Some(store),
            peak_kib: Arc::default(),
        })
    }

    fn command(&self, args: &[String]) -> anyhow::Result<tokio::process::Command> {
        let store = self.store.as_ref().context("the store role was stopped")?;
        let mut command = pos_command(&self.pos);
        command
            .args(args)
            .env("POS_DATABASE_URL", &self.url)
            .env("POS_STORE_ADDR", format!("http://{}", store.addr))
            .env("POS_SIGNING_KEY_FILE", &self.key_file);
        Ok(command)
    }

    async fn finish(&self, args: &[String]) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let child = self
            .command(args)?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run pos {}", args.join(" ")))?;
        let sampler = child.id().map(|pid| {
            let peak = self.peak_kib.clone();
            tokio::spawn(async move {
                while let Some(kib) = memory::peak_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                    tokio::time::sleep(MEMORY_SAMPLE_EVERY).await;
                }
            })
        });
        let output = child
            .wait_with_output()
            .await
            .with_context(|| format!("cannot run pos {}", args.join(" ")))?;
        let elapsed = started.elapsed();
        if let Some(sampler) = sampler {
            sampler.abort();
        }
        if !output.status.success() {
            bail!(
                "pos {} failed ({}):\n{}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(elapsed)
    }

    /// The largest peak resident memory of the batch processes run so far, in MiB.
    pub fn peak_memory_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// Runs `run` and answers how long the process took.
    pub async fn time(&self, run: BatchRun) -> anyhow::Result<Duration> {
        self.finish(&run.args()).await
    }

    /// `pos batch backfill --job J --term DAY --from F --to T` (untimed groundwork).
    pub async fn backfill_days(
        &self,
        job: Job,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Duration> {
        let (from, to) = (from.to_string(), to.to_string());
        let args = strings(&[
            "batch",
            "backfill",
            "--job",
            job_name(job),
            "--term",
            term_name(Term::Day),
            "--from",
            &from,
            "--to",
            &to,
        ]);
        self.finish(&args).await
    }

    /// Stops the store role.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        match self.store.take() {
            Some(store) => store.stop().await,
            None => Ok(()),
        }
    }
}
