//! `kubectl pos` against what the Helm chart really renders (not hand-written fixtures):
//! it finds the chart's Deployments by their labels and container name, and makes a
//! manual Job from the chart's own CronJob, so a label or name changed on one side fails
//! here.

use serde_json::{Value, json};

use super::{Kubeconfig, batch_run::posted_job, fake_api::FakeApi, run};
use crate::chart::{Case, NAMESPACE, kind, name, render};

/// The chart's Deployments and CronJobs with what the API server would add: a uid, the
/// replicas an HPA set, and a status.
fn deployed() -> Vec<Value> {
    let default = Case {
        name: "default".into(),
        values: None,
    };
    let objects = render(&default, "1.30.0", &[]);
    let mut deployed = Vec::new();
    for object in kind(&objects, "Deployment")
        .into_iter()
        .chain(kind(&objects, "CronJob"))
    {
        let mut object = object.clone();
        object["metadata"]["uid"] = json!(format!("uid-{}", name(&object)));
        if object["kind"] == "Deployment" {
            if object["spec"]["replicas"].is_null() {
                object["spec"]["replicas"] = json!(2);
            }
            let replicas = object["spec"]["replicas"].clone();
            object["status"] = json!({"replicas": replicas, "readyReplicas": replicas});
        } else {
            object["status"] = json!({});
        }
        deployed.push(object);
    }
    deployed
}

#[tokio::test]
async fn kubectl_pos_finds_what_the_chart_deploys() {
    let api = FakeApi::start(deployed()).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let out = run(kubeconfig.command(), &["status", "--namespace", NAMESPACE]).await;
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let roles: Vec<(String, String)> = out
        .stdout
        .lines()
        .skip(1)
        .map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            (columns[0].to_string(), columns[1].to_string())
        })
        .collect();
    let expected: Vec<(String, String)> = ["edge", "settlement", "store", "trade", "user"]
        .iter()
        .map(|role| (role.to_string(), format!("pos-mesh-{role}")))
        .collect();
    assert_eq!(roles, expected, "{}", out.stdout);
    assert!(
        out.stdout.contains("ghcr.io/pos-mesh/pos:0.1.0"),
        "the pos container's image: {}",
        out.stdout
    );

    let out = run(
        kubeconfig.command(),
        &[
            "batch",
            "run",
            "--job",
            "product-sales",
            "--term",
            "month",
            "--date",
            "2026-11-01",
            "--namespace",
            NAMESPACE,
        ],
    )
    .await;
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let (job, _) = posted_job(&api, "pos-mesh-product-sales-month");
    let cronjob = deployed()
        .into_iter()
        .find(|o| name(o) == "pos-mesh-product-sales-month")
        .expect("the chart's CronJob");
    let mut spec = cronjob["spec"]["jobTemplate"]["spec"].clone();
    spec["template"]["spec"]["containers"][0]["args"] = json!([
        "batch",
        "run",
        "--job",
        "product-sales",
        "--term",
        "month",
        "--date",
        "2026-11-01"
    ]);
    assert_eq!(job["spec"], spec);
    assert_eq!(
        job["metadata"]["labels"],
        cronjob["spec"]["jobTemplate"]["metadata"]["labels"]
    );
    assert!(
        api.requests()
            .iter()
            .all(|r| r.path.contains(&format!("/namespaces/{NAMESPACE}/"))),
        "every request went to {NAMESPACE}"
    );
}
