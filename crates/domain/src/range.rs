use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::America::New_York;
use serde::{Deserialize, Serialize};

use crate::error::{excerpt, Error, Result};

/// One end of a requested range: a calendar date (a New York trading date, as Polygon anchors its
/// day bars), or an exact instant given as Unix milliseconds or RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BoundRepr")]
pub enum RangeBound {
    /// A date: as a start it means New York midnight, as an end the last millisecond of that day.
    Date(NaiveDate),
    /// An exact instant.
    Instant(DateTime<Utc>),
}

impl RangeBound {
    /// Parses `YYYY-MM-DD`, Unix milliseconds, or an RFC 3339 timestamp.
    pub fn parse(input: &str) -> Result<Self> {
        let input = input.trim();
        if !input.is_empty() && input.bytes().all(|b| b.is_ascii_digit()) {
            let ms: i64 = input.parse().map_err(|_| bad_bound(input))?;
            return Self::from_millis(ms);
        }
        if let Ok(date) = NaiveDate::parse_from_str(input, "%Y-%m-%d") {
            return Ok(Self::Date(date));
        }
        DateTime::parse_from_rfc3339(input)
            .map(|t| Self::Instant(truncate_ms(t.with_timezone(&Utc))))
            .map_err(|_| bad_bound(input))
    }

    /// An exact instant from Unix milliseconds.
    pub fn from_millis(ms: i64) -> Result<Self> {
        DateTime::from_timestamp_millis(ms)
            .map(Self::Instant)
            .ok_or_else(|| Error::InvalidRange(format!("timestamp {ms} is out of range")))
    }

    /// The first instant this bound covers when it starts a range.
    pub fn start(self) -> DateTime<Utc> {
        match self {
            Self::Date(d) => new_york_midnight(d),
            Self::Instant(t) => t,
        }
    }

    /// The last instant this bound covers when it ends a range.
    pub fn end(self) -> DateTime<Utc> {
        match self {
            Self::Date(d) => new_york_midnight(d + Days::new(1)) - TimeDelta::milliseconds(1),
            Self::Instant(t) => t,
        }
    }
}

impl FromStr for RangeBound {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for RangeBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Date(d) => write!(f, "{d}"),
            Self::Instant(t) => write!(f, "{}", t.timestamp_millis()),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoundRepr {
    Millis(i64),
    Text(String),
}

impl TryFrom<BoundRepr> for RangeBound {
    type Error = Error;
    fn try_from(r: BoundRepr) -> Result<Self> {
        match r {
            BoundRepr::Millis(ms) => Self::from_millis(ms),
            BoundRepr::Text(s) => Self::parse(&s),
        }
    }
}

fn bad_bound(input: &str) -> Error {
    Error::InvalidRange(format!(
        "{:?} is not a date (YYYY-MM-DD), Unix milliseconds or an RFC 3339 timestamp",
        excerpt(input)
    ))
}

fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// New York midnight of a date, in UTC. Midnight always exists in New York (the clocks change at
/// 02:00), so this never fails.
pub(crate) fn new_york_midnight(d: NaiveDate) -> DateTime<Utc> {
    let local = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    New_York
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}

/// An inclusive interval of instants with millisecond precision: `from <= to`.
///
/// Requested ranges, coverage intervals and the chunks the Polygon client asks for are all
/// `DateRange`s; the interval arithmetic (merge, subtract, intersect) lives here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RangeRepr")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DateRange {
    /// The first instant, inclusive.
    from: DateTime<Utc>,
    /// The last instant, inclusive.
    to: DateTime<Utc>,
}

impl DateRange {
    /// A requested range: checks `from <= to` and that it does not end after tomorrow.
    pub fn new(from: RangeBound, to: RangeBound) -> Result<Self> {
        Self::new_at(from, to, Utc::now())
    }

    /// As [`DateRange::new`], with "now" given explicitly.
    pub fn new_at(from: RangeBound, to: RangeBound, now: DateTime<Utc>) -> Result<Self> {
        let range = Self::from_instants(from.start(), to.end()).map_err(|_| {
            Error::InvalidRange(format!("from ({from}) must not be after to ({to})"))
        })?;
        let today = now.with_timezone(&New_York).date_naive();
        let latest = RangeBound::Date(today + Days::new(1)).end();
        if range.to > latest {
            return Err(Error::InvalidRange(format!(
                "to ({to}) must not be after tomorrow ({})",
                today + Days::new(1)
            )));
        }
        Ok(range)
    }

    /// An interval between two instants (truncated to milliseconds), checking only `from <= to`.
    pub fn from_instants(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self> {
        let (from, to) = (truncate_ms(from), truncate_ms(to));
        if from > to {
            return Err(Error::InvalidRange(format!(
                "from ({from}) must not be after to ({to})"
            )));
        }
        Ok(Self { from, to })
    }

    /// An interval between two Unix millisecond timestamps, checking only `from <= to`.
    pub fn from_millis(from: i64, to: i64) -> Result<Self> {
        Self::from_instants(
            RangeBound::from_millis(from)?.start(),
            RangeBound::from_millis(to)?.start(),
        )
    }

    /// The first instant, inclusive.
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// The last instant, inclusive.
    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// The first instant in Unix milliseconds.
    pub fn from_ms(&self) -> i64 {
        self.from.timestamp_millis()
    }

    /// The last instant in Unix milliseconds.
    pub fn to_ms(&self) -> i64 {
        self.to.timestamp_millis()
    }

    /// The whole New York day `date`, from its midnight to the last millisecond before the next.
    pub fn ny_day(date: NaiveDate) -> Self {
        Self {
            from: RangeBound::Date(date).start(),
            to: RangeBound::Date(date).end(),
        }
    }

    /// The New York date of the first instant.
    pub fn from_ny_date(&self) -> NaiveDate {
        self.from.with_timezone(&New_York).date_naive()
    }

    /// The New York date of the last instant.
    pub fn to_ny_date(&self) -> NaiveDate {
        self.to.with_timezone(&New_York).date_naive()
    }

    /// The number of milliseconds covered (at least one).
    pub fn len_ms(&self) -> i64 {
        self.to_ms() - self.from_ms() + 1
    }

    /// Whether an instant lies inside the interval.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t <= self.to
    }

    /// The overlap of two intervals, if any.
    pub fn intersect(&self, other: &DateRange) -> Option<DateRange> {
        let from = self.from.max(other.from);
        let to = self.to.min(other.to);
        (from <= to).then_some(DateRange { from, to })
    }

    /// The parts of `self` not covered by any of `covered`, in order.
    pub fn subtract(&self, covered: &[DateRange]) -> Vec<DateRange> {
        let mut gaps = Vec::new();
        let mut cursor = Some(self.from);
        for c in merge_intervals(covered.to_vec()) {
            let Some(start) = cursor else { break };
            if c.to < start || c.from > self.to {
                continue;
            }
            if c.from > start {
                gaps.push(DateRange {
                    from: start,
                    to: c.from - TimeDelta::milliseconds(1),
                });
            }
            cursor = (c.to < self.to).then(|| c.to + TimeDelta::milliseconds(1));
        }
        if let Some(start) = cursor {
            if start <= self.to {
                gaps.push(DateRange {
                    from: start,
                    to: self.to,
                });
            }
        }
        gaps
    }

    /// The share of the interval at or before `checkpoint`, from 0.0 to 1.0.
    pub fn fraction_through(&self, checkpoint: DateTime<Utc>) -> f64 {
        if checkpoint < self.from {
            return 0.0;
        }
        if checkpoint >= self.to {
            return 1.0;
        }
        let done = checkpoint.timestamp_millis() - self.from_ms() + 1;
        done as f64 / self.len_ms() as f64
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}..={}",
            self.from
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.to.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    }
}

#[derive(Deserialize)]
struct RangeRepr {
    from: RangeBound,
    to: RangeBound,
}

impl TryFrom<RangeRepr> for DateRange {
    type Error = Error;
    fn try_from(r: RangeRepr) -> Result<Self> {
        Self::from_instants(r.from.start(), r.to.end())
    }
}

/// Sorts intervals and merges those that overlap or touch (one ends a millisecond before the next
/// begins), so that the result is sorted, disjoint and separated by gaps.
pub fn merge_intervals(mut intervals: Vec<DateRange>) -> Vec<DateRange> {
    intervals.sort();
    let mut merged: Vec<DateRange> = Vec::with_capacity(intervals.len());
    for next in intervals {
        match merged.last_mut() {
            Some(last) if next.from <= last.to + TimeDelta::milliseconds(1) => {
                last.to = last.to.max(next.to);
            }
            _ => merged.push(next),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn r(from: i64, to: i64) -> DateRange {
        DateRange::from_millis(from, to).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2024-07-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn dates_are_new_york_days_inclusive() {
        let range = DateRange::new_at(
            RangeBound::parse("2024-01-02").unwrap(),
            RangeBound::parse("2024-01-02").unwrap(),
            now(),
        )
        .unwrap();
        assert_eq!(range.from().to_rfc3339(), "2024-01-02T05:00:00+00:00");
        assert_eq!(range.to_ms(), range.from_ms() + 86_400_000 - 1);
        // Across the spring-forward change the New York day is 23 hours long.
        let dst = DateRange::new_at(
            RangeBound::parse("2024-03-10").unwrap(),
            RangeBound::parse("2024-03-10").unwrap(),
            now(),
        )
        .unwrap();
        assert_eq!(dst.len_ms(), 23 * 3_600_000);
    }

    #[test]
    fn accepts_millis_and_rfc3339() {
        assert_eq!(
            RangeBound::parse("1626912000000")
                .unwrap()
                .start()
                .timestamp_millis(),
            1_626_912_000_000
        );
        let b: RangeBound = serde_json::from_str("1626912000000").unwrap();
        assert_eq!(b.end().timestamp_millis(), 1_626_912_000_000);
        let t = RangeBound::parse("2024-01-02T14:30:00.123456Z").unwrap();
        assert_eq!(t.start().timestamp_millis() % 1000, 123);
    }

    #[test]
    fn rejects_reversed_and_future_ranges() {
        let b = |s| RangeBound::parse(s).unwrap();
        let err = DateRange::new_at(b("2024-02-01"), b("2024-01-01"), now()).unwrap_err();
        assert!(err.to_string().contains("2024-02-01"), "{err}");
        assert!(DateRange::new_at(b("2024-07-01"), b("2024-07-02"), now()).is_ok());
        let err = DateRange::new_at(b("2024-07-01"), b("2024-07-03"), now()).unwrap_err();
        assert!(err.to_string().contains("tomorrow"), "{err}");
        for bad in [
            "2024-13-01",
            "yesterday",
            "",
            "2024-01-01T25:00:00Z",
            "99999999999999999999",
        ] {
            let err = RangeBound::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidRange(_)), "{bad:?}");
        }
    }

    #[test]
    fn merges_adjacent_and_overlapping() {
        let merged = merge_intervals(vec![r(10, 20), r(0, 4), r(5, 9), r(15, 30), r(40, 50)]);
        assert_eq!(merged, vec![r(0, 30), r(40, 50)]);
    }

    #[test]
    fn subtracts_coverage() {
        let whole = r(0, 100);
        assert_eq!(whole.subtract(&[]), vec![whole]);
        assert_eq!(whole.subtract(&[r(0, 100)]), vec![]);
        assert_eq!(
            whole.subtract(&[r(10, 20), r(50, 200)]),
            vec![r(0, 9), r(21, 49)]
        );
        assert_eq!(whole.subtract(&[r(-50, 10)]), vec![r(11, 100)]);
        assert_eq!(whole.subtract(&[r(200, 300)]), vec![whole]);
    }

    #[test]
    fn fraction_through() {
        let range = r(0, 99);
        assert_eq!(
            range.fraction_through(range.from() - TimeDelta::seconds(1)),
            0.0
        );
        assert_eq!(range.fraction_through(r(49, 49).from()), 0.5);
        assert_eq!(range.fraction_through(range.to()), 1.0);
    }

    #[test]
    fn serde_round_trip() {
        let range = r(1_600_000_000_000, 1_600_000_100_000);
        let json = serde_json::to_string(&range).unwrap();
        assert_eq!(serde_json::from_str::<DateRange>(&json).unwrap(), range);
        let from_dates: DateRange =
            serde_json::from_str(r#"{"from":"2024-01-02","to":"2024-01-02"}"#).unwrap();
        assert_eq!(from_dates.len_ms(), 86_400_000);
        assert!(serde_json::from_str::<DateRange>(r#"{"from":10,"to":5}"#).is_err());
    }

    fn intervals() -> impl Strategy<Value = Vec<DateRange>> {
        proptest::collection::vec((0i64..1000, 0i64..100), 0..12)
            .prop_map(|v| v.into_iter().map(|(a, len)| r(a, a + len)).collect())
    }

    proptest! {
        #[test]
        fn merge_preserves_points_and_separates(v in intervals(), p in 0i64..1200) {
            let merged = merge_intervals(v.clone());
            let t = r(p, p).from();
            prop_assert_eq!(
                v.iter().any(|i| i.contains(t)),
                merged.iter().any(|i| i.contains(t))
            );
            for w in merged.windows(2) {
                prop_assert!(w[0].to_ms() + 1 < w[1].from_ms());
            }
        }

        #[test]
        fn subtract_is_exact_complement(v in intervals(), a in 0i64..1000, len in 0i64..500, p in 0i64..1600) {
            let whole = r(a, a + len);
            let gaps = whole.subtract(&v);
            let t = r(p, p).from();
            let expected = whole.contains(t) && !v.iter().any(|i| i.contains(t));
            prop_assert_eq!(gaps.iter().any(|g| g.contains(t)), expected);
        }

        #[test]
        fn bound_print_parse_round_trip(ms in 0i64..4_000_000_000_000, days in 0i64..40_000) {
            let b = RangeBound::from_millis(ms).unwrap();
            prop_assert_eq!(RangeBound::parse(&b.to_string()).unwrap(), b);
            let d = RangeBound::Date(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + Days::new(days as u64));
            prop_assert_eq!(RangeBound::parse(&d.to_string()).unwrap(), d);
        }
    }
}
