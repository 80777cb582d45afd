//! The command line of `kubectl pos`: kubectl's connection flags (`-n`, `--context`,
//! `--kubeconfig`) on every command, `status`, `batch run` and `batch list`.

use std::{fmt, path::PathBuf, time::Duration};

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operate pos-mesh on Kubernetes: role status and settlement batch runs.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl pos",
    bin_name = "kubectl pos",
    version,
    after_help = "Exit codes: 0 done; 1 an error, or a Job followed with --wait failed; \
                  2 a usage error; 3 refused: a Job of the same CronJob is still running."
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the cluster is, as kubectl takes it. `KUBECONFIG` is honoured when
/// `--kubeconfig` is not given.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The namespace; default: the context's namespace, else `default`.
    #[arg(short = 'n', long, global = true, help_heading = "Cluster")]
    pub namespace: Option<String>,

    /// The kubeconfig context to use; default: its current-context.
    #[arg(long, global = true, help_heading = "Cluster")]
    pub context: Option<String>,

    /// The kubeconfig file; default: `KUBECONFIG`, else ~/.kube/config (in a pod: its
    /// service account).
    #[arg(long, global = true, help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Each role's Deployment: replicas, image and container restarts.
    Status,
    /// Settlement batch Jobs: run one now from its CronJob, or list recent runs.
    #[command(subcommand)]
    Batch(BatchCommand),
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Create a Job from a batch CronJob now, as `kubectl create job --from=cronjob/…`.
    Run(RunArgs),
    /// Recent batch Jobs, newest first.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Which batch job.
    #[arg(long, value_enum)]
    pub job: BatchJob,

    /// Which term's CronJob.
    #[arg(long, value_enum)]
    pub term: Term,

    /// The day to run for (YYYY-MM-DD); default: what `pos batch` defaults to (today in
    /// the stores' zone).
    #[arg(long, value_parser = parse_date)]
    pub date: Option<NaiveDate>,

    /// Create the Job even while another Job of the same CronJob is running.
    #[arg(long)]
    pub force: bool,

    /// Follow the Job until it completes or fails; exit 0 on Complete, 1 on Failed.
    #[arg(long)]
    pub wait: bool,

    /// The Helm release, when the namespace has more than one.
    #[arg(long)]
    pub instance: Option<String>,

    /// How often `--wait` polls the Job, in milliseconds.
    #[arg(long, hide = true, env = "KUBECTL_POS_POLL_MS", default_value_t = 2000)]
    pub poll_ms: u64,
}

impl RunArgs {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_ms.max(1))
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// How many Jobs to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

/// The batch jobs the chart schedules (`pos-mesh.io/job`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BatchJob {
    ProductSales,
    Settlement,
}

/// The terms a batch job runs for (`pos-mesh.io/term`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Term {
    Day,
    Week,
    Month,
}

impl fmt::Display for BatchJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ProductSales => "product-sales",
            Self::Settlement => "settlement",
        })
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        })
    }
}

/// A calendar date as `YYYY-MM-DD` that exists (no 2025-02-30).
fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|date| date.format("%Y-%m-%d").to_string() == text)
        .ok_or_else(|| format!("`{text}` is not a date as YYYY-MM-DD"))
}
