//! New York calendar arithmetic: days, trading sessions and the buckets that bars start on.
//!
//! Days are counted from 1970-01-01 (day 0) as New York calendar dates. Intraday buckets (seconds,
//! minutes, hours) are aligned to multiples of their length since the Unix epoch; day and longer
//! buckets start at New York midnight, weeks on Sunday, months on the first, quarters in January,
//! April, July and October, years on January 1st. Multiples of calendar units are counted from
//! 1970 (day 0, the week of Sunday 1970-01-04, January 1970).

use backfill_domain::{Timeframe, Timespan};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use chrono_tz::America::New_York;

pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The first day with data: 1970-01-01.
pub(crate) const FIRST_DAY: i64 = 0;
/// The day after the last day with data: 2100-01-01.
pub(crate) const END_DAY: i64 = 47_482;

/// The date of a day number.
pub(crate) fn date(day: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::days(day)))
        .unwrap_or(NaiveDate::MIN)
}

/// The day number of a date.
pub(crate) fn day_of_date(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce()) - 719_163
}

/// The New York day an instant falls on.
pub(crate) fn ny_day(ms: i64) -> i64 {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => day_of_date(t.with_timezone(&New_York).date_naive()),
        None => ms.div_euclid(DAY_MS),
    }
}

/// An instant given as a New York wall-clock hour of a day, in Unix milliseconds.
pub(crate) fn ny_hour_ms(day: i64, hour: u32) -> i64 {
    let local = date(day).and_hms_opt(hour, 0, 0).unwrap_or_default();
    New_York
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| local.and_utc().timestamp_millis())
}

/// New York midnight of a day, in Unix milliseconds.
pub(crate) fn ny_midnight_ms(day: i64) -> i64 {
    ny_hour_ms(day, 0)
}

/// Whether a day is a Saturday or a Sunday (1970-01-01 was a Thursday).
pub(crate) fn is_weekend(day: i64) -> bool {
    matches!(day.rem_euclid(7), 2 | 3)
}

/// How bars of a timeframe are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucketing {
    /// Fixed-length buckets aligned to the Unix epoch.
    Fixed { len_ms: i64 },
    /// Groups of `n` New York days.
    Days { n: i64 },
    /// Groups of `n` weeks starting on Sunday.
    Weeks { n: i64 },
    /// Groups of `n` months (quarters are 3 months, years 12).
    Months { n: i64 },
}

/// 1970-01-04, the first Sunday.
const FIRST_SUNDAY: i64 = 3;

impl Bucketing {
    pub(crate) fn of(tf: Timeframe) -> Self {
        let m = i64::from(tf.multiplier());
        match tf.timespan() {
            Timespan::Second => Self::Fixed { len_ms: 1_000 * m },
            Timespan::Minute => Self::Fixed { len_ms: 60_000 * m },
            Timespan::Hour => Self::Fixed {
                len_ms: HOUR_MS * m,
            },
            Timespan::Day => Self::Days { n: m },
            Timespan::Week => Self::Weeks { n: m },
            Timespan::Month => Self::Months { n: m },
            Timespan::Quarter => Self::Months { n: 3 * m },
            Timespan::Year => Self::Months { n: 12 * m },
        }
    }

    /// The start of the bucket containing `ms`.
    pub(crate) fn start(self, ms: i64) -> i64 {
        match self {
            Self::Fixed { len_ms } => ms - ms.rem_euclid(len_ms),
            Self::Days { n } => {
                let day = ny_day(ms);
                ny_midnight_ms(day - day.rem_euclid(n))
            }
            Self::Weeks { n } => {
                let week = (ny_day(ms) - FIRST_SUNDAY).div_euclid(7);
                ny_midnight_ms(FIRST_SUNDAY + 7 * (week - week.rem_euclid(n)))
            }
            Self::Months { n } => {
                let index = month_index(ny_day(ms));
                ny_midnight_ms(day_of_month_index(index - index.rem_euclid(n)))
            }
        }
    }

    /// The start of the bucket after the one that starts at `start`.
    pub(crate) fn next(self, start: i64) -> i64 {
        match self {
            Self::Fixed { len_ms } => start + len_ms,
            Self::Days { n } => ny_midnight_ms(ny_day(start) + n),
            Self::Weeks { n } => ny_midnight_ms(ny_day(start) + 7 * n),
            Self::Months { n } => {
                ny_midnight_ms(day_of_month_index(month_index(ny_day(start)) + n))
            }
        }
    }
}

fn month_index(day: i64) -> i64 {
    let d = date(day);
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

fn day_of_month_index(index: i64) -> i64 {
    let year = i32::try_from(index.div_euclid(12)).unwrap_or(i32::MAX);
    let month = u32::try_from(index.rem_euclid(12)).unwrap_or(0) + 1;
    NaiveDate::from_ymd_opt(year, month, 1).map_or(END_DAY, day_of_date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn days_round_trip_and_know_weekends() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 9).unwrap();
        assert_eq!(date(day_of_date(d)), d);
        assert!(is_weekend(day_of_date(d)));
        assert!(!is_weekend(day_of_date(d.pred_opt().unwrap())));
        assert_eq!(
            day_of_date(NaiveDate::from_ymd_opt(2100, 1, 1).unwrap()),
            END_DAY
        );
    }

    #[test]
    fn new_york_midnight_follows_daylight_saving() {
        let winter = day_of_date(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap());
        let summer = day_of_date(NaiveDate::from_ymd_opt(2024, 7, 2).unwrap());
        assert_eq!(ny_midnight_ms(winter), ms("2024-01-02T05:00:00Z"));
        assert_eq!(ny_midnight_ms(summer), ms("2024-07-02T04:00:00Z"));
        assert_eq!(ny_hour_ms(summer, 4), ms("2024-07-02T08:00:00Z"));
        assert_eq!(ny_day(ms("2024-07-02T03:59:59Z")), summer - 1);
    }

    #[test]
    fn calendar_buckets_start_where_polygon_starts_them() {
        let t = ms("2024-05-15T17:30:00Z");
        let tf = |s| Bucketing::of(Timeframe::parse(s).unwrap());
        assert_eq!(tf("1d").start(t), ms("2024-05-15T04:00:00Z"));
        assert_eq!(tf("1w").start(t), ms("2024-05-12T04:00:00Z"));
        assert_eq!(tf("1mo").start(t), ms("2024-05-01T04:00:00Z"));
        assert_eq!(tf("1q").start(t), ms("2024-04-01T04:00:00Z"));
        assert_eq!(tf("1y").start(t), ms("2024-01-01T05:00:00Z"));
        assert_eq!(tf("1h").start(t), ms("2024-05-15T17:00:00Z"));
        assert_eq!(tf("15m").start(t), ms("2024-05-15T17:30:00Z"));
        assert_eq!(
            tf("1y").next(ms("2024-01-01T05:00:00Z")),
            ms("2025-01-01T05:00:00Z")
        );
        assert_eq!(
            tf("1mo").next(ms("2024-02-01T05:00:00Z")),
            ms("2024-03-01T05:00:00Z")
        );
        assert_eq!(
            tf("1d").next(ms("2024-03-10T05:00:00Z")),
            ms("2024-03-11T04:00:00Z")
        );
    }
}
