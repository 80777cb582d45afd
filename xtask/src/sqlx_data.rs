//! `cargo xtask sqlx-prepare [--check]`: the offline query data of the storage crates.
//!
//! Each storage crate checks its SQL at compile time with `sqlx::query!` against the
//! data in its `.sqlx/` folder (committed, so building needs no database). This task
//! makes that data anew: for each crate it creates a scratch database of the crate's
//! engine, applies the crate's migrations, and compiles the crate against it with
//! `SQLX_OFFLINE_DIR` pointing where the data goes. `--check` writes to a scratch folder
//! instead and fails if the committed data differs (a query or schema changed without
//! the data being refreshed).

use crate::services::Postgres;
use crate::util::{cargo, find_on_path, run, workspace_root};
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every storage crate with checked queries: its package and its engine.
const CRATES: [(&str, &str, Engine); 9] = [
    (
        "pos-store-postgres",
        "services/store/postgres",
        Engine::Postgres,
    ),
    ("pos-store-sqlite", "services/store/sqlite", Engine::Sqlite),
    (
        "pos-user-postgres",
        "services/user/postgres",
        Engine::Postgres,
    ),
    ("pos-user-sqlite", "services/user/sqlite", Engine::Sqlite),
    (
        "pos-trade-postgres",
        "services/trade/postgres",
        Engine::Postgres,
    ),
    ("pos-trade-sqlite", "services/trade/sqlite", Engine::Sqlite),
    (
        "pos-settlement-postgres",
        "services/settlement/postgres",
        Engine::Postgres,
    ),
    (
        "pos-settlement-sqlite",
        "services/settlement/sqlite",
        Engine::Sqlite,
    ),
    (
        "pos-deny-list-sqlite",
        "services/common/deny-list-sqlite",
        Engine::Sqlite,
    ),
];

#[derive(Clone, Copy)]
enum Engine {
    Postgres,
    Sqlite,
}

pub fn prepare(check: bool) -> Result<()> {
    let pg = Postgres::resolve()?;
    let mut stale = Vec::new();
    for (package, dir, engine) in CRATES {
        let crate_dir = workspace_root().join(dir);
        let scratch =
            std::env::temp_dir().join(format!("pos-sqlx-{}-{package}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch)?;
        // Written beside, then swapped in: a failed build leaves the committed data alone.
        let out = scratch.join("data");
        fs::create_dir_all(&out)?;
        let url = match engine {
            Engine::Postgres => scratch_postgres(&pg, package, &crate_dir)?,
            Engine::Sqlite => scratch_sqlite(&scratch, &crate_dir)?,
        };
        let compiled = compile_against(package, &url.0, &out);
        if let Engine::Postgres = engine {
            drop_postgres(&pg, &url.1);
        }
        compiled?;
        let committed = crate_dir.join(".sqlx");
        if check {
            if differs(&committed, &out)? {
                stale.push(dir);
            }
        } else {
            let _ = fs::remove_dir_all(&committed);
            copy_dir(&out, &committed)?;
        }
        let _ = fs::remove_dir_all(&scratch);
        println!("xtask: query data of {package}: ok");
    }
    if !stale.is_empty() {
        bail!(
            "the committed query data is stale in: {}; run `cargo xtask sqlx-prepare`",
            stale.join(", ")
        );
    }
    Ok(())
}

/// The migration files of a crate, in order.
fn migrations(crate_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(crate_dir.join("migrations"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    Ok(files)
}

/// A scratch database with the crate's migrations: (its URL, its name).
fn scratch_postgres(pg: &Postgres, package: &str, crate_dir: &Path) -> Result<(String, String)> {
    let name = format!(
        "pos_sqlx_{}_{}",
        package.replace('-', "_"),
        std::process::id()
    );
    drop_postgres(pg, &name);
    psql(&pg.url, &["-c", &format!("CREATE DATABASE \"{name}\"")])?;
    let url = pg.database_url(&name);
    for file in migrations(crate_dir)? {
        psql(&url, &["-f", &file.display().to_string()])?;
    }
    Ok((url, name))
}

fn drop_postgres(pg: &Postgres, name: &str) {
    let _ = psql(
        &pg.url,
        &[
            "-c",
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        ],
    );
}

fn psql(url: &str, args: &[&str]) -> Result<()> {
    let status = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url])
        .args(args)
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .stdout(Stdio::null())
        .status()
        .context("cannot run psql")?;
    if !status.success() {
        bail!("psql {args:?} failed");
    }
    Ok(())
}

fn scratch_sqlite(scratch: &Path, crate_dir: &Path) -> Result<(String, String)> {
    let sqlite3 = find_on_path("sqlite3")
        .context("`sqlite3` not found; install it with: apt-get install -y sqlite3")?;
    let file = scratch.join("scratch.db");
    for migration in migrations(crate_dir)? {
        let sql = fs::read(&migration)?;
        let mut child = Command::new(&sqlite3)
            .arg(&file)
            .stdin(Stdio::piped())
            .spawn()
            .context("cannot run sqlite3")?;
        std::io::Write::write_all(child.stdin.as_mut().context("stdin")?, &sql)?;
        if !child.wait()?.success() {
            bail!("sqlite3 failed on {}", migration.display());
        }
    }
    Ok((format!("sqlite://{}", file.display()), String::new()))
}

/// A target dir of its own, so recompiling the storage crates against live databases
/// leaves the main build alone.
fn target_dir() -> PathBuf {
    let main = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    main.join("sqlx-prepare")
}

/// Compiles `package` against the live database at `url`, writing its query data to `out`.
fn compile_against(package: &str, url: &str, out: &Path) -> Result<()> {
    let target = target_dir();
    // The macros only run when the crate is compiled again.
    run(cargo()
        .args(["clean", "--quiet", "-p", package, "--target-dir"])
        .arg(&target))?;
    run(cargo()
        .args(["check", "--quiet", "-p", package, "--target-dir"])
        .arg(&target)
        .env("SQLX_OFFLINE", "false")
        .env("DATABASE_URL", url)
        .env("SQLX_OFFLINE_DIR", out))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            fs::copy(&path, to.join(name))?;
        }
    }
    Ok(())
}

/// Whether two folders of query data differ (file names or contents).
fn differs(committed: &Path, fresh: &Path) -> Result<bool> {
    let list = |dir: &Path| -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = Vec::new();
        if dir.exists() {
            for entry in fs::read_dir(dir)? {
                let path = entry?.path();
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                files.push((name.unwrap_or_default(), fs::read(&path)?));
            }
        }
        files.sort();
        Ok(files)
    };
    Ok(list(committed)? != list(fresh)?)
}
