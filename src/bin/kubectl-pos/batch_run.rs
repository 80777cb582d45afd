//! `kubectl pos batch run`: find the one batch CronJob for a job and term, refuse while a
//! Job of it is still running (a manual Job escapes its `concurrencyPolicy: Forbid`),
//! create a Job from it as `kubectl create job --from` does, and with `--wait` follow
//! that Job to its end.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::{
    Api,
    api::{ListParams, PostParams},
};

use crate::{
    cli::RunArgs,
    cluster::Cluster,
    error::PluginError,
    jobs, labels, manual_job,
    wait::{self, Outcome},
};

pub async fn run(cluster: &Cluster, args: &RunArgs) -> Result<ExitCode> {
    let cronjob = find_cronjob(cluster, args).await?;
    let cronjob_name = cronjob.metadata.name.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(cluster.client.clone(), &cluster.namespace);

    if let Some(running) = active_job(&jobs_api, &cronjob).await? {
        if args.force {
            eprintln!(
                "warning: Job `{running}` of CronJob `{cronjob_name}` is still running; starting another (--force)"
            );
        } else {
            return Err(PluginError::JobActive {
                cronjob: cronjob_name,
                job: running,
            }
            .into());
        }
    }

    let job = manual_job::from_cronjob(&cronjob, &manual_job::random_suffix(), args.date)?;
    let created = jobs_api
        .create(&PostParams::default(), &job)
        .await
        .with_context(|| {
            format!(
                "creating Job `{}` from CronJob `{cronjob_name}` in namespace `{}`",
                jobs::name(&job),
                cluster.namespace
            )
        })?;
    let name = jobs::name(&created).to_string();
    println!("job.batch/{name} created");

    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    match wait::until_finished(&jobs_api, &name, args.poll_interval()).await? {
        Outcome::Complete { duration } => {
            println!("job.batch/{name} Complete after {duration}");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Failed { duration, reason } => {
            println!("job.batch/{name} Failed after {duration}{reason}");
            Ok(ExitCode::from(crate::error::EXIT_FAILURE))
        }
    }
}

/// The single CronJob the selector finds; none or several are errors that say why.
async fn find_cronjob(cluster: &Cluster, args: &RunArgs) -> Result<CronJob> {
    let selector = labels::cronjob(
        &args.job.to_string(),
        &args.term.to_string(),
        args.instance.as_deref(),
    );
    let api: Api<CronJob> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut found = api
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("listing CronJobs in namespace `{}`", cluster.namespace))?
        .items;
    match found.len() {
        0 => Err(PluginError::NoCronJob {
            namespace: cluster.namespace.clone(),
            selector,
        }
        .into()),
        1 => Ok(found.remove(0)),
        count => {
            let mut listing: Vec<String> = found
                .iter()
                .map(|cronjob| {
                    let name = cronjob.metadata.name.as_deref().unwrap_or("<unnamed>");
                    let instance = cronjob
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|labels| labels.get(labels::INSTANCE))
                        .map_or(String::new(), |release| format!(" (instance {release})"));
                    format!("{name}{instance}")
                })
                .collect();
            listing.sort();
            Err(PluginError::AmbiguousCronJob {
                namespace: cluster.namespace.clone(),
                selector,
                count,
                listing: listing.join(", "),
            }
            .into())
        }
    }
}

/// The name of a Job of `cronjob` that has not finished: one it owns (by uid) or lists in
/// `status.active`, that still exists and has no `Complete` or `Failed` condition.
async fn active_job(api: &Api<Job>, cronjob: &CronJob) -> Result<Option<String>> {
    let uid = cronjob.metadata.uid.as_deref().unwrap_or_default();
    let listed_active: Vec<&str> = cronjob
        .status
        .as_ref()
        .and_then(|status| status.active.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|reference| reference.name.as_deref())
        .collect();
    let all = api
        .list(&ListParams::default())
        .await
        .context("listing Jobs to see whether one is still running")?;
    let mut running: Vec<&Job> =
        all.items
            .iter()
            .filter(|job| {
                let owned =
                    job.metadata.owner_references.iter().flatten().any(|owner| {
                        owner.kind == "CronJob" && !uid.is_empty() && owner.uid == uid
                    });
                (owned || listed_active.contains(&jobs::name(job)))
                    && jobs::state(job) == jobs::JobState::Running
            })
            .collect();
    running.sort_by_key(|job| std::cmp::Reverse(jobs::started(job)));
    Ok(running.first().map(|job| jobs::name(job).to_string()))
}
