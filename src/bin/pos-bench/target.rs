//! The system under test, started by the benchmark and torn down after it, on success or
//! error: `mesh` is the Kubernetes shape on one machine — `pos serve store|user|trade|edge`
//! as separate processes on a fresh PostgreSQL database and a Redis key prefix of their
//! own, with separate signing and service keys — and `up` is `pos up` on SQLite in a
//! temporary data directory. Either way the benchmark only ever talks to the edge.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, bail};
use pos_common::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, SigningKey, TokenIssuer};
use sqlx::{Connection, Executor, PgConnection};

use crate::child::{PosChild, pos_binary, pos_command, run_to_end};

/// Which deployment is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// Separate `pos serve` processes for store, user, trade and edge, on PostgreSQL and
    /// Redis.
    Mesh,
    /// `pos up`: every role in one process, on SQLite.
    Up,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mesh => "mesh",
            Self::Up => "up",
        }
    }
}

/// Where the benchmark's scratch resources come from.
#[derive(Debug, Clone)]
pub struct Resources {
    /// A PostgreSQL URL allowed to create and drop databases (mesh only).
    pub admin_database_url: String,
    /// Redis (mesh only).
    pub redis_url: String,
    /// Names the database (`<prefix>_bench_<pid>_<n>`) and the Redis keys
    /// (`<prefix>:bench-<uuid>:…`), so a test run's cleanup finds leftovers.
    pub prefix: String,
    /// Calls per tablet and minute the edge allows.
    pub rate_limit_per_minute: u32,
}

/// Environment variables of a role: name and value.
type Settings = Vec<(&'static str, String)>;

/// A PostgreSQL database created for this run.
pub struct ScratchDatabase {
    pub admin_url: String,
    pub name: String,
    pub url: String,
}

/// A running system: the edge's address and what to tear down.
pub struct System {
    pub edge: SocketAddr,
    pub children: Vec<PosChild>,
    workdir: PathBuf,
    database: Option<ScratchDatabase>,
    redis: Option<(String, String)>,
}

/// A URL of the same server as `admin`, naming the database `name`.
fn database_url(admin: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = admin.split_once('?').map_or((admin, ""), |(b, q)| (b, q));
    let authority_start = base.find("://").context("a database URL has a scheme")? + 3;
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    Ok(format!("{}/{name}{query}", &base[..path_start]))
}

impl ScratchDatabase {
    pub async fn create(admin_url: &str, prefix: &str) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{prefix}_bench_{}_{nanos}", std::process::id());
        anyhow::ensure!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "the database prefix {prefix:?} may hold only letters, digits and _"
        );
        let mut admin = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {admin_url}"))?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        let _ = admin.close().await;
        Ok(Self {
            url: database_url(admin_url, &name)?,
            admin_url: admin_url.to_string(),
            name,
        })
    }

    pub async fn drop_it(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .await
            .with_context(|| format!("cannot drop database {}", self.name))?;
        let _ = admin.close().await;
        Ok(())
    }
}

/// Deletes every Redis key under `prefix`.
async fn delete_redis_keys(url: &str, prefix: &str) -> anyhow::Result<usize> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<i64>(&mut conn)
            .await?;
    }
    Ok(keys.len())
}

/// Free loopback ports, found by binding them all at once (and then letting go: a role
/// binds its own a moment later). The store and trade roles call each other, so each
/// must know the other's address before either starts.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot find free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// A fresh Ed25519 key as PEM in `dir/<name>.pem`, its JWKS in `dir/<name>.jwks.json`.
pub fn key_files(dir: &Path, name: &str) -> anyhow::Result<(String, String)> {
    let key = SigningKey::generate();
    let pem = dir.join(format!("{name}.pem"));
    std::fs::write(&pem, key.to_pkcs8_pem())?;
    let issuer = TokenIssuer::new(Arc::new(key), DEFAULT_ISSUER, DEFAULT_AUDIENCE);
    let jwks = dir.join(format!("{name}.jwks.json"));
    std::fs::write(&jwks, serde_json::to_string(&issuer.jwks())?)?;
    Ok((pem.display().to_string(), jwks.display().to_string()))
}

impl System {
    /// Starts `kind` and waits until its edge listens. Whatever was created before a
    /// failure is torn down again.
    pub async fn start(kind: TargetKind, resources: &Resources) -> anyhow::Result<Self> {
        let workdir = std::env::temp_dir().join(format!(
            "pos-bench-orders-{}-{}",
            kind.name(),
            std::process::id()
        ));
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("cannot create {}", workdir.display()))?;
        let mut system = Self {
            edge: SocketAddr::from(([127, 0, 0, 1], 0)),
            children: Vec::new(),
            workdir,
            database: None,
            redis: None,
        };
        let started = match kind {
            TargetKind::Mesh => system.start_mesh(resources).await,
            TargetKind::Up => system.start_up(resources).await,
        };
        match started {
            Ok(()) => Ok(system),
            Err(err) => {
                if let Err(teardown) = system.stop(false).await {
                    eprintln!("pos-bench: tearing down after a failed start: {teardown:#}");
                }
                Err(err)
            }
        }
    }

    async fn start_up(&mut self, resources: &Resources) -> anyhow::Result<()> {
        let pos = pos_binary()?;
        let mut command = pos_command(&pos);
        command
            .arg("up")
            .args(["--listen", "127.0.0.1:0", "--shutdown-grace-secs", "5"])
            .arg("--data-dir")
            .arg(self.workdir.join("data"))
            .args([
                "--rate-limit-per-minute",
                &resources.rate_limit_per_minute.to_string(),
            ]);
        let up = PosChild::spawn("up", command, &self.workdir).await?;
        self.edge = up.addr;
        self.children.push(up);
        Ok(())
    }

    async fn start_mesh(&mut self, resources: &Resources) -> anyhow::Result<()> {
        let pos = pos_binary()?;
        let database =
            ScratchDatabase::create(&resources.admin_database_url, &resources.prefix).await?;
        eprintln!("pos-bench: scratch database {}", database.name);
        let url = database.url.clone();
        self.database = Some(database);
        let redis_prefix = format!(
            "{}:bench-{}",
            resources.prefix,
            uuid::Uuid::new_v4().simple()
        );
        self.redis = Some((resources.redis_url.clone(), redis_prefix.clone()));

        let mut migrate = pos_command(&pos);
        migrate.args(["migrate", "--database-url", &url]);
        run_to_end("migrate", migrate).await?;

        // Owners' and tablets' tokens are signed by one key, service tokens by another,
        // and the internet-facing edge holds only the latter (as in Kubernetes).
        let (signing_key, jwks) = key_files(&self.workdir, "signing-key")?;
        let (service_key, service_jwks) = key_files(&self.workdir, "service-key")?;
        let ports = free_ports(4)?;
        let addr = |port: u16| format!("http://127.0.0.1:{port}");
        let (store_port, user_port, trade_port, edge_port) =
            (ports[0], ports[1], ports[2], ports[3]);
        let shared = [
            ("POS_REDIS_URL", resources.redis_url.clone()),
            ("POS_REDIS_KEY_PREFIX", redis_prefix),
            ("POS_SHUTDOWN_GRACE_SECS", "5".to_string()),
            ("POS_SERVICE_JWKS_FILE", service_jwks),
            ("POS_SERVICE_KEY_FILE", service_key),
        ];
        let roles: [(&str, u16, Settings); 4] = [
            (
                "store",
                store_port,
                vec![
                    ("POS_DATABASE_URL", url.clone()),
                    ("POS_JWKS_FILE", jwks.clone()),
                    // Tablet credentials are signed by the store role.
                    ("POS_SIGNING_KEY_FILE", signing_key.clone()),
                    ("POS_TRADE_ADDR", addr(trade_port)),
                ],
            ),
            (
                "user",
                user_port,
                vec![
                    ("POS_DATABASE_URL", url.clone()),
                    ("POS_SIGNING_KEY_FILE", signing_key),
                    ("POS_STORE_ADDR", addr(store_port)),
                    ("POS_DEV_PROVIDER", "true".to_string()),
                ],
            ),
            (
                "trade",
                trade_port,
                vec![
                    ("POS_DATABASE_URL", url),
                    ("POS_JWKS_FILE", jwks.clone()),
                    ("POS_STORE_ADDR", addr(store_port)),
                ],
            ),
            (
                "edge",
                edge_port,
                vec![
                    ("POS_JWKS_FILE", jwks),
                    ("POS_STORE_ADDR", addr(store_port)),
                    ("POS_USER_ADDR", addr(user_port)),
                    ("POS_TRADE_ADDR", addr(trade_port)),
                    (
                        "POS_RATE_LIMIT_PER_MINUTE",
                        resources.rate_limit_per_minute.to_string(),
                    ),
                ],
            ),
        ];
        for (name, port, own) in roles {
            let mut command = pos_command(&pos);
            command
                .args(["serve", name])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .envs(shared.iter().cloned())
                .envs(own);
            let child = PosChild::spawn(name, command, &self.workdir).await?;
            if name == "edge" {
                self.edge = child.addr;
            }
            self.children.push(child);
        }
        Ok(())
    }

    /// Process ids of the system's processes, by role, for a profiler.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .filter_map(|c| c.pid().map(|pid| (c.name.clone(), pid)))
            .collect()
    }

    /// The roles' processes and, on the mesh, the PostgreSQL backends serving its
    /// database (labelled `postgres`): whose CPU time the run is charged.
    pub async fn processes(&self) -> anyhow::Result<Vec<(String, u32)>> {
        let mut processes = self.pids();
        if let Some(database) = &self.database {
            let mut admin = PgConnection::connect(&database.admin_url).await?;
            let backends: Vec<i32> =
                sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
                    .bind(&database.name)
                    .fetch_all(&mut admin)
                    .await?;
            let _ = admin.close().await;
            processes.extend(
                backends
                    .into_iter()
                    .filter_map(|pid| u32::try_from(pid).ok())
                    .map(|pid| ("postgres".to_string(), pid)),
            );
        }
        Ok(processes)
    }

    /// A role that exited during the run, if any.
    pub fn crashed(&mut self) -> Option<String> {
        self.children
            .iter_mut()
            .find_map(|c| c.exited().then(|| c.name.clone()))
    }

    /// Stops the processes (edge first), drops the database and the Redis keys, and
    /// removes the working directory — unless `keep_logs` (after a failure), when its
    /// path is printed instead.
    pub async fn stop(mut self, keep_logs: bool) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        while let Some(child) = self.children.pop() {
            if let Err(err) = child.stop().await {
                failures.push(format!("{err:#}"));
            }
        }
        if let Some(database) = &self.database
            && let Err(err) = database.drop_it().await
        {
            failures.push(format!("{err:#}"));
        }
        if let Some((url, prefix)) = &self.redis
            && let Err(err) = delete_redis_keys(url, prefix).await
        {
            failures.push(format!("cannot delete Redis keys {prefix}:*: {err:#}"));
        }
        if keep_logs || !failures.is_empty() {
            eprintln!("pos-bench: logs kept in {}", self.workdir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.workdir);
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("tearing down: {}", failures.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_urls_keep_the_server_and_options() {
        let url = |admin| database_url(admin, "x").expect("url");
        assert_eq!(
            url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(url("postgres://h"), "postgres://h/x");
        assert_eq!(
            url("postgresql://u:p@h/db?sslmode=disable"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
    }
}
