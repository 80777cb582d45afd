//! The PostgreSQL and Redis servers the tests use: reuse running ones or start
//! throwaway ones, and remove what a test run left behind.
//!
//! Throwaway servers live in a temp dir and are stopped (and the dir removed)
//! when their handle is dropped, so an early `?` return still cleans up.

use crate::util::{find_on_path, free_port, is_executable, is_root, output, redact, run};
use anyhow::{Context, Result, bail, ensure};
use std::env;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const INSTALL: &str = "apt-get install -y postgresql redis-server";

fn env_or(name: &str, default: &str) -> String {
    env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn temp_dir(kind: &str) -> Result<PathBuf> {
    let dir = env::temp_dir().join(format!("pos-xtask-{kind}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The last `n` lines of a log file, for error messages.
fn log_tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs one SQL statement with `psql`; returns its unaligned, tuples-only output.
fn psql(url: &str, sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .context("cannot run psql")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub struct Postgres {
    /// Admin URL (a superuser connection to a maintenance database).
    pub url: String,
    _throwaway: Option<ThrowawayPg>,
}

impl Postgres {
    /// Uses `POS_TEST_DATABASE_URL` (or the default) if it answers, else
    /// starts a throwaway server from the installed binaries.
    pub fn resolve() -> Result<Self> {
        let url = env_or("POS_TEST_DATABASE_URL", DEFAULT_PG_URL);
        if find_on_path("psql").is_none() {
            bail!("`psql` not found; install PostgreSQL with: {INSTALL}");
        }
        match psql(&url, "select 1") {
            Ok(_) => {
                println!("xtask: postgres: using {}", redact(&url));
                return Ok(Self {
                    url,
                    _throwaway: None,
                });
            }
            Err(e) => eprintln!(
                "xtask: postgres: {} is unreachable ({e:#}); starting a throwaway server",
                redact(&url)
            ),
        }
        let throwaway = ThrowawayPg::start()?;
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", throwaway.port);
        psql(&url, "select 1").context("the throwaway postgres does not answer")?;
        println!("xtask: postgres: using throwaway server {url}");
        Ok(Self {
            url,
            _throwaway: Some(throwaway),
        })
    }

    /// The URL of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        let (base, query) = match self.url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (self.url.as_str(), None),
        };
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let host_end = base[scheme_end..]
            .find('/')
            .map_or(base.len(), |i| scheme_end + i);
        let mut url = format!("{}/{name}", &base[..host_end]);
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// Drops every database whose name starts with `run_id`; returns their names.
    pub fn drop_databases(&self, run_id: &str) -> Result<Vec<String>> {
        ensure!(
            !run_id.is_empty()
                && run_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "unsafe run id {run_id:?}"
        );
        let pattern = format!("{}%", run_id.replace('_', "\\_"));
        let sql = format!("SELECT datname FROM pg_database WHERE datname LIKE '{pattern}'");
        let names: Vec<String> = psql(&self.url, &sql)?
            .lines()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect();
        for name in &names {
            let quoted = name.replace('"', "\"\"");
            psql(
                &self.url,
                &format!("DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)"),
            )
            .with_context(|| format!("cannot drop database {name}"))?;
        }
        Ok(names)
    }
}

/// A PostgreSQL cluster in a temp dir, run as `postgres` when we are root.
struct ThrowawayPg {
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl ThrowawayPg {
    fn start() -> Result<Self> {
        if pg_bindir().is_none() {
            crate::system::ensure(&[], &["postgresql"])?;
        }
        let bindir = pg_bindir().with_context(|| {
            format!(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under \
                 /usr/lib/postgresql/*/bin or on PATH; install them with: {INSTALL}"
            )
        })?;
        // From here on, Drop stops the server and removes the dir.
        let mut pg = Self {
            bindir,
            dir: temp_dir("pg")?,
            port: 0,
            as_postgres: is_root(),
        };
        if pg.as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir))?;
        }
        let data = pg.dir.join("data");
        let log = pg.dir.join("server.log");
        output(pg.tool("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        ]))
        .context("initdb failed")?;
        pg.port = free_port()?;
        let opts = format!(
            "-p {} -k '{}' -c listen_addresses=127.0.0.1 -c max_connections=200 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            pg.port,
            pg.dir.display()
        );
        let started = output(
            pg.tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &opts, "start"]),
        );
        if let Err(e) = started {
            bail!("{e:#}\nserver log:\n{}", log_tail(&log, 20));
        }
        eprintln!(
            "xtask: postgres: started throwaway server from {} on port {} (data in {})",
            pg.bindir.display(),
            pg.port,
            pg.dir.display()
        );
        Ok(pg)
    }

    /// A command for one of the PostgreSQL binaries, as `postgres` if root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bindir.join(name);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.current_dir(&self.dir);
        cmd
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let stop = self
                .tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "fast", "-w", "stop"])
                .stdout(Stdio::null())
                .status();
            if !stop.is_ok_and(|s| s.success()) {
                eprintln!(
                    "xtask: warning: could not stop throwaway postgres in {}",
                    data.display()
                );
            }
        }
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => eprintln!("xtask: postgres: throwaway server stopped and removed"),
            Err(e) => eprintln!("xtask: warning: cannot remove {}: {e}", self.dir.display()),
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin`, else the dir of `initdb` on PATH.
fn pg_bindir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let major = name.to_str()?.split('.').next()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    let on_path = find_on_path("initdb")
        .and_then(|p| fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf));
    versions
        .into_iter()
        .rev()
        .map(|(_, dir)| dir)
        .chain(on_path)
        .find(|dir| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|tool| is_executable(&dir.join(tool)))
        })
}

fn redis_cli(url: &str) -> Command {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["--no-auth-warning", "-u", url]);
    cmd
}

fn redis_ping(url: &str) -> bool {
    output(redis_cli(url).arg("PING")).is_ok_and(|out| out.trim() == "PONG")
}

pub struct Redis {
    pub url: String,
    _throwaway: Option<ThrowawayRedis>,
}

impl Redis {
    /// Uses `POS_TEST_REDIS_URL` (or the default) if it answers PING, else
    /// starts a throwaway `redis-server` as a child process.
    pub fn resolve() -> Result<Self> {
        let url = env_or("POS_TEST_REDIS_URL", DEFAULT_REDIS_URL);
        if find_on_path("redis-cli").is_none() {
            bail!("`redis-cli` not found; install Redis with: {INSTALL}");
        }
        if redis_ping(&url) {
            println!("xtask: redis: using {}", redact(&url));
            return Ok(Self {
                url,
                _throwaway: None,
            });
        }
        eprintln!(
            "xtask: redis: {} is unreachable; starting a throwaway server",
            redact(&url)
        );
        if find_on_path("redis-server").is_none() {
            crate::system::ensure(&[], &["redis-server"])?;
        }
        let server = find_on_path("redis-server")
            .with_context(|| format!("`redis-server` not found; install it with: {INSTALL}"))?;
        let port = free_port()?.to_string();
        let dir = temp_dir("redis")?;
        let child = Command::new(server)
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no", "--dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0) // Ctrl-C must not stop it before cleanup ran
            .spawn()
            .context("cannot start redis-server")?;
        let mut throwaway = ThrowawayRedis { child, dir };
        let url = format!("redis://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !redis_ping(&url) {
            if let Ok(Some(status)) = throwaway.child.try_wait() {
                bail!("throwaway redis-server exited early ({status})");
            }
            if Instant::now() > deadline {
                bail!("throwaway redis-server did not answer PING within 15 s");
            }
            sleep(Duration::from_millis(100));
        }
        println!("xtask: redis: using throwaway server {url}");
        Ok(Self {
            url,
            _throwaway: Some(throwaway),
        })
    }

    /// Deletes every key matching `<run_id>:*` (SCAN + DEL); returns how many.
    pub fn delete_keys(&self, run_id: &str) -> Result<usize> {
        let pattern = format!("{run_id}:*");
        let listed = output(redis_cli(&self.url).args(["--scan", "--pattern", &pattern]))?;
        let keys: Vec<&str> = listed.lines().filter(|k| !k.is_empty()).collect();
        for chunk in keys.chunks(500) {
            let out = output(redis_cli(&self.url).arg("DEL").args(chunk))?;
            ensure!(
                out.trim().parse::<u64>().is_ok(),
                "unexpected DEL reply: {}",
                out.trim()
            );
        }
        Ok(keys.len())
    }
}

struct ThrowawayRedis {
    child: Child,
    dir: PathBuf,
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
        eprintln!("xtask: redis: throwaway server stopped");
    }
}
