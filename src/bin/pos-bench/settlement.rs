//! `pos-bench settlement`: how fast the aggregation batch turns a month of trades into
//! product sales and settlements, against what PostgreSQL itself needs for the same
//! `GROUP BY`. It loads SPEC section 8's data set into a scratch database (`dataset.rs`,
//! `load.rs`), times the hand-written `GROUP BY`s through `psql` and the batch's MONTH
//! runs as the schedule starts them (`batch_run.rs`), each from process start to exit,
//! checks the batch's rows against the trades, prints each figure and ratio and, last,
//! one JSON line; the database is dropped afterwards (on errors and Ctrl-C too).

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{Datelike, NaiveDate};
use pos_batch::{Job, SETTLEMENT_DAYS, Term, TimeZone, Window};
use pos_common::storage::Database;
use sqlx::{Connection, PgConnection};

use crate::{
    batch_run::{self, BatchRun},
    dataset::{Generator, Shape},
    load,
    target::ScratchDatabase,
};

/// `pos-bench settlement`'s flags.
#[derive(Debug, clap::Args)]
pub struct SettlementArgs {
    /// The month the trades are paid in (its first day).
    #[arg(long, default_value = "2025-03-01")]
    month: NaiveDate,
    /// Seed of the data set.
    #[arg(long, default_value_t = 20250301)]
    seed: u64,
    /// Stores (SPEC: 100).
    #[arg(long, default_value_t = 100)]
    stores: u64,
    /// Paid trades in the month (SPEC: 930,100).
    #[arg(long, default_value_t = 930_100)]
    paid_trades: u64,
    /// Their order lines (SPEC: 2,791,000).
    #[arg(long, default_value_t = 2_791_000)]
    order_lines: u64,
    /// Timed runs of each figure; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Keep the scratch database afterwards (its URL is printed), to explain queries.
    #[arg(long)]
    keep_database: bool,
    /// Prefix of the scratch database (a test run passes its run id).
    #[arg(long, env = "POS_TEST_RUN_ID", default_value = "pos_bench")]
    database_prefix: String,
    /// PostgreSQL URL allowed to create and drop databases.
    #[arg(
        long,
        env = "POS_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_database_url: String,
}

/// The hand-written `GROUP BY`s: product sales of the month per store and product, and
/// what each store's payments came to.
const BARE_PRODUCT_SALES: &str = "SELECT t.store_id, l.product_id, sum(l.count) AS sold, \
     sum(l.amount) AS amount FROM trades t JOIN trade_orders o ON o.trade_id = t.id \
     JOIN trade_order_lines l ON l.order_id = o.id \
     WHERE t.status = 'PAID' AND t.paid_at >= '{from}' AND t.paid_at < '{to}' \
     GROUP BY t.store_id, l.product_id";
const BARE_SETTLEMENT: &str = "SELECT t.store_id, sum(p.amount) AS revenue, \
     sum(p.card_fee) AS fee, count(*) AS trades FROM trades t \
     JOIN trade_payments p ON p.trade_id = t.id \
     WHERE t.status = 'PAID' AND t.paid_at >= '{from}' AND t.paid_at < '{to}' \
     GROUP BY t.store_id";

/// Every figure, in seconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Figures {
    product_sales_month_raw_s: f64,
    product_sales_month_rollup_s: f64,
    settlement_month_one_day_s: f64,
    settlement_month_all_s: f64,
    bare_group_by_product_sales_s: f64,
    bare_group_by_settlement_s: f64,
    raw_ratio: f64,
    rollup_ratio: f64,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: SettlementArgs) -> anyhow::Result<()> {
    let shape = Shape {
        stores: args.stores,
        paid_trades: args.paid_trades,
        order_lines: args.order_lines,
        ..Shape::spec(args.month, args.seed)
    };
    let generator = Generator::new(shape, TimeZone::default())?;
    let database = ScratchDatabase::create(&args.admin_database_url, &args.database_prefix).await?;
    eprintln!("pos-bench: scratch database {}", database.name);
    let measured = tokio::select! {
        measured = measure(&database.url, &generator, &args) => measured,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let dropped = if args.keep_database {
        eprintln!("pos-bench: database kept: {}", database.url);
        Ok(())
    } else {
        database.drop_it().await
    };
    let figures = measured?;
    print(&figures)?;
    dropped
}

async fn measure(
    url: &str,
    generator: &Generator,
    args: &SettlementArgs,
) -> anyhow::Result<Figures> {
    let shape = generator.shape();
    let zone = generator.zone();
    migrate(url).await?;
    load::load(url, generator).await?;

    let month = Window {
        start: shape.month,
        end: shape.month_end()?,
    };
    let (from, to) = zone.instants(month);
    let bare = |sql: &str| {
        sql.replace("{from}", &from.to_rfc3339())
            .replace("{to}", &to.to_rfc3339())
    };
    let (bare_sales, bare_settlement) = (bare(BARE_PRODUCT_SALES), bare(BARE_SETTLEMENT));
    // Once untimed, so every figure reads the tables from the same warm cache.
    psql(url, &bare_sales).await?;
    psql(url, &bare_settlement).await?;
    let bare_product_sales_s = median(args.repeat, || psql(url, &bare_sales)).await?;
    report(
        "bare GROUP BY, product sales of the month",
        bare_product_sales_s,
    );
    let bare_settlement_s = median(args.repeat, || psql(url, &bare_settlement)).await?;
    report("bare GROUP BY, settlement of the month", bare_settlement_s);

    // Product sales of the month: on the 1st of the next month.
    let next_month = month.end;
    let product_month = BatchRun {
        job: Job::ProductSales,
        term: Term::Month,
        date: next_month,
        verify: false,
    };
    let raw_s = median(args.repeat, || async {
        clear_product_sales(url).await?;
        batch_run::time(url, zone, product_month).await
    })
    .await?;
    report(
        "product sales MONTH from the trades (no DAY rows yet)",
        raw_s,
    );
    // The raw run left the month's DAY rows behind: the schedule's case.
    let rollup_s = median(args.repeat, || batch_run::time(url, zone, product_month)).await?;
    report("product sales MONTH from DAY rows", rollup_s);
    check_product_sales(url, month.start).await?;

    // Settlements: the DAY rows of every day a settlement window of the month after
    // covers are built first (untimed), as the daily runs would have.
    let last_day = SETTLEMENT_DAYS.iter().max().copied().unwrap_or(1);
    let mut day = month.start;
    let until = next_month
        .with_day(last_day)
        .context("a settlement day of the month after")?;
    let started = Instant::now();
    while day < until {
        let next = day.succ_opt().context("a day after")?;
        let run = BatchRun {
            job: Job::Settlement,
            term: Term::Day,
            date: next,
            verify: false,
        };
        // A DAY run on `next` covers `day` (and re-covers the day before it).
        batch_run::time(url, zone, run).await?;
        day = next;
    }
    eprintln!(
        "pos-bench: DAY settlements built in {:.1} s (untimed)",
        started.elapsed().as_secs_f64()
    );
    let settlement_on = |day: u32| -> anyhow::Result<BatchRun> {
        Ok(BatchRun {
            job: Job::Settlement,
            term: Term::Month,
            date: next_month.with_day(day).context("a settlement day")?,
            verify: false,
        })
    };
    let first = settlement_on(1)?;
    let one_day_s = median(args.repeat, || batch_run::time(url, zone, first)).await?;
    report(
        "settlement MONTH of the stores settling on the 1st",
        one_day_s,
    );
    let mut all_s = 0.0;
    for day in SETTLEMENT_DAYS {
        let run = settlement_on(day)?;
        let took = median(args.repeat, || batch_run::time(url, zone, run)).await?;
        report(&format!("settlement MONTH on day {day}"), took);
        all_s += took;
    }
    report("settlement MONTH, all six settlement days", all_s);
    check_settlement(url, month.start).await?;

    Ok(Figures {
        product_sales_month_raw_s: raw_s,
        product_sales_month_rollup_s: rollup_s,
        settlement_month_one_day_s: one_day_s,
        settlement_month_all_s: all_s,
        bare_group_by_product_sales_s: bare_product_sales_s,
        bare_group_by_settlement_s: bare_settlement_s,
        raw_ratio: raw_s / bare_product_sales_s,
        rollup_ratio: rollup_s / bare_product_sales_s,
    })
}

fn report(what: &str, seconds: f64) {
    println!("{what}: {seconds:.3} s");
}

/// The median of `repeat` timings.
async fn median<F, Fut>(repeat: usize, mut timed: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Duration>>,
{
    let mut runs = Vec::with_capacity(repeat.max(1));
    for _ in 0..repeat.max(1) {
        runs.push(timed().await?.as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[runs.len() / 2])
}

/// Runs `sql` through `psql` as a person would, its rows thrown away: the time from
/// starting the process to its exit.
async fn psql(url: &str, sql: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = tokio::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-o",
            "/dev/null",
            "-d",
            url,
            "-c",
            sql,
        ])
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run psql (apt-get install postgresql-client)")?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "psql failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(elapsed)
}

/// Applies every role's migrations that the batch reads or writes.
async fn migrate(url: &str) -> anyhow::Result<()> {
    let database = Database::connect(url).await?;
    for migrations in [
        &pos_store::MIGRATIONS,
        &pos_trade::MIGRATIONS,
        &pos_settlement::MIGRATIONS,
    ] {
        database.migrate(migrations).await?;
    }
    database.close().await;
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url)
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

/// Forgets every product sales row, so the next MONTH run starts from the trades.
async fn clear_product_sales(url: &str) -> anyhow::Result<()> {
    let mut db = connect(url).await?;
    sqlx::raw_sql("DELETE FROM product_sales; DELETE FROM product_sales_windows")
        .execute(&mut db)
        .await?;
    let _ = db.close().await;
    Ok(())
}

/// The MONTH product sales the batch wrote equal the hand-written `GROUP BY`'s.
async fn check_product_sales(url: &str, start: NaiveDate) -> anyhow::Result<()> {
    let mut db = connect(url).await?;
    let (rows, count, amount): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(sale_count), 0)::bigint,
                coalesce(sum(sale_amount), 0)::bigint
         FROM product_sales WHERE term = 'MONTH' AND start_date = $1",
    )
    .bind(start)
    .fetch_one(&mut db)
    .await?;
    let (lines, amount_sold): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(l.count), 0)::bigint, coalesce(sum(l.amount), 0)::bigint
         FROM trades t JOIN trade_orders o ON o.trade_id = t.id
         JOIN trade_order_lines l ON l.order_id = o.id WHERE t.status = 'PAID'",
    )
    .fetch_one(&mut db)
    .await?;
    let _ = db.close().await;
    ensure!(
        (count, amount) == (lines, amount_sold),
        "MONTH product sales ({rows} rows) add up to {count} sold for {amount}, the paid \
         trades to {lines} sold for {amount_sold}"
    );
    eprintln!("pos-bench: MONTH product sales: {rows} rows, {count} sold for {amount}");
    Ok(())
}

/// The MONTH settlements of the stores settling on the 1st (whose window is the data
/// set's month) add up to those stores' payments.
async fn check_settlement(url: &str, start: NaiveDate) -> anyhow::Result<()> {
    let mut db = connect(url).await?;
    let settled: (i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(revenue), 0)::bigint, coalesce(sum(fee), 0)::bigint,
                coalesce(sum(trade_count), 0)::bigint
         FROM settlements WHERE term = 'MONTH' AND start_date = $1",
    )
    .bind(start)
    .fetch_one(&mut db)
    .await?;
    let paid: (i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(p.amount), 0)::bigint, coalesce(sum(p.card_fee), 0)::bigint,
                count(*)
         FROM trade_payments p JOIN stores s ON s.id = p.store_id
         WHERE s.settlement_day = 1",
    )
    .fetch_one(&mut db)
    .await?;
    let _ = db.close().await;
    ensure!(
        settled == paid,
        "MONTH settlements of day 1 (revenue, fee, trades) {settled:?}, their payments {paid:?}"
    );
    eprintln!("pos-bench: MONTH settlements of day 1: {settled:?}");
    Ok(())
}

fn print(figures: &Figures) -> anyhow::Result<()> {
    println!(
        "product sales MONTH from the trades / bare GROUP BY: {:.2} (target <= 1.5)",
        figures.raw_ratio
    );
    println!(
        "product sales MONTH from DAY rows / bare GROUP BY: {:.2} (target <= 0.2)",
        figures.rollup_ratio
    );
    println!("{}", serde_json::to_string(figures)?);
    Ok(())
}
