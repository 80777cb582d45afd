//! One scheduled batch run, timed from its start to its committed rows: what `pos batch
//! run --job J --term T --date D` does — the windows the schedule gives that date, for
//! the stores each covers — run here in a process of the benchmark's own with fresh
//! connections, until the `pos batch` command exists to be started as a child.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use pos_batch::{Aggregator, Job, Stores, Term, TimeZone, WindowRun, windows};
use pos_common::{domain::StoreId, storage::Database};
use pos_settlement_storage::RunScope;

/// A run as the schedule starts it.
#[derive(Debug, Clone, Copy)]
pub struct BatchRun {
    pub job: Job,
    pub term: Term,
    pub date: NaiveDate,
    pub verify: bool,
}

impl BatchRun {
    pub fn describe(&self) -> String {
        format!(
            "{} {} on {}{}",
            self.job.as_str(),
            self.term.as_str(),
            self.date,
            if self.verify { " (verified)" } else { "" }
        )
    }
}

/// Runs `run` against the database at `url` (trade, store and settlement tables in one)
/// and answers how long it took.
pub async fn time(url: &str, zone: TimeZone, run: BatchRun) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let database = Database::connect(url).await?;
    let outcome = run_windows(&database, zone, run).await;
    database.close().await;
    let elapsed = started.elapsed();
    outcome.with_context(|| run.describe())?;
    Ok(elapsed)
}

async fn run_windows(database: &Database, zone: TimeZone, run: BatchRun) -> anyhow::Result<()> {
    let aggregator = Aggregator::new(
        pos_trade::open_sales_source(database),
        pos_settlement::open_storage(database),
        zone,
        pos_common::clock::system(),
    );
    for covered in windows::scheduled(run.job, run.term, run.date)? {
        let stores = stores(database, covered.stores).await?;
        aggregator
            .run(WindowRun {
                job: run.job,
                term: run.term,
                window: covered.window,
                scope: RunScope::ALL,
                stores: &stores,
                verify: run.verify,
            })
            .await?;
    }
    Ok(())
}

/// The stores a window covers, from the store role's table (which `pos batch` asks the
/// store role for).
async fn stores(database: &Database, stores: Stores) -> anyhow::Result<Vec<StoreId>> {
    let Database::Postgres(pool) = database else {
        anyhow::bail!("the settlement benchmark runs on PostgreSQL");
    };
    let day = match stores {
        Stores::All => None,
        Stores::SettlingOn(day) => Some(i32::try_from(day)?),
    };
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM stores WHERE $1::int IS NULL OR settlement_day = $1 ORDER BY id",
    )
    .bind(day)
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(StoreId::from_stored).collect())
}
