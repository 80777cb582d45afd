use chrono::{Datelike, NaiveDate, Weekday};

use super::*;

fn date(text: &str) -> NaiveDate {
    text.parse().expect("a test date")
}

fn window(start: &str, end: &str) -> Window {
    Window {
        start: date(start),
        end: date(end),
    }
}

fn every_store(start: &str, end: &str) -> Covered {
    Covered {
        window: window(start, end),
        stores: Stores::All,
    }
}

#[test]
fn a_day_run_covers_the_previous_day_and_the_one_before_it() {
    for job in [Job::ProductSales, Job::Settlement] {
        assert_eq!(
            scheduled(job, Term::Day, date("2024-03-01")),
            Ok(vec![
                every_store("2024-02-29", "2024-03-01"),
                every_store("2024-02-28", "2024-02-29"),
            ])
        );
        assert_eq!(
            scheduled(job, Term::Day, date("2025-01-01")),
            Ok(vec![
                every_store("2024-12-31", "2025-01-01"),
                every_store("2024-12-30", "2024-12-31"),
            ])
        );
    }
}

#[test]
fn a_week_run_covers_the_previous_monday_start_week_whatever_day_it_runs() {
    // 2024-12-02 is a Monday.
    for run in ["2024-12-02", "2024-12-04", "2024-12-08"] {
        assert_eq!(
            scheduled(Job::ProductSales, Term::Week, date(run)),
            Ok(vec![every_store("2024-11-25", "2024-12-02")]),
            "run on {run}"
        );
    }
    assert_eq!(date("2024-11-25").weekday(), Weekday::Mon);
    assert_eq!(
        scheduled(Job::Settlement, Term::Week, date("2024-12-02")),
        Err(WindowError::NoSuchTerm(Job::Settlement, Term::Week))
    );
}

#[test]
fn a_month_of_product_sales_is_the_previous_calendar_month() {
    for (run, start, end) in [
        ("2024-03-01", "2024-02-01", "2024-03-01"),
        ("2024-03-17", "2024-02-01", "2024-03-01"),
        ("2025-01-01", "2024-12-01", "2025-01-01"),
    ] {
        assert_eq!(
            scheduled(Job::ProductSales, Term::Month, date(run)),
            Ok(vec![every_store(start, end)])
        );
    }
}

/// Each settlement day, run in months of 28, 29, 30 and 31 days: the window starts on
/// the same day of the previous month, whatever that month's length.
#[test]
fn a_month_settlement_runs_on_each_settlement_day_for_the_stores_settling_then() {
    // The run dates fall in March 2023 (February of 28 days before it), March 2024
    // (February of 29), May 2024 (April of 30) and August 2024 (July of 31).
    for month in ["2023-03", "2024-03", "2024-05", "2024-08"] {
        for day in SETTLEMENT_DAYS {
            let run = date(&format!("{month}-{day:02}"));
            let previous = run
                .checked_sub_months(chrono::Months::new(1))
                .expect("a month");
            assert_eq!(previous.day(), day, "same day of the previous month");
            assert_eq!(
                scheduled(Job::Settlement, Term::Month, run),
                Ok(vec![Covered {
                    window: Window {
                        start: previous,
                        end: run,
                    },
                    stores: Stores::SettlingOn(day),
                }]),
                "run on {run}"
            );
        }
    }
    // No store settles on the 2nd: that run covers nothing.
    assert_eq!(
        scheduled(Job::Settlement, Term::Month, date("2024-03-02")),
        Ok(vec![])
    );
}

#[test]
fn the_window_containing_a_date_depends_on_the_term_and_settlement_day() {
    let on = |job, term, day: &str, settles_on| containing(job, term, date(day), settles_on);
    assert_eq!(
        on(Job::ProductSales, Term::Day, "2024-02-29", 1),
        Ok(window("2024-02-29", "2024-03-01"))
    );
    assert_eq!(
        on(Job::ProductSales, Term::Week, "2024-12-08", 1),
        Ok(window("2024-12-02", "2024-12-09"))
    );
    assert_eq!(
        on(Job::ProductSales, Term::Month, "2024-02-29", 1),
        Ok(window("2024-02-01", "2024-03-01"))
    );
    // A store settling on the 10th: the 10th starts a window, the 9th ends one.
    assert_eq!(
        on(Job::Settlement, Term::Month, "2024-12-10", 10),
        Ok(window("2024-12-10", "2025-01-10"))
    );
    assert_eq!(
        on(Job::Settlement, Term::Month, "2024-12-09", 10),
        Ok(window("2024-11-10", "2024-12-10"))
    );
    assert_eq!(
        on(Job::Settlement, Term::Month, "2024-12-09", 11),
        Err(WindowError::NotASettlementDay(11))
    );
}

#[test]
fn only_a_windows_first_day_starts_it() {
    assert_eq!(
        starting(Job::ProductSales, Term::Week, date("2024-12-02"), 1),
        Ok(window("2024-12-02", "2024-12-09"))
    );
    let tuesday = starting(Job::ProductSales, Term::Week, date("2024-12-03"), 1);
    assert!(
        matches!(&tuesday, Err(WindowError::NotAStart(..))),
        "{tuesday:?}"
    );
    assert!(
        tuesday
            .expect_err("not a Monday")
            .to_string()
            .contains("Monday")
    );
    assert!(starting(Job::ProductSales, Term::Month, date("2024-12-02"), 1).is_err());
    assert_eq!(
        starting(Job::Settlement, Term::Month, date("2024-11-25"), 25),
        Ok(window("2024-11-25", "2024-12-25"))
    );
    assert!(starting(Job::Settlement, Term::Month, date("2024-11-24"), 25).is_err());
    assert_eq!(
        starting(Job::Settlement, Term::Day, date("2024-11-24"), 25),
        Ok(window("2024-11-24", "2024-11-25"))
    );
}

#[test]
fn dates_at_the_edge_of_the_calendar_are_refused_not_panicked_on() {
    assert_eq!(
        scheduled(Job::ProductSales, Term::Day, NaiveDate::MIN),
        Err(WindowError::OutOfRange)
    );
    assert_eq!(
        containing(Job::ProductSales, Term::Month, NaiveDate::MAX, 1),
        Err(WindowError::OutOfRange)
    );
}

#[test]
fn a_window_is_checked_against_its_job_and_term() {
    assert_eq!(
        check_window(
            Job::ProductSales,
            Term::Day,
            window("2024-12-01", "2024-12-02")
        ),
        Ok(())
    );
    assert!(
        check_window(
            Job::ProductSales,
            Term::Day,
            window("2024-12-01", "2024-12-08")
        )
        .is_err()
    );
    assert_eq!(
        check_window(
            Job::ProductSales,
            Term::Week,
            window("2024-12-02", "2024-12-09")
        ),
        Ok(())
    );
    assert_eq!(
        check_window(
            Job::Settlement,
            Term::Week,
            window("2024-12-02", "2024-12-09")
        ),
        Err(WindowError::NoSuchTerm(Job::Settlement, Term::Week))
    );
    assert_eq!(
        check_window(
            Job::Settlement,
            Term::Month,
            window("2024-11-10", "2024-12-10")
        ),
        Ok(())
    );
    assert_eq!(
        check_window(
            Job::Settlement,
            Term::Month,
            window("2024-11-11", "2024-12-11")
        ),
        Err(WindowError::NotASettlementDay(11))
    );
    assert_eq!(
        check_window(
            Job::ProductSales,
            Term::Month,
            window("2024-11-01", "2024-12-01")
        ),
        Ok(())
    );
}
