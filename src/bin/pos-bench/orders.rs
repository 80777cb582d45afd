//! `pos-bench orders`: order throughput of a system the benchmark starts itself (`mesh`
//! or `up`, see `target.rs`). Owners sign up and stock their menus through the edge,
//! simulated tablets order for a fixed time (`drive.rs`), then the stores' books are
//! checked against every acknowledged order and payment (`audit.rs`). The last line of
//! stdout is one JSON object with the figures (`report.rs`). The system is torn down
//! afterwards — database, Redis keys and temporary files included — on errors and
//! Ctrl-C too.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use tonic::transport::Channel;

use crate::{
    audit::{self, Audit},
    cpu,
    drive::{self, Load, Outcome},
    memory,
    report::{self, Shape},
    setup::{self, Plan, Store},
    target::{Resources, System, TargetKind},
};

/// `pos-bench orders`' flags.
#[derive(Debug, clap::Args)]
pub struct OrdersArgs {
    /// What to start and measure.
    #[arg(long, value_enum, default_value = "mesh")]
    target: TargetKind,
    /// Simulated tablets, each with one order in flight.
    #[arg(long, default_value_t = 64)]
    tablets: usize,
    /// Stores (owners) the tablets are spread over.
    #[arg(long, default_value_t = 8)]
    stores: usize,
    /// Seconds of ordering measured.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// HTTP/2 connections to the edge the tablets share.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Products on each store's menu.
    #[arg(long, default_value_t = 12)]
    products: usize,
    /// Initial stock of every product: enough that orders rarely run out (those that do
    /// are counted as refusals, not errors).
    #[arg(long, default_value_t = 1_000_000)]
    stock: i64,
    /// The owner pays a tablet's bill after this many orders (bills are capped).
    #[arg(long, default_value_t = 50)]
    pay_every: u32,
    /// How long the audit waits for the books to settle before it calls them wrong.
    #[arg(long, default_value_t = 5)]
    settle_seconds: u64,
    /// Calls per tablet and minute the edge allows. A simulated tablet orders far faster
    /// than a real one, so the limit is lifted; its counting in Redis still happens.
    #[arg(long, default_value_t = 100_000_000)]
    rate_limit_per_minute: u32,
    /// Prefix of the scratch database and Redis keys (a test run passes its run id).
    #[arg(long, env = "POS_TEST_RUN_ID", default_value = "pos_bench")]
    database_prefix: String,
    /// PostgreSQL URL allowed to create and drop databases (mesh).
    #[arg(
        long,
        env = "POS_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_database_url: String,
    /// Redis (mesh).
    #[arg(
        long,
        env = "POS_TEST_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Profile the system's processes with `perf record -g` while the tablets order, one
    /// file per process in this directory.
    #[arg(long)]
    perf_dir: Option<PathBuf>,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: OrdersArgs) -> anyhow::Result<()> {
    let resources = Resources {
        admin_database_url: args.admin_database_url.clone(),
        redis_url: args.redis_url.clone(),
        prefix: args.database_prefix.clone(),
        rate_limit_per_minute: args.rate_limit_per_minute,
    };
    eprintln!("pos-bench: starting {}", args.target.name());
    let mut system = System::start(args.target, &resources).await?;
    let measured = tokio::select! {
        measured = measure(&mut system, &args) => measured,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let stopped = system.stop(measured.is_err()).await;
    let (outcome, audit) = measured?;
    let shape = Shape {
        target: args.target,
        tablets: args.tablets,
        stores: args.stores,
        connections: args.connections,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
    };
    report::print(&shape, &outcome, &audit);
    stopped
}

async fn measure(system: &mut System, args: &OrdersArgs) -> anyhow::Result<(Outcome, Audit)> {
    let channel = Channel::from_shared(format!("http://{}", system.edge))?
        .connect()
        .await
        .context("connect to the edge")?;
    let plan = Plan {
        stores: args.stores,
        tablets: args.tablets,
        products_per_store: args.products,
        stock_per_product: args.stock,
    };
    eprintln!(
        "pos-bench: {} listening at {}; setting up {} stores",
        args.target.name(),
        system.edge,
        args.stores
    );
    let stores = setup::stores(&channel, plan).await?;
    for (role, pid) in system.pids() {
        eprintln!("pos-bench: {role} is pid {pid}");
    }
    let load = Load {
        duration: Duration::from_secs(args.seconds),
        connections: args.connections,
        pay_every: args.pay_every,
    };
    eprintln!(
        "pos-bench: {} tablets ordering for {} s",
        args.tablets, args.seconds
    );
    let processes = system.processes().await?;
    let profiler = match &args.perf_dir {
        Some(dir) => Some(start_perf(&processes, dir, args)?),
        None => None,
    };
    let cpu_before = cpu::Snapshot::take(&processes);
    let mut outcome = drive::run(system.edge, &stores, load).await?;
    // Backends that connected during the run count too.
    outcome.cpu = cpu::Snapshot::take(&system.processes().await?).since(&cpu_before);
    outcome.peak_memory = memory::peaks(&system.pids());
    if let Some(profiler) = profiler {
        finish_perf(profiler).await;
    }
    if let Some(role) = system.crashed() {
        bail!("pos {role} exited during the run");
    }
    let audit = settled_audit(&channel, &stores, &outcome, args.settle_seconds).await?;
    Ok((outcome, audit))
}

/// Audits until the books agree or `settle_seconds` have passed: an order answered with
/// an error may still be settling in the system when the tablets stop.
async fn settled_audit(
    channel: &Channel,
    stores: &[Store],
    outcome: &Outcome,
    settle_seconds: u64,
) -> anyhow::Result<Audit> {
    let until = tokio::time::Instant::now() + Duration::from_secs(settle_seconds);
    loop {
        let audit = audit::audit(channel, stores, &outcome.ledger).await?;
        if audit.consistent() || tokio::time::Instant::now() >= until {
            return Ok(audit);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `perf record` processes, one per role (and one for the PostgreSQL backends).
struct Profiler(Vec<tokio::process::Child>);

fn start_perf(
    processes: &[(String, u32)],
    dir: &std::path::Path,
    args: &OrdersArgs,
) -> anyhow::Result<Profiler> {
    std::fs::create_dir_all(dir)?;
    let mut by_role: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (role, pid) in processes {
        by_role.entry(role).or_default().push(pid.to_string());
    }
    let mut children = Vec::new();
    for (role, pids) in by_role {
        let file = dir.join(format!("perf-{}-{role}.data", args.target.name()));
        let child = tokio::process::Command::new("perf")
            .args(["record", "-g", "-F", "499", "-p", &pids.join(","), "-o"])
            .arg(&file)
            .args(["--", "sleep", &args.seconds.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start perf (apt-get install linux-perf)")?;
        eprintln!("pos-bench: profiling {role} into {}", file.display());
        children.push(child);
    }
    Ok(Profiler(children))
}

async fn finish_perf(profiler: Profiler) {
    for mut child in profiler.0 {
        let _ = child.wait().await;
    }
}
