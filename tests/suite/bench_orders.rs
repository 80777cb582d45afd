//! `pos-bench orders` keeps working: a short run of the debug build against each target
//! (`pos up` on SQLite, and the mesh of `pos serve` processes on PostgreSQL and Redis)
//! places orders through the edge with no errors, and its audit finds the stock and the
//! bills agreeing with every acknowledged order and payment.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::process::Command;

/// Runs the benchmark briefly: its last stdout line as JSON, and its stderr.
async fn bench(target: &str, tablets: &str, stores: &str) -> (serde_json::Value, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pos-bench"));
    command
        .args(["orders", "--target", target, "--tablets", tablets])
        .args(["--stores", stores, "--seconds", "2", "--products", "4"])
        // Bills are paid during the run, not only left open.
        .args(["--pay-every", "5"])
        // The scratch database is named after the run, so xtask's sweep finds leftovers.
        .args(["--database-prefix", &crate::support::run_id()])
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("the benchmark finished within 90 s")
        .expect("run pos-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pos-bench failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().expect("some output");
    let report = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line {last:?} is not JSON: {e}"));
    (report, stderr.into_owned())
}

fn assert_sound(report: &serde_json::Value, target: &str) {
    assert_eq!(report["target"], target, "{report}");
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["orders"].as_u64().unwrap_or(0) > 0, "{report}");
    assert!(report["payments"].as_u64().unwrap_or(0) > 0, "{report}");
    for key in ["orders_per_s", "p50_ms", "p99_ms", "p999_ms"] {
        assert!(report[key].as_f64().unwrap_or(0.0) > 0.0, "{key}: {report}");
    }
    // Each role's peak memory, what the Helm chart's requests are set from.
    let roles: &[&str] = if target == "mesh" {
        &["edge", "store", "trade", "user"]
    } else {
        &["up"]
    };
    for role in roles {
        assert!(
            report["peak_memory_kib"][role].as_u64().unwrap_or(0) > 1024,
            "{role}: {report}"
        );
    }
}

#[tokio::test]
async fn orders_on_pos_up_are_counted_and_the_books_agree() {
    let (report, _) = bench("up", "4", "2").await;
    assert_sound(&report, "up");
}

#[tokio::test]
async fn orders_on_the_mesh_are_counted_and_the_books_agree() {
    let (report, stderr) = bench("mesh", "4", "2").await;
    assert_sound(&report, "mesh");
    // Its scratch database is gone again.
    let name = stderr
        .lines()
        .find_map(|line| line.strip_prefix("pos-bench: scratch database "))
        .expect("the benchmark names its database");
    assert!(name.starts_with(&crate::support::run_id()), "{name}");
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
