//! Canned objects as the pos-mesh chart makes them: the roles' Deployments and their
//! Pods, the batch CronJobs and their Jobs, each in a given namespace.

use serde_json::{Value, json};

/// The Deployment of `role` in release `pos`, its pods selected by `app.kubernetes.io/name`.
pub fn deployment(namespace: &str, role: &str, desired: i32, ready: i32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": format!("pos-{role}"),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/part-of": "pos-mesh",
                "app.kubernetes.io/component": role,
                "app.kubernetes.io/instance": "pos",
            },
        },
        "spec": {
            "replicas": desired,
            "selector": {"matchLabels": {
                "app.kubernetes.io/instance": "pos",
                "app.kubernetes.io/name": format!("pos-{role}"),
            }},
            "template": {
                "metadata": {"labels": {
                    "app.kubernetes.io/instance": "pos",
                    "app.kubernetes.io/name": format!("pos-{role}"),
                }},
                "spec": {"containers": [
                    {"name": "pos", "image": image, "args": ["serve", role]},
                ]},
            },
        },
        "status": {"replicas": desired, "readyReplicas": ready},
    })
}

/// A pod of `role`'s Deployment whose containers restarted `restarts` times each.
pub fn pod(namespace: &str, role: &str, name: &str, restarts: &[i32]) -> Value {
    let statuses: Vec<Value> = restarts
        .iter()
        .enumerate()
        .map(|(index, count)| {
            json!({"name": format!("c{index}"), "image": "x", "imageID": "", "ready": true, "restartCount": count})
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/instance": "pos",
                "app.kubernetes.io/name": format!("pos-{role}"),
            },
        },
        "status": {"containerStatuses": statuses},
    })
}

/// The labels of the batch CronJob of `job` and `term` in `release` (and of its Jobs).
pub fn batch_labels(release: &str, job: &str, term: &str) -> Value {
    json!({
        "app.kubernetes.io/part-of": "pos-mesh",
        "app.kubernetes.io/component": "batch",
        "app.kubernetes.io/instance": release,
        "pos-mesh.io/job": job,
        "pos-mesh.io/term": term,
    })
}

/// The job template of the chart's CronJob: a `batch` container and a sidecar, both
/// with arguments, so only the first may get `--date`.
pub fn job_template_spec(job: &str, term: &str) -> Value {
    json!({
        "backoffLimit": 2,
        "activeDeadlineSeconds": 3600,
        "ttlSecondsAfterFinished": 86400,
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/component": "batch"}},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": "pos-batch",
                "containers": [
                    {
                        "name": "batch",
                        "image": "registry.example/pos:1.4.0",
                        "args": ["batch", "run", "--job", job, "--term", term],
                        "env": [{"name": "POS_STORE_URL", "value": "http://pos-store:8080"}],
                    },
                    {
                        "name": "metrics-relay",
                        "image": "registry.example/relay:2",
                        "args": ["--listen", ":9091"],
                    },
                ],
            },
        },
    })
}

/// The CronJob `name` of release `release`, uid `uid-<name>`, with `active` listed in
/// its status.
pub fn cronjob(namespace: &str, release: &str, job: &str, term: &str, active: &[&str]) -> Value {
    let name = format!("{release}-{job}-{term}");
    let active: Vec<Value> = active
        .iter()
        .map(|job| json!({"apiVersion": "batch/v1", "kind": "Job", "name": job, "namespace": namespace}))
        .collect();
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-{name}"),
            "labels": batch_labels(release, job, term),
        },
        "spec": {
            "schedule": "10 0 * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "metadata": {
                    "labels": batch_labels(release, job, term),
                    "annotations": {"pos-mesh.io/owner": "settlement-team"},
                },
                "spec": job_template_spec(job, term),
            },
        },
        "status": {"active": active},
    })
}

/// A Job of the CronJob `owner` (uid `uid-<owner>`), started at `started`; `finished` is
/// `Some(("Complete" | "Failed", at))` once it ended.
pub fn job(
    namespace: &str,
    name: &str,
    owner: &str,
    labels: Value,
    manual: bool,
    started: &str,
    finished: Option<(&str, &str)>,
) -> Value {
    let mut status = json!({"startTime": started});
    if let Some((condition, at)) = finished {
        status["conditions"] =
            json!([{"type": condition, "status": "True", "lastTransitionTime": at}]);
        if condition == "Complete" {
            status["completionTime"] = json!(at);
        }
    } else {
        status["active"] = json!(1);
    }
    let annotations = if manual {
        json!({"cronjob.kubernetes.io/instantiate": "manual"})
    } else {
        json!({})
    };
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-{name}"),
            "labels": labels,
            "annotations": annotations,
            "creationTimestamp": started,
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "CronJob", "name": owner,
                "uid": format!("uid-{owner}"), "controller": true,
            }],
        },
        "spec": job_template_spec("settlement", "day"),
        "status": status,
    })
}
