//! The figures of an orders run: a summary for people, then one JSON object as the very
//! last line of stdout for scripts (`tail -n 1 | jq`).

use hdrhistogram::Histogram;
use serde_json::json;

use crate::{audit::Audit, drive::Outcome, target::TargetKind};

/// The run's shape, as the report states it.
pub struct Shape {
    pub target: TargetKind,
    pub tablets: usize,
    pub stores: usize,
    pub connections: usize,
    pub cores: usize,
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    // Recorded in microseconds.
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// Prints the summary and the JSON line.
pub fn print(shape: &Shape, outcome: &Outcome, audit: &Audit) {
    let seconds = outcome.elapsed.as_secs_f64();
    let orders = outcome.ledger.orders.len();
    let payments = outcome.ledger.payments.len();
    let orders_per_s = orders as f64 / seconds;
    let lat = &outcome.order_latency;
    let pay = &outcome.payment_latency;
    println!(
        "target {}: {} tablets over {} stores, one order in flight each, {} HTTP/2 connections, {} cores",
        shape.target.name(),
        shape.tablets,
        shape.stores,
        shape.connections,
        shape.cores
    );
    println!(
        "orders:   {orders} in {seconds:.1} s = {orders_per_s:.0}/s  p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        ms(lat, 0.5),
        ms(lat, 0.99),
        ms(lat, 0.999),
        lat.max() as f64 / 1000.0
    );
    println!(
        "payments: {payments}  p50 {:.3} ms  p99 {:.3} ms",
        ms(pay, 0.5),
        ms(pay, 0.99)
    );
    println!(
        "refused (OUT_OF_STOCK): {}  errors: {}",
        outcome.refused, outcome.errors
    );
    for sample in &outcome.error_samples {
        println!("  error: {sample}");
    }
    let per_order = |cpu: std::time::Duration| cpu.as_secs_f64() * 1e6 / orders.max(1) as f64;
    let cpu_total: std::time::Duration = outcome.cpu.iter().map(|(_, cpu)| *cpu).sum();
    let parts: Vec<String> = outcome
        .cpu
        .iter()
        .map(|(label, cpu)| format!("{label} {:.0}", per_order(*cpu)))
        .collect();
    println!(
        "cpu per order: {:.0} us ({}); {:.1} of {} cores busy with the run",
        per_order(cpu_total),
        parts.join(", "),
        cpu_total.as_secs_f64() / seconds,
        shape.cores
    );
    let memory: Vec<String> = outcome
        .peak_memory
        .iter()
        .map(|(label, kib)| format!("{label} {:.1} MiB", *kib as f64 / 1024.0))
        .collect();
    println!("peak memory (VmHWM): {}", memory.join(", "));
    println!(
        "audit: stock {}, open bills {} ({} won), payments {} ({} won), totals {} -> {}",
        verdict(audit.stock_ok),
        audit.open_bills,
        audit.open_amount,
        audit.payments,
        audit.paid_amount,
        verdict(audit.totals_ok && audit.bills_ok && audit.payments_ok),
        if audit.consistent() {
            "consistent"
        } else {
            "INCONSISTENT"
        }
    );
    for problem in &audit.problems {
        println!("  audit: {problem}");
    }
    let line = json!({
        "target": shape.target.name(),
        "tablets": shape.tablets,
        "stores": shape.stores,
        "connections": shape.connections,
        "seconds": (seconds * 100.0).round() / 100.0,
        "orders": orders,
        "orders_per_s": orders_per_s.round(),
        "p50_ms": ms(lat, 0.5),
        "p99_ms": ms(lat, 0.99),
        "p999_ms": ms(lat, 0.999),
        "payments": payments,
        "payment_p99_ms": ms(pay, 0.99),
        "refused": outcome.refused,
        "cpu_us_per_order": per_order(cpu_total).round(),
        "peak_memory_kib": outcome.peak_memory.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "errors": outcome.errors,
        "consistent": audit.consistent(),
    });
    println!("{line}");
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "WRONG" }
}
