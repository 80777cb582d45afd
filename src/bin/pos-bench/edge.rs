//! `pos-bench edge`: what the edge costs. Calls one cheap authenticated unary RPC
//! (StoreService/GetMyStore) with N concurrent callers, directly on the store role and
//! through the edge of the all-in-one stack, in the same run, alternating rounds, and
//! prints throughput, latency percentiles and CPU per call of each and the difference.
//!
//! Run it in release mode: `cargo run --release --bin pos-bench -- edge`.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use pos::{
    demo, registry, startup,
    up::{self, Databases, Plumbing},
};
use pos_common::{
    auth::{Revocations, SigningKey},
    clock,
    ephemeral::MemoryStore,
};
use pos_deny_list_sqlite::SqliteDenyList;
use pos_proto::v1::{GetMyStoreRequest, store_service_client::StoreServiceClient};
use tonic::{metadata::MetadataValue, transport::Channel};

/// `pos-bench edge`'s flags.
#[derive(Debug, clap::Args)]
pub struct EdgeArgs {
    /// Concurrent callers.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds measured per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per target (alternating direct and edge).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

struct Round {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    /// CPU time this process used during the round (servers and callers alike).
    cpu: Duration,
}

impl Round {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

async fn load(
    addr: SocketAddr,
    token: &str,
    args: &EdgeArgs,
    duration: Duration,
) -> anyhow::Result<Round> {
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    let header: MetadataValue<_> = format!("Bearer {token}").parse()?;
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let cpu_before = crate::cpu::of_self();
    let mut tasks = Vec::new();
    for i in 0..args.concurrency {
        let mut client = StoreServiceClient::new(channels[i % channels.len()].clone());
        let header = header.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(65_536);
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let mut request = tonic::Request::new(GetMyStoreRequest {});
                request
                    .metadata_mut()
                    .insert("authorization", header.clone());
                let sent = Instant::now();
                match client.get_my_store(request).await {
                    Ok(_) => {
                        latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32)
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut l, e) = task.await?;
        latencies_us.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu = crate::cpu::of_self().saturating_sub(cpu_before);
    latencies_us.sort_unstable();
    Ok(Round {
        requests: latencies_us.len(),
        errors,
        elapsed,
        latencies_us,
        cpu,
    })
}

fn summary(label: &str, rounds: &[Round]) -> (f64, f64, f64) {
    let mut all: Vec<u32> = rounds
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    all.sort_unstable();
    let rps = rounds.iter().map(Round::rps).sum::<f64>() / rounds.len() as f64;
    let errors: usize = rounds.iter().map(|r| r.errors).sum();
    let p99 = percentile(&all, 99.0);
    let cpu: Duration = rounds.iter().map(|r| r.cpu).sum();
    let cpu_per_call = cpu.as_secs_f64() * 1e6 / all.len().max(1) as f64;
    println!(
        "{label:>6}: {rps:>9.0} req/s  p50 {:>6.3} ms  p90 {:>6.3} ms  p99 {p99:>6.3} ms  cpu {cpu_per_call:>5.1} us/call  ({} calls, {errors} errors)",
        percentile(&all, 50.0),
        percentile(&all, 90.0),
        all.len()
    );
    (rps, p99, cpu_per_call)
}

/// Runs the edge benchmark and prints its figures.
pub async fn run(args: EdgeArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("pos-bench-{}", std::process::id()));
    // The limit is not what is measured here.
    let unlimited = u32::MAX.to_string();
    let matches = up::matches(&["--rate-limit-per-minute", &unlimited])?;
    let stack = up::start(
        Plumbing {
            listen: "127.0.0.1:0".parse()?,
            databases: Databases::SqliteIn(dir.clone()),
            ephemeral: Arc::new(MemoryStore::new(clock::system())),
            // As `pos up` keeps it: checked in memory, written to a file.
            revocations: Revocations::in_list(Arc::new(
                SqliteDenyList::open(&dir, "revocations.db", clock::system()).await?,
            )),
            events: Arc::new(pos_common::events::LocalBus::new()),
            signing_key: Arc::new(SigningKey::generate()),
            clock: clock::system(),
        },
        &matches,
    )
    .await?;
    // The same store role once more, on a port of its own: the direct path.
    let store = registry::role("store").context("the registry has a store role")?;
    let context = stack.context(store, Default::default()).await?;
    let served = store
        .build(&matches, context)
        .await
        .map_err(|err| anyhow::anyhow!(err))?;
    let direct = startup::serve("127.0.0.1:0".parse()?, served).await?;
    let token = demo::seed(stack.running.addr, &stack.issuer)
        .await?
        .owner_token;

    println!(
        "GetMyStore, {} callers on {} connections, {} s x {} rounds per target, {} cores",
        args.concurrency,
        args.connections,
        args.seconds,
        args.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let duration = Duration::from_secs(args.seconds);
    // Warm up both paths (connections, caches, allocator).
    load(direct.addr, &token, &args, Duration::from_secs(1)).await?;
    load(stack.running.addr, &token, &args, Duration::from_secs(1)).await?;
    let (mut direct_rounds, mut edge_rounds) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        direct_rounds.push(
            load(direct.addr, &token, &args, duration)
                .await
                .context("direct round")?,
        );
        edge_rounds.push(
            load(stack.running.addr, &token, &args, duration)
                .await
                .context("edge round")?,
        );
    }
    let (direct_rps, direct_p99, direct_cpu) = summary("direct", &direct_rounds);
    let (edge_rps, edge_p99, edge_cpu) = summary("edge", &edge_rounds);
    println!(
        "edge overhead: throughput {:+.1}% , p99 {:+.3} ms, cpu {:+.1} us/call (targets: loss <= 15%, added p99 <= 1 ms)",
        (edge_rps / direct_rps - 1.0) * 100.0,
        edge_p99 - direct_p99,
        edge_cpu - direct_cpu
    );
    direct.stop(Duration::from_secs(2)).await?;
    stack.stop(Duration::from_secs(2)).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
