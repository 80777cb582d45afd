//! `kubectl pos batch list`: the mesh's recent batch Jobs, newest first, with the job and
//! term from their labels, whether they run, completed or failed, when they started, how
//! long they took and whether they were started by hand.

use anyhow::{Context as _, Result};
use chrono::Utc;
use k8s_openapi::api::batch::v1::Job;
use kube::{Api, api::ListParams};

use crate::{cli::ListArgs, cluster::Cluster, jobs, labels, table::Table};

pub async fn run(cluster: &Cluster, args: &ListArgs) -> Result<()> {
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let selector = labels::batch();
    let mut found = api
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("listing batch Jobs in namespace `{}`", cluster.namespace))?
        .items;
    if found.is_empty() {
        println!(
            "No batch Jobs in namespace `{}` (label selector `{selector}`).",
            cluster.namespace
        );
        return Ok(());
    }
    // Newest first; among Jobs that started together, by name.
    found.sort_by(|a, b| {
        jobs::started(b)
            .cmp(&jobs::started(a))
            .then_with(|| jobs::name(a).cmp(jobs::name(b)))
    });

    let now = Utc::now();
    let mut table = Table::new(&[
        "NAME", "JOB", "TERM", "STATUS", "STARTED", "DURATION", "MANUAL",
    ]);
    for job in found.iter().take(args.limit) {
        let label = |key: &str| {
            job.metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(key))
                .cloned()
                .unwrap_or_else(|| "-".to_string())
        };
        table.row(vec![
            jobs::name(job).to_string(),
            label(labels::JOB),
            label(labels::TERM),
            jobs::state(job).as_str().to_string(),
            jobs::started(job).map_or_else(|| "-".to_string(), jobs::format_time),
            jobs::duration(job, now).map_or_else(|| "-".to_string(), jobs::format_duration),
            if jobs::is_manual(job) { "yes" } else { "no" }.to_string(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}
