//! Which days an aggregation covers. A window is a half-open range of local dates
//! `[start, end)`; its rows are stored under `start`.
//!
//! A scheduled run on date D covers:
//! - DAY (both jobs): the previous day, and the day before it again, so that trades paid
//!   late in a day but committed after the first run still count;
//! - WEEK (product sales): the previous Monday-start week;
//! - MONTH product sales: the previous calendar month;
//! - MONTH settlement: only on a settlement day, and only for the stores settling on it:
//!   `[D of the previous month, D)`. Settlement days are at most 25, so that day exists in
//!   every month.

use chrono::{Datelike, Days, Months, NaiveDate};

/// The days of the month on which stores may settle.
pub const SETTLEMENT_DAYS: [u32; 6] = [1, 5, 10, 15, 20, 25];

pub use pos_common::aggregation::{Job, Term, Window};

/// Whose rows a window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stores {
    /// Every store.
    All,
    /// The stores whose settlement day is this day of the month.
    SettlingOn(u32),
}

/// A window a run aggregates, and for which stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Covered {
    pub window: Window,
    pub stores: Stores,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(
        "{job} has no {term} term (settlements are daily or monthly)",
        job = .0.as_str(),
        term = .1.as_str()
    )]
    NoSuchTerm(Job, Term),
    #[error("{0} does not start a {term} window{why}", term = .1.as_str(), why = .2)]
    NotAStart(NaiveDate, Term, &'static str),
    #[error("{0} is not a settlement day (one of 1, 5, 10, 15, 20, 25)")]
    NotASettlementDay(u32),
    #[error("dates out of range")]
    OutOfRange,
}

fn days_before(date: NaiveDate, days: u64) -> Result<NaiveDate, WindowError> {
    date.checked_sub_days(Days::new(days))
        .ok_or(WindowError::OutOfRange)
}

fn days_after(date: NaiveDate, days: u64) -> Result<NaiveDate, WindowError> {
    date.checked_add_days(Days::new(days))
        .ok_or(WindowError::OutOfRange)
}

fn monday_of(date: NaiveDate) -> Result<NaiveDate, WindowError> {
    days_before(date, u64::from(date.weekday().num_days_from_monday()))
}

fn first_of_month(date: NaiveDate) -> NaiveDate {
    // Day 1 exists in every month.
    date.with_day(1).unwrap_or(date)
}

/// Day `day` (at most 28) of the month before `date`'s (`back`) or after it.
fn day_of_month_shifted(date: NaiveDate, day: u32, back: bool) -> Result<NaiveDate, WindowError> {
    let first = first_of_month(date);
    let shifted = if back {
        first.checked_sub_months(Months::new(1))
    } else {
        first.checked_add_months(Months::new(1))
    };
    shifted
        .and_then(|month| month.with_day(day))
        .ok_or(WindowError::OutOfRange)
}

fn settlement_day(day: u32) -> Result<u32, WindowError> {
    if SETTLEMENT_DAYS.contains(&day) {
        Ok(day)
    } else {
        Err(WindowError::NotASettlementDay(day))
    }
}

fn check_term(job: Job, term: Term) -> Result<(), WindowError> {
    if job.terms().contains(&term) {
        Ok(())
    } else {
        Err(WindowError::NoSuchTerm(job, term))
    }
}

/// The windows a scheduled run of `job` over `term` on `date` aggregates (none for a
/// MONTH settlement on a day no store settles on).
pub fn scheduled(job: Job, term: Term, date: NaiveDate) -> Result<Vec<Covered>, WindowError> {
    check_term(job, term)?;
    let all = |window| Covered {
        window,
        stores: Stores::All,
    };
    Ok(match (job, term) {
        (_, Term::Day) => {
            let yesterday = days_before(date, 1)?;
            let day_before = days_before(date, 2)?;
            vec![
                all(Window {
                    start: yesterday,
                    end: date,
                }),
                all(Window {
                    start: day_before,
                    end: yesterday,
                }),
            ]
        }
        (_, Term::Week) => {
            let this_week = monday_of(date)?;
            vec![all(Window {
                start: days_before(this_week, 7)?,
                end: this_week,
            })]
        }
        (Job::ProductSales, Term::Month) => {
            let this_month = first_of_month(date);
            let previous = this_month
                .checked_sub_months(Months::new(1))
                .ok_or(WindowError::OutOfRange)?;
            vec![all(Window {
                start: previous,
                end: this_month,
            })]
        }
        (Job::Settlement, Term::Month) => match settlement_day(date.day()) {
            Ok(day) => vec![Covered {
                window: Window {
                    start: day_of_month_shifted(date, day, true)?,
                    end: date,
                },
                stores: Stores::SettlingOn(day),
            }],
            Err(_) => Vec::new(),
        },
    })
}

/// The window of `term` that contains `date`; a MONTH settlement window is the one of a
/// store settling on `settles_on`.
pub fn containing(
    job: Job,
    term: Term,
    date: NaiveDate,
    settles_on: u32,
) -> Result<Window, WindowError> {
    check_term(job, term)?;
    Ok(match (job, term) {
        (_, Term::Day) => Window {
            start: date,
            end: days_after(date, 1)?,
        },
        (_, Term::Week) => {
            let start = monday_of(date)?;
            Window {
                start,
                end: days_after(start, 7)?,
            }
        }
        (Job::ProductSales, Term::Month) => {
            let start = first_of_month(date);
            Window {
                start,
                end: start
                    .checked_add_months(Months::new(1))
                    .ok_or(WindowError::OutOfRange)?,
            }
        }
        (Job::Settlement, Term::Month) => {
            let day = settlement_day(settles_on)?;
            if date.day() >= day {
                Window {
                    start: date.with_day(day).ok_or(WindowError::OutOfRange)?,
                    end: day_of_month_shifted(date, day, false)?,
                }
            } else {
                Window {
                    start: day_of_month_shifted(date, day, true)?,
                    end: date.with_day(day).ok_or(WindowError::OutOfRange)?,
                }
            }
        }
    })
}

/// The window of `term` stored under `start`, or why `start` starts none: a WEEK starts
/// on a Monday, a MONTH of product sales on the 1st, a MONTH settlement on the store's
/// settlement day.
pub fn starting(
    job: Job,
    term: Term,
    start: NaiveDate,
    settles_on: u32,
) -> Result<Window, WindowError> {
    let window = containing(job, term, start, settles_on)?;
    if window.start == start {
        return Ok(window);
    }
    let why = match (job, term) {
        (_, Term::Week) => " (weeks start on Monday)",
        (Job::ProductSales, Term::Month) => " (months start on the 1st)",
        (Job::Settlement, Term::Month) => " (a monthly settlement starts on the settlement day)",
        (_, Term::Day) => "",
    };
    Err(WindowError::NotAStart(start, term, why))
}

/// Whether `window` is one of `job`'s windows of `term`: its first day starts one, and it
/// ends where that one ends (a MONTH settlement window starts on a settlement day).
pub fn check_window(job: Job, term: Term, window: Window) -> Result<(), WindowError> {
    let expected = starting(job, term, window.start, window.start.day())?;
    if expected == window {
        Ok(())
    } else {
        Err(WindowError::NotAStart(
            window.start,
            term,
            " (the window ends elsewhere)",
        ))
    }
}

#[cfg(test)]
mod tests;
