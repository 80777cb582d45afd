//! `--wait`: poll the created Job until it has a `Complete` or `Failed` condition. A poll
//! rather than a watch: one GET every interval survives API server restarts and proxies
//! that cut long requests, and a batch run lasts minutes, so seconds of latency are
//! nothing.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use chrono::{TimeDelta, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;

use crate::jobs::{self, JobState};

/// How a followed Job ended; `duration` as printed, `reason` empty or `: <why>`.
pub enum Outcome {
    Complete { duration: String },
    Failed { duration: String, reason: String },
}

/// Transient errors in a row before `--wait` gives up.
const MAX_ERRORS: u32 = 5;

pub async fn until_finished(api: &Api<Job>, name: &str, interval: Duration) -> Result<Outcome> {
    let watched_from = Instant::now();
    let mut errors = 0;
    loop {
        match api.get(name).await {
            Ok(job) => {
                errors = 0;
                if let Some((state, condition)) = jobs::finished_condition(&job) {
                    // The Job's own times when it has them, else how long we watched.
                    let took = jobs::duration(&job, Utc::now()).unwrap_or_else(|| {
                        TimeDelta::from_std(watched_from.elapsed()).unwrap_or_default()
                    });
                    let duration = jobs::format_duration(took);
                    return Ok(match state {
                        JobState::Failed => {
                            let why = condition
                                .message
                                .as_deref()
                                .or(condition.reason.as_deref())
                                .map_or(String::new(), |why| format!(": {why}"));
                            Outcome::Failed {
                                duration,
                                reason: why,
                            }
                        }
                        _ => Outcome::Complete { duration },
                    });
                }
            }
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                anyhow::bail!("Job `{name}` was deleted before it finished");
            }
            // Denied or invalid: asking again will not help.
            Err(kube::Error::Api(status)) if status.code < 500 => {
                return Err(kube::Error::Api(status))
                    .with_context(|| format!("following Job `{name}`"));
            }
            Err(error) => {
                errors += 1;
                if errors >= MAX_ERRORS {
                    return Err(error).with_context(|| format!("following Job `{name}`"));
                }
                eprintln!("warning: reading Job `{name}`: {error}; retrying");
            }
        }
        tokio::time::sleep(interval).await;
    }
}
