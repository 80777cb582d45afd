//! `kubectl pos status`: each role's Deployment (label `app.kubernetes.io/component`)
//! with its desired and ready replicas, the image of its `pos` container and the restarts
//! of the containers of its pods.

use anyhow::{Context as _, Result};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{Api, api::ListParams, core::Selector};

use crate::{cluster::Cluster, error::PluginError, labels, table::Table};

/// One row of the table.
struct RoleStatus {
    role: String,
    deployment: String,
    desired: i32,
    ready: i32,
    restarts: i64,
    image: String,
}

pub async fn run(cluster: &Cluster) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let selector = labels::mesh();
    let found = deployments
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("listing Deployments in namespace `{}`", cluster.namespace))?;
    if found.items.is_empty() {
        return Err(PluginError::NoDeployments {
            namespace: cluster.namespace.clone(),
            selector,
        }
        .into());
    }

    let mut rows = Vec::with_capacity(found.items.len());
    for deployment in &found.items {
        rows.push(role_status(deployment, &pods).await?);
    }
    rows.sort_by(|a, b| (&a.role, &a.deployment).cmp(&(&b.role, &b.deployment)));

    let mut table = Table::new(&[
        "ROLE",
        "DEPLOYMENT",
        "DESIRED",
        "READY",
        "RESTARTS",
        "IMAGE",
    ]);
    for row in rows {
        table.row(vec![
            row.role,
            row.deployment,
            row.desired.to_string(),
            row.ready.to_string(),
            row.restarts.to_string(),
            row.image,
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn role_status(deployment: &Deployment, pods: &Api<Pod>) -> Result<RoleStatus> {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let role = deployment
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(labels::COMPONENT))
        .cloned()
        .unwrap_or_else(|| "-".to_string());
    let spec = deployment.spec.as_ref();
    let desired = spec.and_then(|spec| spec.replicas).unwrap_or(1);
    let ready = deployment
        .status
        .as_ref()
        .and_then(|status| status.ready_replicas)
        .unwrap_or(0);
    let containers = spec
        .and_then(|spec| spec.template.spec.as_ref())
        .map(|pod| pod.containers.as_slice())
        .unwrap_or_default();
    let image = containers
        .iter()
        .find(|container| container.name == "pos")
        .or(containers.first())
        .and_then(|container| container.image.clone())
        .unwrap_or_else(|| "-".to_string());

    let selector = match spec {
        Some(spec) => Selector::try_from(spec.selector.clone())
            .with_context(|| format!("Deployment `{name}` has an invalid spec.selector"))?,
        None => Selector::default(),
    };
    // An empty selector would match every pod of the namespace: count none instead.
    let restarts = if selector.selects_all() {
        0
    } else {
        let matching = pods
            .list(&ListParams::default().labels_from(&selector))
            .await
            .with_context(|| format!("listing the pods of Deployment `{name}`"))?;
        matching
            .items
            .iter()
            .filter_map(|pod| pod.status.as_ref()?.container_statuses.as_ref())
            .flatten()
            .map(|container| i64::from(container.restart_count))
            .sum()
    };

    Ok(RoleStatus {
        role,
        deployment: name,
        desired,
        ready,
        restarts,
        image,
    })
}
