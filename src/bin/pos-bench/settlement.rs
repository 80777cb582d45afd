//! `pos-bench settlement`: how fast the aggregation batch turns a month of trades into
//! product sales and settlements, against what PostgreSQL itself needs for the same
//! `GROUP BY`. It loads SPEC section 8's data set into a scratch database (`dataset.rs`,
//! `load.rs`), times the hand-written `GROUP BY`s through `psql` and the batch's MONTH
//! runs as `pos batch run` processes (`batch_run.rs`), each from process start to exit,
//! checks the batch's rows against the trades, prints each figure and ratio and, last,
//! one JSON line; the database is dropped afterwards (on errors and Ctrl-C too).

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{Datelike, NaiveDate};
use pos_batch::{Job, SETTLEMENT_DAYS, Term, TimeZone, Window};
use sqlx::{Connection, PgConnection};

use crate::{
    batch_run::{BatchRun, Batches},
    child::{pos_binary, pos_command, run_to_end},
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
    /// The largest peak resident memory of a `pos batch` process (what a CronJob's pod
    /// needs).
    batch_peak_memory_mib: f64,
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
    let workdir = std::env::temp_dir().join(format!("pos-bench-settlement-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)
        .with_context(|| format!("cannot create {}", workdir.display()))?;
    let mut migrate = pos_command(&pos_binary()?);
    migrate.args(["migrate", "--database-url", url]);
    run_to_end("migrate", migrate).await?;
    load::load(url, generator).await?;
    let batches = Batches::start(url, &workdir).await?;
    let measured = measure_runs(url, generator, args, &batches).await;
    let stopped = batches.stop().await;
    if measured.is_ok() && stopped.is_ok() {
        let _ = std::fs::remove_dir_all(&workdir);
    } else {
        eprintln!("pos-bench: logs kept in {}", workdir.display());
    }
    let figures = measured?;
    stopped?;
    Ok(figures)
}

async fn measure_runs(
    url: &str,
    generator: &Generator,
    args: &SettlementArgs,
    batches: &Batches,
) -> anyhow::Result<Figures> {
    let shape = generator.shape();
    let zone = generator.zone();
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
        from_raw: true,
    };
    let raw_s = median(args.repeat, || batches.time(product_month)).await?;
    report("product sales MONTH from the trades (--from-raw)", raw_s);
    check_product_sales(url, month.start).await?;
    // The daily runs' rows first (untimed), then the MONTH as the schedule runs it.
    let last_day = month.end.pred_opt().context("a last day of the month")?;
    let took = batches
        .backfill_days(Job::ProductSales, month.start, last_day)
        .await?;
    eprintln!(
        "pos-bench: DAY product sales built in {:.1} s (untimed)",
        took.as_secs_f64()
    );
    let rolled_up = BatchRun {
        from_raw: false,
        ..product_month
    };
    clear_month(url, "product_sales", month.start).await?;
    let rollup_s = median(args.repeat, || batches.time(rolled_up)).await?;
    report("product sales MONTH from DAY rows", rollup_s);
    check_product_sales(url, month.start).await?;

    // Settlements: the DAY rows of every day a settlement window of the month after
    // covers are built first (untimed), as the daily runs would have.
    let last_day = SETTLEMENT_DAYS.iter().max().copied().unwrap_or(1);
    let until = next_month
        .with_day(last_day)
        .and_then(|day| day.pred_opt())
        .context("a settlement day of the month after")?;
    let took = batches
        .backfill_days(Job::Settlement, month.start, until)
        .await?;
    eprintln!(
        "pos-bench: DAY settlements built in {:.1} s (untimed)",
        took.as_secs_f64()
    );
    let settlement_on = |day: u32, from_raw: bool| -> anyhow::Result<BatchRun> {
        Ok(BatchRun {
            job: Job::Settlement,
            term: Term::Month,
            date: next_month.with_day(day).context("a settlement day")?,
            from_raw,
        })
    };
    let first_raw = settlement_on(1, true)?;
    let raw_one_s = median(args.repeat, || batches.time(first_raw)).await?;
    report(
        "settlement MONTH of the stores settling on the 1st, from the trades (--from-raw)",
        raw_one_s,
    );
    clear_month(url, "settlement", month.start).await?;
    let first = settlement_on(1, false)?;
    let one_day_s = median(args.repeat, || batches.time(first)).await?;
    report(
        "settlement MONTH of the stores settling on the 1st, from DAY rows",
        one_day_s,
    );
    check_settlement(url, month.start).await?;
    let mut all_s = 0.0;
    for day in SETTLEMENT_DAYS {
        let run = settlement_on(day, false)?;
        let took = median(args.repeat, || batches.time(run)).await?;
        report(
            &format!("settlement MONTH on day {day}, from DAY rows"),
            took,
        );
        all_s += took;
    }
    report("settlement MONTH, all six settlement days", all_s);

    Ok(Figures {
        product_sales_month_raw_s: raw_s,
        product_sales_month_rollup_s: rollup_s,
        settlement_month_one_day_s: one_day_s,
        settlement_month_all_s: all_s,
        bare_group_by_product_sales_s: bare_product_sales_s,
        bare_group_by_settlement_s: bare_settlement_s,
        raw_ratio: raw_s / bare_product_sales_s,
        rollup_ratio: rollup_s / bare_product_sales_s,
        batch_peak_memory_mib: (batches.peak_memory_mib() * 10.0).round() / 10.0,
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

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url)
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

/// Forgets the MONTH rows of a job starting `start`, so that a check after the next run
/// sees that run's rows.
async fn clear_month(url: &str, job: &str, start: NaiveDate) -> anyhow::Result<()> {
    let mut db = connect(url).await?;
    let statements: &[&str] = if job == "product_sales" {
        &[
            "DELETE FROM product_sales WHERE term = 'MONTH' AND start_date = $1",
            "DELETE FROM product_sales_windows WHERE term = 'MONTH' AND start_date = $1",
        ]
    } else {
        &[
            "DELETE FROM settlement_products WHERE term = 'MONTH' AND start_date = $1",
            "DELETE FROM settlement_card_fees WHERE term = 'MONTH' AND start_date = $1",
            "DELETE FROM settlements WHERE term = 'MONTH' AND start_date = $1",
        ]
    };
    for statement in statements {
        sqlx::query(*statement).bind(start).execute(&mut db).await?;
    }
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
    println!(
        "peak memory of a pos batch process (VmHWM): {:.1} MiB",
        figures.batch_peak_memory_mib
    );
    println!("{}", serde_json::to_string(figures)?);
    Ok(())
}
