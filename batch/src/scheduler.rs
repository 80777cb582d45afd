//! The schedule run in process by `pos up`'s settlement role: the same [`SCHEDULE`]
//! table the CronJobs are rendered from, read in the stores' zone, each job run at its
//! local time for every store (one at a time; a job that comes due while another runs
//! starts when that one ends).

use chrono::{DateTime, Days, NaiveDate, Utc};
use pos_common::{clock::SharedClock, stopping::Stopping};
use pos_settlement_storage::RunScope;

use crate::{
    SCHEDULE, Scheduled, TimeZone,
    driver::{Batch, Method, describe},
    metrics::Pushgateway,
};

/// The next scheduled job strictly after `now`: when it is due, the local date it runs
/// on, and which job. Every day runs the DAY jobs, so one is always found within two
/// days.
pub fn next_due(
    now: DateTime<Utc>,
    zone: TimeZone,
) -> Option<(DateTime<Utc>, NaiveDate, Scheduled)> {
    let today = zone.date_of(now);
    (0..3u64)
        .filter_map(|ahead| today.checked_add_days(Days::new(ahead)))
        .flat_map(|date| {
            SCHEDULE
                .iter()
                .filter(move |job| job.runs_on(date))
                .map(move |job| (zone.at(date, job.time()), date, *job))
        })
        .filter(|(due, _, _)| *due > now)
        .min_by_key(|(due, _, _)| *due)
}

/// Runs the schedule until `stopping` fires. A job that fails is logged (and pushed as a
/// failure when a Pushgateway is configured); the schedule goes on.
pub async fn run_schedule(
    batch: Batch,
    zone: TimeZone,
    clock: SharedClock,
    pushgateway: Option<Pushgateway>,
    stopping: Stopping,
) {
    // Jobs are due one after another from here: one that comes due while an earlier one
    // still runs is run when that one ends, not skipped.
    let mut after = clock.now();
    loop {
        let Some((due, date, job)) = next_due(after, zone) else {
            tracing::error!("the schedule has nothing to run; the in-process scheduler stops");
            return;
        };
        after = due;
        let wait = (due - clock.now()).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopping.stopped() => return,
        }
        tracing::info!(job = %job.name(), %date, "a scheduled job starts");
        let started = std::time::Instant::now();
        let outcomes = batch
            .scheduled(job.job, job.term, date, RunScope::ALL, Method::default())
            .await;
        match &outcomes {
            Ok(_) => {}
            Err(err) => {
                tracing::error!(job = %job.name(), %date, error = %describe(err), "a scheduled job could not run")
            }
        }
        if let Some(pushgateway) = &pushgateway {
            pushgateway
                .push(
                    job.job,
                    job.term,
                    RunScope::ALL,
                    crate::metrics::Group::Scheduled,
                    &outcomes,
                    started.elapsed(),
                )
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Job, Term};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a test instant")
    }

    #[test]
    fn the_next_job_is_read_in_the_stores_zone() {
        let seoul = TimeZone::default();
        // 2024-12-01 00:05 in Seoul (UTC+9): the DAY product sales at 00:10 come next.
        let (due, date, job) = next_due(at("2024-11-30T15:05:00Z"), seoul).expect("a job");
        assert_eq!(due, at("2024-11-30T15:10:00Z"));
        assert_eq!(date, "2024-12-01".parse::<NaiveDate>().expect("a date"));
        assert_eq!((job.job, job.term), (Job::ProductSales, Term::Day));
        // After the DAY settlement at 00:15 on a Sunday the 1st: MONTH product sales at
        // 00:40 (no WEEK job on a Sunday).
        let (due, _, job) = next_due(at("2024-11-30T15:15:00Z"), seoul).expect("a job");
        assert_eq!(due, at("2024-11-30T15:40:00Z"));
        assert_eq!((job.job, job.term), (Job::ProductSales, Term::Month));
        // After the last job of the day: tomorrow's first.
        let (due, date, _) = next_due(at("2024-11-30T15:50:00Z"), seoul).expect("a job");
        assert_eq!(due, at("2024-12-01T15:10:00Z"));
        assert_eq!(date, "2024-12-02".parse::<NaiveDate>().expect("a date"));
    }

    #[test]
    fn a_day_without_a_settlement_day_skips_the_monthly_settlement() {
        let seoul = TimeZone::default();
        // 2024-12-02 00:20 Seoul, a Monday: WEEK at 00:30, then nothing monthly.
        let (_, _, job) = next_due(at("2024-12-01T15:20:00Z"), seoul).expect("a job");
        assert_eq!((job.job, job.term), (Job::ProductSales, Term::Week));
        let (due, _, job) = next_due(at("2024-12-01T15:30:00Z"), seoul).expect("a job");
        assert_eq!(due, at("2024-12-02T15:10:00Z"));
        assert_eq!((job.job, job.term), (Job::ProductSales, Term::Day));
    }
}
