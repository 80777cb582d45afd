//! `pos-bench`: benchmarks of the POS mesh, one subcommand each.
//!
//! - `edge`: what the edge costs per call, in one process (see `edge.rs`).
//! - `orders`: order throughput of the whole system as it is deployed, started by the
//!   benchmark itself, with a consistency check afterwards (see `orders.rs`).
//! - `settlement`: the aggregation batch's MONTH runs over SPEC section 8's data set,
//!   against the bare `GROUP BY` (see `settlement.rs`).
//!
//! Run them in release mode: `cargo build --release --bin pos --bin pos-bench`, then
//! `target/release/pos-bench <subcommand>`.

mod audit;
mod batch_run;
mod child;
mod cpu;
mod dataset;
mod drive;
mod edge;
mod ledger;
mod load;
mod memory;
mod orders;
mod report;
mod settlement;
mod setup;
mod target;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "pos-bench", about = "Benchmarks of the POS mesh")]
struct Cli {
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Debug, Subcommand)]
enum Benchmark {
    /// The edge's cost: one cheap RPC directly on the store role and through the edge.
    Edge(edge::EdgeArgs),
    /// Orders per second through the edge of a freshly started system, checked afterwards.
    Orders(orders::OrdersArgs),
    /// The aggregation batch's MONTH runs over a month of trades, against the bare GROUP BY.
    Settlement(settlement::SettlementArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().benchmark {
        Benchmark::Edge(args) => edge::run(args).await,
        Benchmark::Orders(args) => orders::run(args).await,
        Benchmark::Settlement(args) => settlement::run(args).await,
    }
}
