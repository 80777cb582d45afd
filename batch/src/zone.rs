//! The stores' time zone (an IANA name, Asia/Seoul by default; `POS_TIME_ZONE`): a sale
//! belongs to the local day its trade was paid on, whatever zone the host runs in.

use std::{fmt, str::FromStr};

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::Window;

/// Longest stretch of local time a zone has ever skipped at once (Samoa skipped the whole
/// of 2011-12-30), with room to spare.
const LONGEST_GAP_MINUTES: i64 = 48 * 60;

/// An IANA time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(Tz);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone name (such as Asia/Seoul)")]
pub struct ZoneError(String);

impl Default for TimeZone {
    fn default() -> Self {
        Self(Tz::Asia__Seoul)
    }
}

impl FromStr for TimeZone {
    type Err = ZoneError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        name.parse::<Tz>()
            .map(Self)
            .map_err(|_| ZoneError(name.to_string()))
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl TimeZone {
    /// The instant `date` begins: its local midnight, the earlier one when clocks go back
    /// over midnight, or the first instant after a gap when they skip it.
    pub fn start_of(&self, date: NaiveDate) -> DateTime<Utc> {
        self.at(date, chrono::NaiveTime::MIN)
    }

    /// The instant the local clock shows `time` on `date`: the earlier one when clocks go
    /// back over it, or the first instant after a gap when they skip it.
    pub fn at(&self, date: NaiveDate, time: chrono::NaiveTime) -> DateTime<Utc> {
        let local = date.and_time(time);
        (0..=LONGEST_GAP_MINUTES)
            .find_map(|minutes| self.instant_of(local + TimeDelta::minutes(minutes)))
            // No zone skips two days; were one to, its offset is what's left to go by.
            .unwrap_or_else(|| local.and_utc())
    }

    /// The instants `[start, end)` of a window of local dates.
    pub fn instants(&self, window: Window) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.start_of(window.start), self.start_of(window.end))
    }

    /// The local date an instant falls on.
    pub fn date_of(&self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.0).date_naive()
    }

    /// Today, here.
    pub fn today(&self) -> NaiveDate {
        self.date_of(Utc::now())
    }

    fn instant_of(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at.to_utc()),
            LocalResult::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("a test date")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("a test instant")
    }

    #[test]
    fn seoul_days_begin_at_fifteen_hundred_utc_the_day_before() {
        let seoul = TimeZone::default();
        assert_eq!(seoul.to_string(), "Asia/Seoul");
        assert_eq!(
            seoul.start_of(date("2024-12-01")),
            utc("2024-11-30T15:00:00Z")
        );
        // 23:59:59.999 and 00:00:00 local fall on different days.
        assert_eq!(
            seoul.date_of(utc("2024-11-30T14:59:59.999Z")),
            date("2024-11-30")
        );
        assert_eq!(
            seoul.date_of(utc("2024-11-30T15:00:00Z")),
            date("2024-12-01")
        );
    }

    #[test]
    fn days_follow_daylight_saving_time() {
        let new_york: TimeZone = "America/New_York".parse().expect("a zone");
        // 2024-03-10 had 23 hours there, 2024-11-03 had 25.
        let (start, end) = new_york.instants(Window {
            start: date("2024-03-10"),
            end: date("2024-03-11"),
        });
        assert_eq!(end - start, TimeDelta::hours(23));
        let (start, end) = new_york.instants(Window {
            start: date("2024-11-03"),
            end: date("2024-11-04"),
        });
        assert_eq!(end - start, TimeDelta::hours(25));
        assert_eq!(
            new_york.start_of(date("2024-07-01")),
            utc("2024-07-01T04:00:00Z")
        );
    }

    #[test]
    fn a_midnight_that_never_happened_starts_the_day_when_the_clocks_jump() {
        // Santiago skipped from 2024-09-07 24:00 to 01:00 on 2024-09-08.
        let santiago: TimeZone = "America/Santiago".parse().expect("a zone");
        assert_eq!(
            santiago.start_of(date("2024-09-08")),
            utc("2024-09-08T04:00:00Z")
        );
        // Samoa skipped 2011-12-30 entirely: it began (and ended) when the 31st began.
        let samoa: TimeZone = "Pacific/Apia".parse().expect("a zone");
        assert_eq!(
            samoa.start_of(date("2011-12-30")),
            samoa.start_of(date("2011-12-31"))
        );
    }

    #[test]
    fn unknown_zone_names_are_refused() {
        let refused = "Mars/Olympus".parse::<TimeZone>();
        assert_eq!(refused, Err(ZoneError("Mars/Olympus".into())));
        assert!(
            refused
                .expect_err("no such zone")
                .to_string()
                .contains("IANA")
        );
    }
}
