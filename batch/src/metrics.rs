//! Batch metrics pushed to a Prometheus Pushgateway (`POS_PUSHGATEWAY_URL`): a batch pod
//! lives too briefly to be scraped. Each push goes to the group of its job and term (and
//! shard, when sharded), so Prometheus sees one series per CronJob:
//!
//! - `pos_batch_runs_total`, `pos_batch_successes_total`, `pos_batch_failures_total`:
//!   windows run, counted across pushes — the group's previous values are read back from
//!   the Pushgateway's API and added to, since each pod starts from zero;
//! - `pos_batch_last_duration_seconds`, `pos_batch_last_rows_read`,
//!   `pos_batch_last_rows_written`: the latest invocation;
//! - `pos_batch_last_success_timestamp_seconds`: pushed only when every window succeeded,
//!   and pushed with POST, which keeps the group's other metrics, so a failed run leaves
//!   the last success where it was (alert on its age).
//!
//! A backfill pushes to a group of its own (`command="backfill"`), and so does a run of
//! one store (`store=ID`). A group has one writer at a time (a CronJob forbids concurrent
//! runs; shards have groups of their own): two pushes to one group at once could each add
//! to the same previous counts.
//!
//! The text format is written here: seven samples need no registry. A push that fails is
//! logged and never fails the run.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use pos_settlement_storage::RunScope;

use crate::{Job, Term, driver::Outcome, driver::PlanError};

/// Longest a push (with its read-back) may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0:?} is not an http:// URL of a Pushgateway")]
    Url(String),
    #[error("the Pushgateway could not be reached")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the Pushgateway answered {0}: {1}")]
    Refused(http::StatusCode, String),
    #[error("the Pushgateway did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where metrics go.
#[derive(Clone)]
pub struct Pushgateway {
    base: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// Which group an invocation is pushed to, beside its job and term: the scheduled run's
/// (the CronJob's), or a backfill's own, so a backfill's success never hides a failing
/// CronJob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Scheduled,
    Backfill,
}

/// What one invocation did, summed over its windows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub runs: u64,
    pub successes: u64,
    pub failures: u64,
    pub rows_read: u64,
    pub rows_written: u64,
    pub seconds: f64,
}

impl Tally {
    /// The windows an invocation ran; nothing run at all (the plan failed) is one failure.
    pub fn of(outcomes: &Result<Vec<Outcome>, PlanError>, took: Duration) -> Self {
        let mut tally = Tally {
            seconds: took.as_secs_f64(),
            ..Tally::default()
        };
        match outcomes {
            Ok(outcomes) => {
                for outcome in outcomes {
                    tally.runs += 1;
                    match &outcome.result {
                        Ok(report) => {
                            tally.successes += 1;
                            tally.rows_read += report.rows_read;
                            tally.rows_written += report.rows_written;
                        }
                        Err(_) => tally.failures += 1,
                    }
                }
            }
            Err(_) => {
                tally.runs = 1;
                tally.failures = 1;
            }
        }
        tally
    }
}

/// The counters a group already has on the Pushgateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counted {
    runs: u64,
    successes: u64,
    failures: u64,
}

impl Pushgateway {
    pub fn new(url: &str) -> Result<Self, PushError> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            return Err(PushError::Url(url.to_string()));
        }
        Ok(Self {
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Pushes what an invocation did; a failure is logged, not returned.
    pub async fn push(
        &self,
        job: Job,
        term: Term,
        scope: RunScope,
        group: Group,
        outcomes: &Result<Vec<Outcome>, PlanError>,
        took: Duration,
    ) {
        let tally = Tally::of(outcomes, took);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if let Err(err) = self.push_tally(job, term, scope, group, tally, now).await {
            tracing::warn!(error = %crate::driver::describe(&err), "could not push batch metrics");
        }
    }

    /// Adds `tally` to the group's counters and pushes it, `now` being the time of a
    /// success.
    pub async fn push_tally(
        &self,
        job: Job,
        term: Term,
        scope: RunScope,
        group: Group,
        tally: Tally,
        now: Duration,
    ) -> Result<(), PushError> {
        let labels = group_labels(job, term, scope, group);
        let work = async {
            let before = self.counted(&labels).await?;
            let body = exposition(before, tally, now);
            self.send(http::Method::POST, &group_path(&labels), Bytes::from(body))
                .await
                .map(drop)
        };
        tokio::time::timeout(PUSH_TIMEOUT, work)
            .await
            .map_err(|_| PushError::Timeout(PUSH_TIMEOUT))?
    }

    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Bytes,
    ) -> Result<Bytes, PushError> {
        let uri: http::Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|_| PushError::Url(self.base.clone()))?;
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Full::new(body))
            .map_err(|err| PushError::Http(Box::new(err)))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| PushError::Http(Box::new(err)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| PushError::Http(Box::new(err)))?
            .to_bytes();
        if status.is_success() {
            Ok(body)
        } else {
            Err(PushError::Refused(
                status,
                String::from_utf8_lossy(&body).chars().take(200).collect(),
            ))
        }
    }

    /// The group's counters as the Pushgateway holds them (zero for a new group).
    async fn counted(&self, labels: &[(&'static str, String)]) -> Result<Counted, PushError> {
        let body = self
            .send(http::Method::GET, "/api/v1/metrics", Bytes::new())
            .await?;
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|err| PushError::Http(Box::new(err)))?;
        let Some(group) = answer["data"].as_array().and_then(|groups| {
            groups.iter().find(|group| {
                labels
                    .iter()
                    .all(|(name, value)| group["labels"][*name].as_str() == Some(value.as_str()))
                    && group["labels"].as_object().is_some_and(|all| {
                        // Other labels of the group, if any, are empty (instance="").
                        all.values()
                            .filter(|value| value.as_str() != Some(""))
                            .count()
                            == labels.len()
                    })
            })
        }) else {
            return Ok(Counted::default());
        };
        let read = |name: &str| -> u64 {
            group[name]["metrics"][0]["value"]
                .as_str()
                .and_then(|value| value.parse::<f64>().ok())
                .map_or(0, |value| value.max(0.0) as u64)
        };
        Ok(Counted {
            runs: read("pos_batch_runs_total"),
            successes: read("pos_batch_successes_total"),
            failures: read("pos_batch_failures_total"),
        })
    }
}

/// The group a push belongs to: its job and term, and its shard when sharded.
fn group_labels(
    job: Job,
    term: Term,
    scope: RunScope,
    group: Group,
) -> Vec<(&'static str, String)> {
    let mut labels = vec![
        ("job", job.as_str().to_string()),
        ("term", term.as_str().to_string()),
    ];
    if group == Group::Backfill {
        labels.push(("command", "backfill".to_string()));
    }
    if scope.shard_count > 1 {
        labels.push((
            "shard",
            format!("{}-of-{}", scope.shard_index + 1, scope.shard_count),
        ));
    }
    if let Some(store) = scope.store {
        labels.push(("store", store.to_string()));
    }
    labels
}

fn group_path(labels: &[(&'static str, String)]) -> String {
    // Label values here are made of letters, digits and dashes: no escaping needed.
    labels
        .iter()
        .fold(String::from("/metrics"), |path, (name, value)| {
            format!("{path}/{name}/{value}")
        })
}

/// The samples of one push in Prometheus' text format.
fn exposition(before: Counted, tally: Tally, now: Duration) -> String {
    let mut samples: Vec<(&str, &str, &str, f64)> = vec![
        (
            "pos_batch_runs_total",
            "counter",
            "Windows run.",
            (before.runs + tally.runs) as f64,
        ),
        (
            "pos_batch_successes_total",
            "counter",
            "Windows that succeeded.",
            (before.successes + tally.successes) as f64,
        ),
        (
            "pos_batch_failures_total",
            "counter",
            "Windows that failed (or an invocation that could not plan its windows).",
            (before.failures + tally.failures) as f64,
        ),
        (
            "pos_batch_last_duration_seconds",
            "gauge",
            "How long the latest invocation took.",
            tally.seconds,
        ),
        (
            "pos_batch_last_rows_read",
            "gauge",
            "Rows the latest invocation read.",
            tally.rows_read as f64,
        ),
        (
            "pos_batch_last_rows_written",
            "gauge",
            "Rows the latest invocation wrote.",
            tally.rows_written as f64,
        ),
    ];
    if tally.failures == 0 && tally.runs > 0 {
        samples.push((
            "pos_batch_last_success_timestamp_seconds",
            "gauge",
            "When an invocation last succeeded in every window, Unix seconds.",
            now.as_secs_f64(),
        ));
    }
    let mut text = String::new();
    for (name, kind, help, value) in samples {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_invocation_leaves_the_last_success_alone() {
        let failed = Tally {
            runs: 2,
            successes: 1,
            failures: 1,
            ..Tally::default()
        };
        let text = exposition(Counted::default(), failed, Duration::from_secs(5));
        assert!(!text.contains("pos_batch_last_success_timestamp_seconds"));
        assert!(text.contains("pos_batch_failures_total 1\n"));
        let ok = Tally {
            runs: 2,
            successes: 2,
            ..Tally::default()
        };
        let before = Counted {
            runs: 3,
            successes: 2,
            failures: 1,
        };
        let text = exposition(before, ok, Duration::from_secs(5));
        assert!(text.contains("pos_batch_runs_total 5\n"));
        assert!(text.contains("pos_batch_successes_total 4\n"));
        assert!(text.contains("pos_batch_last_success_timestamp_seconds 5\n"));
    }

    #[test]
    fn groups_are_per_job_term_and_shard() {
        let sharded = RunScope {
            shard_index: 1,
            shard_count: 3,
            store: None,
        };
        assert_eq!(
            group_path(&group_labels(
                Job::ProductSales,
                Term::Month,
                sharded,
                Group::Scheduled
            )),
            "/metrics/job/product-sales/term/month/shard/2-of-3"
        );
        assert_eq!(
            group_path(&group_labels(
                Job::Settlement,
                Term::Day,
                RunScope::ALL,
                Group::Scheduled
            )),
            "/metrics/job/settlement/term/day"
        );
        assert_eq!(
            group_path(&group_labels(
                Job::Settlement,
                Term::Day,
                RunScope::ALL,
                Group::Backfill
            )),
            "/metrics/job/settlement/term/day/command/backfill"
        );
    }
}
