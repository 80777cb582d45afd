//! `pos-bench settlement` keeps working: a scaled-down data set (12 stores, 3,000 paid
//! trades) is loaded, every figure is timed through `psql` and `pos batch` processes, the
//! batch's MONTH rows agree with the trades (the benchmark checks them itself), the last
//! line is the JSON object with every figure, and the scratch database is dropped.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::process::Command;

#[tokio::test]
async fn the_settlement_benchmark_times_every_figure_on_a_small_month() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pos-bench"));
    command
        .args(["settlement", "--stores", "12", "--paid-trades", "3000"])
        .args(["--order-lines", "9010", "--repeat", "1"])
        .args(["--database-prefix", &crate::support::run_id()])
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(240), command.output())
        .await
        .expect("the benchmark finished within 240 s")
        .expect("run pos-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pos-bench failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("3000 rows copied into trade_payments"),
        "{stderr}"
    );
    let last = stdout.lines().last().expect("some output");
    let report: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line {last:?} is not JSON: {e}"));
    for key in [
        "product_sales_month_raw_s",
        "product_sales_month_rollup_s",
        "settlement_month_one_day_s",
        "settlement_month_all_s",
        "bare_group_by_product_sales_s",
        "bare_group_by_settlement_s",
        "raw_ratio",
        "rollup_ratio",
        "batch_peak_memory_mib",
    ] {
        assert!(report[key].as_f64().unwrap_or(0.0) > 0.0, "{key}: {report}");
    }
    let name = stderr
        .lines()
        .find_map(|line| line.strip_prefix("pos-bench: scratch database "))
        .expect("the benchmark names its database");
    let mut admin = PgConnection::connect(&crate::support::admin_url())
        .await
        .expect("connect");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .expect("query");
    assert_eq!(left, 0, "database {name} was dropped");
}
