//! The Job `kubectl create job --from=cronjob/NAME` would make from a CronJob: the job
//! template's labels, annotations and spec, `cronjob.kubernetes.io/instantiate: manual`,
//! and the CronJob as controlling owner; here also a generated name and, if asked, the
//! day for the `batch` container.

use anyhow::{Context as _, Result};
use chrono::NaiveDate;
use k8s_openapi::{
    api::batch::v1::{CronJob, Job},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use rand::Rng as _;

use crate::{error::PluginError, labels};

/// Kubernetes' limit on a Job's name (a label value carries it).
const MAX_NAME: usize = 63;
const MANUAL_INFIX: &str = "-manual-";
const SUFFIX_LEN: usize = 5;
/// The characters Kubernetes' `generateName` suffixes use: no vowels, no look-alikes.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random suffix for a Job's name, as `generateName` would pick.
pub fn random_suffix() -> String {
    let mut rng = rand::thread_rng();
    (0..SUFFIX_LEN)
        .map(|_| char::from(SUFFIX_ALPHABET[rng.gen_range(0..SUFFIX_ALPHABET.len())]))
        .collect()
}

/// `<cronjob>-manual-<suffix>`, the CronJob's name shortened so the whole fits 63
/// characters (and still ends in a letter or digit before the infix).
pub fn job_name(cronjob: &str, suffix: &str) -> String {
    let room = MAX_NAME.saturating_sub(MANUAL_INFIX.len() + suffix.len());
    let base: String = cronjob.chars().take(room).collect();
    let base = base.trim_end_matches(['-', '.']);
    format!("{base}{MANUAL_INFIX}{suffix}")
}

/// The Job to create from `cronjob`; with `date`, `--date <date>` is appended to the
/// arguments of its container named `batch` (an error if there is none).
pub fn from_cronjob(cronjob: &CronJob, suffix: &str, date: Option<NaiveDate>) -> Result<Job> {
    let cronjob_name = cronjob
        .metadata
        .name
        .clone()
        .context("the CronJob has no name")?;
    let uid = cronjob
        .metadata
        .uid
        .clone()
        .with_context(|| format!("CronJob `{cronjob_name}` has no uid"))?;
    let template = cronjob.spec.as_ref().map(|spec| &spec.job_template);
    let mut spec = template
        .and_then(|template| template.spec.clone())
        .ok_or_else(|| PluginError::NoJobTemplate {
            cronjob: cronjob_name.clone(),
        })?;
    let template_meta = template.and_then(|template| template.metadata.as_ref());

    // kubectl: the template's annotations over `instantiate: manual`.
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert(labels::INSTANTIATE.to_string(), labels::MANUAL.to_string());
    if let Some(template_annotations) = template_meta.and_then(|meta| meta.annotations.clone()) {
        annotations.extend(template_annotations);
    }

    if let Some(date) = date {
        let batch = spec
            .template
            .spec
            .as_mut()
            .and_then(|pod| {
                pod.containers
                    .iter_mut()
                    .find(|container| container.name == labels::BATCH)
            })
            .ok_or_else(|| PluginError::NoBatchContainer {
                cronjob: cronjob_name.clone(),
            })?;
        batch
            .args
            .get_or_insert_with(Vec::new)
            .extend(["--date".to_string(), date.format("%Y-%m-%d").to_string()]);
    }

    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(&cronjob_name, suffix)),
            labels: template_meta.and_then(|meta| meta.labels.clone()),
            annotations: Some(annotations),
            // As kubectl: controller but not blockOwnerDeletion, which would need
            // permission on cronjobs/finalizers.
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".to_string(),
                kind: "CronJob".to_string(),
                name: cronjob_name,
                uid,
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_job_name_fits_63_characters() {
        assert_eq!(
            job_name("pos-settlement-day", "b2c4d"),
            "pos-settlement-day-manual-b2c4d"
        );
        let long = format!("{}-x", "a".repeat(49));
        let name = job_name(&long, "b2c4d");
        assert_eq!(name.len(), 62);
        assert_eq!(name, format!("{}-manual-b2c4d", "a".repeat(49)));
        let longer = "p".repeat(80);
        assert_eq!(job_name(&longer, "b2c4d").len(), MAX_NAME);
    }

    #[test]
    fn kubectl_suffix_uses_generate_name_alphabet() {
        let suffix = random_suffix();
        assert_eq!(suffix.len(), SUFFIX_LEN);
        assert!(suffix.bytes().all(|byte| SUFFIX_ALPHABET.contains(&byte)));
    }
}
