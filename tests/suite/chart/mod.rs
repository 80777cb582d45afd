//! The Helm chart, rendered by the real Helm (`POS_HELM`, which `cargo xtask test`
//! installs from npm) with its defaults and every example values file, at the oldest and
//! newest Kubernetes it supports; the objects it renders are checked as an operator's
//! policy would check them. Schema validation and checkov run in `cargo xtask test`.

mod policy;
mod schedule;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The oldest (the chart's `kubeVersion`) and newest Kubernetes the chart is rendered for.
pub const KUBE_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];
pub const RELEASE: &str = "pos-mesh";
pub const NAMESPACE: &str = "pos-mesh";

pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/pos-mesh")
}

/// Helm: `POS_HELM`, else where `cargo xtask setup` installs it, else on PATH.
pub fn helm() -> PathBuf {
    if let Some(path) = std::env::var_os("POS_HELM") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("POS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/pos-mesh")));
    if let Some(installed) = cache.map(|dir| dir.join("helm/node_modules/.bin/helm"))
        && installed.exists()
    {
        return installed;
    }
    PathBuf::from("helm")
}

/// A values file of the chart's examples, or the defaults.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub values: Option<PathBuf>,
}

/// The defaults and every `examples/*.yaml`.
pub fn cases() -> Vec<Case> {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("examples"))
        .expect("the chart's examples")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    examples.sort();
    let mut cases = vec![Case {
        name: "default".into(),
        values: None,
    }];
    cases.extend(examples.into_iter().map(|path| {
        Case {
            name: path
                .file_stem()
                .expect("a name")
                .to_string_lossy()
                .into_owned(),
            values: Some(path),
        }
    }));
    assert!(
        cases.iter().any(|case| case.name == "minimal")
            && cases.iter().any(|case| case.name == "production"),
        "the chart has a minimal and a production example"
    );
    cases
}

/// `helm template` of one case at one Kubernetes version, hooks and tests included.
pub fn render(case: &Case, kube_version: &str, set: &[&str]) -> Vec<Value> {
    let mut command = std::process::Command::new(helm());
    command.args(["template", RELEASE]).arg(chart_dir()).args([
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version,
    ]);
    if let Some(values) = &case.values {
        command.arg("--values").arg(values);
    }
    for value in set {
        command.args(["--set", value]);
    }
    let output = command.output().unwrap_or_else(|err| {
        panic!(
            "cannot run helm ({}): {err}; run `cargo xtask setup` or set POS_HELM",
            helm().display()
        )
    });
    assert!(
        output.status.success(),
        "helm template {} at {kube_version}: {}",
        case.name,
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// The objects of a multi-document YAML stream.
pub fn parse(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("a YAML document"))
        .filter(|object| !object.is_null())
        .collect()
}

use serde::Deserialize;

/// Every case at every version, rendered once per test that asks.
pub fn every_rendering() -> Vec<(String, Vec<Value>)> {
    let mut all = Vec::new();
    for case in cases() {
        for version in KUBE_VERSIONS {
            all.push((
                format!("{} at {version}", case.name),
                render(&case, version, &[]),
            ));
        }
    }
    all
}

pub fn kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// A workload's pod template (Deployment, Job, CronJob) or the Pod itself.
pub fn pod_template(object: &Value) -> Option<&Value> {
    match object["kind"].as_str()? {
        "Deployment" | "Job" => Some(&object["spec"]["template"]),
        "CronJob" => Some(&object["spec"]["jobTemplate"]["spec"]["template"]),
        "Pod" => Some(object),
        _ => None,
    }
}

/// Each object with a pod, its pod template.
pub fn pods(objects: &[Value]) -> Vec<(&Value, &Value)> {
    objects
        .iter()
        .filter_map(|o| pod_template(o).map(|pod| (o, pod)))
        .collect()
}

/// The pod's containers (init containers included).
pub fn containers(pod: &Value) -> Vec<&Value> {
    let spec = &pod["spec"];
    ["initContainers", "containers"]
        .iter()
        .filter_map(|key| spec[key].as_array())
        .flatten()
        .collect()
}

/// Whether `labels` carries every one of `selector`'s.
pub fn matches(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|wanted| !wanted.is_empty() && wanted.iter().all(|(k, v)| &labels[k] == v))
}
