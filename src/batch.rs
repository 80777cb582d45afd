//! `pos batch run|backfill`: one aggregation job as a Kubernetes CronJob runs it. It reads
//! paid bills from the trade database (`POS_SOURCE_DATABASE_URL`, a read replica in
//! production), writes the settlement tables (`POS_DATABASE_URL`), asks the store role
//! which stores a window covers, pushes metrics when `POS_PUSHGATEWAY_URL` is set, and
//! exits non-zero when any window failed.

use std::time::Instant;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{ArgMatches, Args, Command, FromArgMatches, ValueEnum};
use pos_batch::{Batch, Method, Outcome, PlanError, driver::describe};
use pos_common::{
    aggregation::{Job, Term},
    clock,
    domain::StoreId,
    peer::{ServiceCredential, connect_lazy},
    role::Role,
    storage::Database,
};
use pos_settlement::AggregationArgs;
use pos_settlement_storage::RunScope;

use crate::flags::{DatabaseFlags, ServiceKeyFlags, SigningFlags, TokenFlags};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum JobName {
    ProductSales,
    Settlement,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TermName {
    Day,
    Week,
    Month,
}

/// A shard `I/N` (1-based, as people count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a shard I/N with 1 <= I <= N (e.g. 2/3)");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            index.trim().parse::<u32>().map_err(|_| bad())?,
            count.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// What every `pos batch` subcommand takes.
#[derive(Debug, Clone, Args)]
struct Common {
    #[arg(long, value_enum)]
    job: JobName,
    #[arg(long, value_enum)]
    term: TermName,
    /// Only this store (its windows, with the store's settlement day for MONTH
    /// settlements).
    #[arg(long)]
    store: Option<i64>,
    /// This shard of the stores, I/N (1-based); by default shard JOB_COMPLETION_INDEX + 1
    /// of POS_SHARD_COUNT when that is set (a Kubernetes Indexed Job), else every store.
    #[arg(long)]
    shard: Option<Shard>,
    /// Shard count of an Indexed Job, whose pods take their shard from
    /// JOB_COMPLETION_INDEX.
    #[arg(long, env = "POS_SHARD_COUNT")]
    shard_count: Option<u32>,
    /// Recompute a rolled-up WEEK or MONTH (product sales or settlements) from the paid
    /// bills as well, and fail naming the differences.
    #[arg(long)]
    verify: bool,
    /// Compute a WEEK or MONTH (product sales or settlements) from the paid bills
    /// instead of the DAY rows.
    #[arg(long)]
    from_raw: bool,
    /// The store role, which says which stores there are and when they settle.
    #[arg(long, env = "POS_STORE_ADDR", value_name = "URL")]
    store_addr: String,
    #[command(flatten)]
    aggregation: AggregationArgs,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    tokens: TokenFlags,
    #[command(flatten)]
    signing: SigningFlags,
    #[command(flatten)]
    service_key: ServiceKeyFlags,
}

#[derive(Debug, Clone, Args)]
struct RunFlags {
    /// The day the schedule runs on: DAY covers the day before and the one before that,
    /// WEEK the previous Monday-to-Sunday, MONTH product sales the previous month, MONTH
    /// settlements the stores settling on this day over [this day last month, this day).
    /// Default: today in POS_TIME_ZONE (what a CronJob means: its arguments are fixed,
    /// and the container's own date may be another zone's).
    #[arg(long)]
    date: Option<NaiveDate>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Clone, Args)]
struct BackfillFlags {
    /// First date of the range: every window holding a date of the range is run.
    #[arg(long)]
    from: NaiveDate,
    /// Last date of the range, included.
    #[arg(long)]
    to: NaiveDate,
    #[command(flatten)]
    common: Common,
}

/// `pos batch`.
pub fn command() -> Command {
    Command::new("batch")
        .about("Runs an aggregation job and exits (a Kubernetes CronJob)")
        .subcommand_required(true)
        .subcommand(
            RunFlags::augment_args(Command::new("run"))
                .about("Aggregates what the schedule aggregates on --date")
                .long_about(None),
        )
        .subcommand(
            BackfillFlags::augment_args(Command::new("backfill"))
                .about("Aggregates every window holding a date from --from to --to")
                .long_about(None),
        )
        .subcommand(Command::new("schedule").about(
            "Prints the schedule (cron, in the stores' zone) as the Helm chart's \
             files/schedule.yaml",
        ))
}

/// The schedule table as the Helm chart reads it (`helm/pos-mesh/files/schedule.yaml`):
/// its CronJobs are rendered from this, so they and `pos up`'s scheduler run one table.
pub fn schedule_yaml() -> String {
    let mut yaml = String::from(
        "# Written by `cargo xtask manifests` from `pos batch schedule` (the schedule table\n\
         # that `pos up` runs in process); do not edit by hand.\n\
         jobs:\n",
    );
    for entry in pos_batch::schedule::SCHEDULE {
        yaml += &format!(
            "  - name: {}\n    job: {}\n    term: {}\n    schedule: \"{}\"\n",
            entry.name(),
            entry.job.as_str(),
            entry.term.as_str(),
            entry.cron()
        );
    }
    yaml
}

pub async fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let (what, common, dates) = match matches.subcommand() {
        Some(("schedule", _)) => {
            print!("{}", schedule_yaml());
            return Ok(());
        }
        Some(("run", sub)) => {
            let flags = RunFlags::from_arg_matches(sub)?;
            let date = flags
                .date
                .unwrap_or_else(|| flags.common.aggregation.time_zone.today());
            ("run", flags.common, (date, date))
        }
        Some(("backfill", sub)) => {
            let flags = BackfillFlags::from_arg_matches(sub)?;
            ("backfill", flags.common, (flags.from, flags.to))
        }
        _ => bail!("pos batch needs run, backfill or schedule"),
    };
    let job = match common.job {
        JobName::ProductSales => Job::ProductSales,
        JobName::Settlement => Job::Settlement,
    };
    let term = match common.term {
        TermName::Day => Term::Day,
        TermName::Week => Term::Week,
        TermName::Month => Term::Month,
    };
    let scope = scope(
        &common,
        std::env::var("JOB_COMPLETION_INDEX").ok().as_deref(),
    )?;
    let started = Instant::now();
    let (batch, databases, pushgateway) = open(&common).await?;
    let method = Method {
        verify: common.verify,
        from_raw: common.from_raw,
    };
    let outcomes = match what {
        "run" => batch.scheduled(job, term, dates.0, scope, method).await,
        _ => {
            batch
                .backfill(job, term, dates.0, dates.1, scope, method)
                .await
        }
    };
    if let Some(pushgateway) = pushgateway {
        // A backfill is pushed to a group of its own, so it never stands in for the
        // CronJob's last success.
        let group = match what {
            "run" => pos_batch::metrics::Group::Scheduled,
            _ => pos_batch::metrics::Group::Backfill,
        };
        pushgateway
            .push(job, term, scope, group, &outcomes, started.elapsed())
            .await;
    }
    for database in databases {
        database.close().await;
    }
    report(job, term, outcomes)
}

/// Which stores this invocation covers, from `--store`, `--shard` or the Indexed Job's
/// completion index.
fn scope(common: &Common, completion_index: Option<&str>) -> anyhow::Result<RunScope> {
    let store = common
        .store
        .map(|raw| StoreId::parse(raw).map_err(|why| anyhow::anyhow!("--store {raw}: {why}")))
        .transpose()?;
    let shard = match (common.shard, common.shard_count, completion_index) {
        (Some(shard), _, _) => Some(shard),
        (None, Some(0), _) => bail!("POS_SHARD_COUNT must be at least 1"),
        (None, Some(count), Some(index)) => {
            let index: u32 = index
                .trim()
                .parse()
                .with_context(|| format!("JOB_COMPLETION_INDEX={index:?} is not a number"))?;
            if index >= count {
                bail!("JOB_COMPLETION_INDEX={index} is not below POS_SHARD_COUNT={count}");
            }
            Some(Shard {
                index: index + 1,
                count,
            })
        }
        (None, Some(1), None) => None,
        (None, Some(count), None) => {
            bail!("POS_SHARD_COUNT={count} needs JOB_COMPLETION_INDEX (or --shard I/N)")
        }
        // An Indexed Job's pod without a shard count would run every store N times over.
        (None, None, Some(_)) => bail!(
            "JOB_COMPLETION_INDEX is set but POS_SHARD_COUNT is not: set it to the Job's completions"
        ),
        (None, None, None) => None,
    };
    if store.is_some() && shard.is_some_and(|shard| shard.count > 1) {
        bail!("--store and --shard exclude each other: one store is already one part");
    }
    let (shard_index, shard_count) = shard.map_or((0, 1), |shard| (shard.index - 1, shard.count));
    Ok(RunScope {
        shard_index,
        shard_count,
        store,
    })
}

/// The batch, the databases to close, and where metrics go.
async fn open(
    common: &Common,
) -> anyhow::Result<(Batch, Vec<Database>, Option<pos_batch::Pushgateway>)> {
    let settlement = Database::connect(&common.database.database_url)
        .await
        .context("cannot open the settlement database (POS_DATABASE_URL)")?;
    if common.database.migrate_on_start {
        settlement.migrate(&pos_settlement::MIGRATIONS).await?;
    }
    let source = common
        .aggregation
        .source(None, &settlement)
        .await
        .map_err(|err| anyhow::anyhow!(err))
        .context("cannot open the trade database (POS_SOURCE_DATABASE_URL)")?;
    let key = common
        .service_key
        .service_key_file
        .as_ref()
        .or(common.signing.signing_key_file.as_ref())
        .context("a key for the batch's service token is needed (POS_SERVICE_KEY_FILE or POS_SIGNING_KEY_FILE)")?;
    let clock = clock::system();
    // The store role lists stores to the settlement role only: the batch is its job.
    let credential = ServiceCredential::new(
        crate::serve::issuer(&common.tokens, key)?,
        <pos_settlement::SettlementRole as Role>::NAME,
        clock.clone(),
    );
    let store = connect_lazy(&common.store_addr)?;
    let batch = pos_settlement::open_batch(
        &source,
        pos_settlement::open_storage(&settlement),
        common.aggregation.time_zone,
        clock,
        store,
        &credential,
    );
    let pushgateway = common
        .aggregation
        .pushgateway()
        .map_err(|err| anyhow::anyhow!(err))?;
    Ok((batch, vec![settlement, source], pushgateway))
}

/// Prints one line per window; fails when the plan or any window failed.
fn report(job: Job, term: Term, outcomes: Result<Vec<Outcome>, PlanError>) -> anyhow::Result<()> {
    let outcomes = outcomes.map_err(|err| anyhow::anyhow!(describe(&err)))?;
    let mut failed = 0;
    for Outcome { window, result, .. } in &outcomes {
        match result {
            Ok(report) => println!(
                "{} {} {}..{}: run {} read {} rows, wrote {}",
                job.as_str(),
                term.as_str(),
                window.start,
                window.end,
                report.run.0,
                report.rows_read,
                report.rows_written
            ),
            Err(err) => {
                failed += 1;
                println!(
                    "{} {} {}..{}: FAILED: {}",
                    job.as_str(),
                    term.as_str(),
                    window.start,
                    window.end,
                    describe(err)
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} windows failed", outcomes.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(args: &[&str]) -> Common {
        let matches = RunFlags::augment_args(Command::new("run"))
            .mut_args(|arg| arg.env(None::<&str>))
            .try_get_matches_from(
                [
                    "run",
                    "--job",
                    "settlement",
                    "--term",
                    "day",
                    "--store-addr",
                    "http://s",
                ]
                .iter()
                .chain(["--database-url", "sqlite://x.db"].iter())
                .chain(args),
            )
            .expect("flags");
        RunFlags::from_arg_matches(&matches).expect("flags").common
    }

    #[test]
    fn an_indexed_job_takes_its_shard_from_the_completion_index() {
        let counted = Common {
            shard_count: Some(3),
            ..common(&[])
        };
        let third = scope(&counted, Some("2")).expect("a shard");
        assert_eq!((third.shard_index, third.shard_count), (2, 3));
        assert!(scope(&counted, Some("3")).is_err());
        assert!(scope(&counted, None).is_err());
        assert!(
            scope(&common(&[]), Some("0")).is_err(),
            "an index without a count"
        );
        let zero = Common {
            shard_count: Some(0),
            ..common(&[])
        };
        assert!(scope(&zero, Some("0")).is_err());
        assert!(scope(&common(&["--store", "4", "--shard", "1/2"]), None).is_err());
        let whole = scope(&common(&[]), None).expect("every store");
        assert_eq!(
            (whole.shard_index, whole.shard_count, whole.store),
            (0, 1, None)
        );
        let flagged = scope(&common(&["--shard", "2/3"]), Some("0")).expect("the flag wins");
        assert_eq!(flagged.shard_index, 1);
    }

    #[test]
    fn shards_are_counted_from_one() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert!("3".parse::<Shard>().is_err());
    }
}
