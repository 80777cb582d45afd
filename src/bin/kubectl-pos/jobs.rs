//! What a Job's status says: running or finished (a `Complete` or `Failed` condition),
//! when it started and how long it ran, and the times and durations as printed.

use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::{
    api::batch::v1::{Job, JobCondition},
    apimachinery::pkg::apis::meta::v1::Time,
};

/// A Job's state as `kubectl pos` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Complete,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "Running",
            Self::Complete => "Complete",
            Self::Failed => "Failed",
        }
    }
}

/// The condition that ended the Job, if one did (`Complete` or `Failed` with status True).
pub fn finished_condition(job: &Job) -> Option<(JobState, &JobCondition)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find_map(|condition| {
        let state = match condition.type_.as_str() {
            "Complete" => JobState::Complete,
            "Failed" => JobState::Failed,
            _ => return None,
        };
        (condition.status == "True").then_some((state, condition))
    })
}

pub fn state(job: &Job) -> JobState {
    finished_condition(job).map_or(JobState::Running, |(state, _)| state)
}

pub fn to_chrono(time: &Time) -> Option<DateTime<Utc>> {
    let subsec = u32::try_from(time.0.subsec_nanosecond()).ok()?;
    DateTime::from_timestamp(time.0.as_second(), subsec)
}

/// When the Job started: `status.startTime`, else its creation.
pub fn started(job: &Job) -> Option<DateTime<Utc>> {
    job.status
        .as_ref()
        .and_then(|status| status.start_time.as_ref())
        .or(job.metadata.creation_timestamp.as_ref())
        .and_then(to_chrono)
}

/// When the Job finished: `status.completionTime` (set on success only), else the
/// finishing condition's transition.
pub fn finished(job: &Job) -> Option<DateTime<Utc>> {
    let (_, condition) = finished_condition(job)?;
    job.status
        .as_ref()
        .and_then(|status| status.completion_time.as_ref())
        .or(condition.last_transition_time.as_ref())
        .and_then(to_chrono)
}

/// How long the Job ran, or has been running until `now`.
pub fn duration(job: &Job, now: DateTime<Utc>) -> Option<TimeDelta> {
    let start = started(job)?;
    let end = match state(job) {
        JobState::Running => now,
        _ => finished(job)?,
    };
    Some(end - start)
}

/// `45s`, `3m07s`, `2h05m`, `3d04h`, as kubectl's durations.
pub fn format_duration(delta: TimeDelta) -> String {
    let seconds = delta.num_seconds().max(0);
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else if hours > 0 {
        format!("{hours}h{minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m{secs:02}s")
    } else {
        format!("{secs}s")
    }
}

pub fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Whether the Job was created by hand (`kubectl create job --from`, `kubectl pos batch
/// run`) rather than by the CronJob's schedule.
pub fn is_manual(job: &Job) -> bool {
    job.metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(crate::labels::INSTANTIATE))
        .is_some_and(|value| value == crate::labels::MANUAL)
}

pub fn name(job: &Job) -> &str {
    job.metadata.name.as_deref().unwrap_or("<unnamed>")
}
