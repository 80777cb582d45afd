//! When the jobs run, in the stores' time zone. This table is the one source of truth:
//! `pos up` runs it in process (`scheduler`), and the Helm chart's CronJobs are to be
//! rendered from it (their `schedule` is [`Scheduled::cron`], with `timeZone` set to the stores'
//! zone, since a CronJob otherwise reads its schedule in the controller's zone).

use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};

use crate::{Job, SETTLEMENT_DAYS, Term};

/// Which days a job runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Days {
    Every,
    /// Once a week, on this day.
    Weekly(Weekday),
    /// On these days of the month.
    OfMonth(&'static [u32]),
}

/// One scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub job: Job,
    pub term: Term,
    pub days: Days,
    /// Local time of day: shortly after midnight, the DAY jobs first, so that WEEK and
    /// MONTH rollups built from DAY rows find them.
    pub hour: u32,
    pub minute: u32,
}

/// Every scheduled job.
pub const SCHEDULE: &[Scheduled] = &[
    Scheduled {
        job: Job::ProductSales,
        term: Term::Day,
        days: Days::Every,
        hour: 0,
        minute: 10,
    },
    Scheduled {
        job: Job::Settlement,
        term: Term::Day,
        days: Days::Every,
        hour: 0,
        minute: 15,
    },
    Scheduled {
        job: Job::ProductSales,
        term: Term::Week,
        days: Days::Weekly(Weekday::Mon),
        hour: 0,
        minute: 30,
    },
    Scheduled {
        job: Job::ProductSales,
        term: Term::Month,
        days: Days::OfMonth(&[1]),
        hour: 0,
        minute: 40,
    },
    Scheduled {
        job: Job::Settlement,
        term: Term::Month,
        days: Days::OfMonth(&SETTLEMENT_DAYS),
        hour: 0,
        minute: 50,
    },
];

impl Scheduled {
    /// A name for the job's CronJob and logs, e.g. `product-sales-day`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.job.as_str(), self.term.as_str())
    }

    /// The same schedule as a cron expression (minute hour day-of-month month
    /// day-of-week), to be read in the stores' zone (a CronJob's `timeZone`).
    pub fn cron(&self) -> String {
        let (day_of_month, day_of_week) = match self.days {
            Days::Every => ("*".to_string(), "*".to_string()),
            Days::Weekly(day) => ("*".to_string(), day.num_days_from_sunday().to_string()),
            Days::OfMonth(days) => {
                let days: Vec<String> = days.iter().map(u32::to_string).collect();
                (days.join(","), "*".to_string())
            }
        };
        format!(
            "{} {} {day_of_month} * {day_of_week}",
            self.minute, self.hour
        )
    }

    /// Whether the job runs on `date`.
    pub fn runs_on(&self, date: NaiveDate) -> bool {
        match self.days {
            Days::Every => true,
            Days::Weekly(day) => date.weekday() == day,
            Days::OfMonth(days) => days.contains(&date.day()),
        }
    }

    /// When on `date` it runs, local time.
    pub fn time(&self) -> NaiveTime {
        NaiveTime::from_hms_opt(self.hour, self.minute, 0).unwrap_or(NaiveTime::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::scheduled;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("a test date")
    }

    #[test]
    fn the_schedule_reads_as_cron() {
        let crons: Vec<(String, String)> = SCHEDULE.iter().map(|s| (s.name(), s.cron())).collect();
        assert_eq!(
            crons,
            [
                ("product-sales-day", "10 0 * * *"),
                ("settlement-day", "15 0 * * *"),
                ("product-sales-week", "30 0 * * 1"),
                ("product-sales-month", "40 0 1 * *"),
                ("settlement-month", "50 0 1,5,10,15,20,25 * *"),
            ]
            .map(|(name, cron)| (name.to_string(), cron.to_string()))
        );
    }

    #[test]
    fn each_job_and_term_is_scheduled_once_and_runs_when_it_has_a_window() {
        for job in [Job::ProductSales, Job::Settlement] {
            for &term in job.terms() {
                let entries: Vec<&Scheduled> = SCHEDULE
                    .iter()
                    .filter(|s| s.job == job && s.term == term)
                    .collect();
                assert_eq!(entries.len(), 1, "{job:?} {term:?}");
            }
        }
        // Over a year, a MONTH settlement has something to do exactly on its run days.
        let mut day = date("2024-01-01");
        while day < date("2025-01-01") {
            for entry in SCHEDULE {
                let windows = scheduled(entry.job, entry.term, day).expect("windows");
                if entry.runs_on(day) {
                    assert!(!windows.is_empty(), "{} on {day}", entry.name());
                } else if entry.job == Job::Settlement && entry.term == Term::Month {
                    assert!(windows.is_empty(), "{} on {day}", entry.name());
                }
            }
            day = day.succ_opt().expect("a next day");
        }
    }

    #[test]
    fn day_jobs_run_before_the_rollups_that_read_them() {
        let at = |job, term| {
            SCHEDULE
                .iter()
                .find(|s| s.job == job && s.term == term)
                .map(Scheduled::time)
                .expect("scheduled")
        };
        let day = at(Job::ProductSales, Term::Day);
        assert!(day < at(Job::ProductSales, Term::Week));
        assert!(day < at(Job::ProductSales, Term::Month));
        assert!(at(Job::Settlement, Term::Day) < at(Job::Settlement, Term::Month));
    }
}
