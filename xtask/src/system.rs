//! The system tools the tasks need (PostgreSQL and Redis clients or servers, Python's
//! venv, npm, Chromium, sqlite3, OpenSSL, the Prometheus Pushgateway), installed with apt when they are missing and we can:
//! as root, or through sudo without a password. Otherwise the task stops with the exact
//! command that installs them.

use crate::util::{find_on_path, is_root, run, succeeds};
use anyhow::{Result, bail};
use std::process::Command;

/// One tool: the Debian package that brings it, and how to tell it is there.
pub struct Tool {
    pub package: &'static str,
    /// Whether it is present (beyond being on PATH).
    pub present: fn() -> bool,
}

fn on_path(name: &str) -> bool {
    find_on_path(name).is_some()
}

/// What `cargo xtask test` needs.
pub const TEST_TOOLS: &[Tool] = &[
    Tool {
        package: "postgresql-client",
        present: || on_path("psql"),
    },
    Tool {
        package: "redis-tools",
        present: || on_path("redis-cli"),
    },
    Tool {
        package: "python3-venv",
        present: || succeeds(Command::new("python3").args(["-c", "import ensurepip, venv"])),
    },
    Tool {
        package: "npm",
        present: || on_path("npm") && on_path("node"),
    },
    Tool {
        package: "chromium",
        present: || on_path("chromium") || std::path::Path::new("/usr/bin/chromium").exists(),
    },
    // Reads the signing key `pos up` writes, as an operator's tools would.
    Tool {
        package: "openssl",
        present: || on_path("openssl"),
    },
    // `pos batch` pushes its metrics to a real Pushgateway, started by the test.
    Tool {
        package: "prometheus-pushgateway",
        present: || on_path("prometheus-pushgateway"),
    },
];

/// What `cargo xtask lint` needs beyond cargo (the query data check, and a venv for
/// hadolint).
pub const LINT_TOOLS: &[Tool] = &[
    Tool {
        package: "python3-venv",
        present: || succeeds(Command::new("python3").args(["-c", "import ensurepip, venv"])),
    },
    Tool {
        package: "postgresql-client",
        present: || on_path("psql"),
    },
    Tool {
        package: "sqlite3",
        present: || on_path("sqlite3"),
    },
];

/// Installs the missing ones of `tools`, plus `extra` packages, or says how.
pub fn ensure(tools: &[Tool], extra: &[&'static str]) -> Result<()> {
    let mut missing: Vec<&str> = tools
        .iter()
        .filter(|tool| !(tool.present)())
        .map(|tool| tool.package)
        .collect();
    missing.extend_from_slice(extra);
    missing.dedup();
    if missing.is_empty() {
        println!("xtask: system tools present");
        return Ok(());
    }
    let line = format!("apt-get install -y {}", missing.join(" "));
    let sudo = if is_root() {
        None
    } else if on_path("sudo") && succeeds(Command::new("sudo").args(["-n", "true"])) {
        Some("sudo")
    } else {
        bail!("missing system packages; install them with: sudo {line}");
    };
    if !on_path("apt-get") {
        bail!(
            "missing system packages ({}) and no apt-get to install them",
            missing.join(", ")
        );
    }
    println!("xtask: installing {}", missing.join(" "));
    let apt = |args: &[&str]| {
        let mut command = match sudo {
            Some(sudo) => {
                let mut c = Command::new(sudo);
                c.arg("apt-get");
                c
            }
            None => Command::new("apt-get"),
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    run(&mut apt(&["update", "-qq"]))?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(&missing);
    run(&mut install).map_err(|e| anyhow::anyhow!("{e:#}; the command was: {line}"))
}
