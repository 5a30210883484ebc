//! Keeping data current: named universes of symbols, and schedules that create a backfill job
//! (in `missing` mode, so only the new tail is fetched) at every due time of their trigger.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use serde::{Deserialize, Serialize};

use crate::error::{excerpt, Error, Result};
use crate::{
    BackfillMode, DateRange, JobSpec, SourceChoice, SourceCost, Sources, Symbol, Timeframe,
};

/// The most timeframes one schedule keeps current.
pub const MAX_TIMEFRAMES_PER_SCHEDULE: usize = 8;
/// The longest look-back of a schedule: a year.
pub const MAX_LOOKBACK_DAYS: i64 = 366;

/// A name for a universe or a schedule: 1 to 64 characters among letters, digits and `._-`,
/// lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, example = "sp500"))]
pub struct Name(String);

impl Name {
    pub fn parse(input: &str) -> Result<Self> {
        let name = input.trim().to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(name))
        } else {
            Err(Error::InvalidSchedule(format!(
                "invalid name {:?}: 1 to 64 letters, digits, '.', '_' or '-'",
                excerpt(input)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When a schedule is due.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A cron pattern evaluated in New York time: five fields (minute, hour, day of month,
    /// month, day of week) or six with seconds first; `@daily` and friends work too.
    Cron {
        pattern: String,
        cron: Box<croner::Cron>,
    },
    /// After each New York trading day's close (16:00 on weekdays) plus a delay.
    AfterClose { delay: TimeDelta },
}

impl PartialEq for Trigger {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Trigger {}

/// The close of the regular session, New York time.
const CLOSE: (u32, u32) = (16, 0);

impl Trigger {
    /// `after_close` or `after_close+30m` (a delay in `s`, `m` or `h`), or a cron pattern.
    pub fn parse(input: &str) -> Result<Self> {
        let text = input.trim();
        if let Some(rest) = text.strip_prefix("after_close") {
            let delay = match rest.trim() {
                "" => TimeDelta::zero(),
                d => parse_delay(d.strip_prefix('+').unwrap_or(d).trim()).ok_or_else(|| {
                    Error::InvalidSchedule(format!(
                        "invalid trigger {:?}: the delay after the close is like +30m, +2h or +90s",
                        excerpt(input)
                    ))
                })?,
            };
            if delay > TimeDelta::hours(12) {
                return Err(Error::InvalidSchedule(format!(
                    "invalid trigger {:?}: the delay after the close is at most 12h",
                    excerpt(input)
                )));
            }
            return Ok(Self::AfterClose { delay });
        }
        let cron = croner::Cron::from_str(text).map_err(|e| {
            Error::InvalidSchedule(format!(
                "invalid trigger {:?}: not a cron pattern ({e}); expected for example \
                 \"0 18 * * 1-5\" (18:00 New York time on weekdays) or after_close+30m",
                excerpt(input)
            ))
        })?;
        let trigger = Self::Cron {
            pattern: text.to_owned(),
            cron: Box::new(cron),
        };
        // A pattern that never matches (February 30th) is refused now, not at its first run.
        if trigger.next_after(Utc::now()).is_none() {
            return Err(Error::InvalidSchedule(format!(
                "invalid trigger {:?}: the pattern never comes due",
                excerpt(input)
            )));
        }
        Ok(trigger)
    }

    /// The first due time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Cron { cron, .. } => cron
                .find_next_occurrence(&t.with_timezone(&New_York), false)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            Self::AfterClose { delay } => {
                let mut day = t.with_timezone(&New_York).date_naive();
                for _ in 0..8 {
                    if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                        let close = NaiveTime::from_hms_opt(CLOSE.0, CLOSE.1, 0)?;
                        let due = New_York
                            .from_local_datetime(&day.and_time(close))
                            .earliest()?
                            .with_timezone(&Utc)
                            + *delay;
                        if due > t {
                            return Some(due);
                        }
                    }
                    day = day.succ_opt()?;
                }
                None
            }
        }
    }

    /// The latest due time in `(after, until]`, if any: the one run a schedule catches up with
    /// after being down (however many it missed).
    pub fn last_due_in(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut last = None;
        let mut t = after;
        // Bounded: a schedule down for years with a due time every second is not walked.
        for _ in 0..100_000 {
            match self.next_after(t) {
                Some(due) if due <= until => {
                    last = Some(due);
                    t = due;
                }
                _ => return last,
            }
        }
        // Too many due times to walk: the latest one is found backwards from `until`.
        match self {
            Self::Cron { cron, .. } => cron
                .find_previous_occurrence(&until.with_timezone(&New_York), true)
                .ok()
                .map(|d| d.with_timezone(&Utc))
                .filter(|d| *d > after),
            Self::AfterClose { .. } => last,
        }
    }
}

/// `90s`, `30m`, `2h`.
fn parse_delay(s: &str) -> Option<TimeDelta> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.trim().parse().ok()?;
    if n < 0 {
        return None;
    }
    match unit {
        "s" => Some(TimeDelta::seconds(n)),
        "m" => Some(TimeDelta::minutes(n)),
        "h" => Some(TimeDelta::hours(n)),
        _ => None,
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cron { pattern, .. } => f.write_str(pattern),
            Self::AfterClose { delay } if delay.is_zero() => f.write_str("after_close"),
            Self::AfterClose { delay } => {
                let secs = delay.num_seconds();
                if secs % 3600 == 0 {
                    write!(f, "after_close+{}h", secs / 3600)
                } else if secs % 60 == 0 {
                    write!(f, "after_close+{}m", secs / 60)
                } else {
                    write!(f, "after_close+{secs}s")
                }
            }
        }
    }
}

impl Serialize for Trigger {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Which tickers a schedule keeps current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Tickers {
    /// These symbols.
    Symbols(Vec<Symbol>),
    /// The symbols of a named universe, as it stands at each run.
    Universe(Name),
    /// Every ticker of a bulk source (flatfiles or grouped).
    All,
}

/// What a schedule keeps current, and when: validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScheduleSpecRepr")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleSpec {
    name: Name,
    tickers: Tickers,
    timeframes: Vec<Timeframe>,
    adjusted: bool,
    /// The source of each run's jobs (`auto` and the default as for a job).
    source: Option<SourceChoice>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "after_close+30m"))]
    trigger: Trigger,
    /// How far back each run reaches, in days: its jobs cover the look-back before the due time.
    lookback_days: u32,
}

#[derive(Deserialize)]
struct ScheduleSpecRepr {
    name: Name,
    tickers: Tickers,
    timeframes: Vec<Timeframe>,
    adjusted: bool,
    #[serde(default)]
    source: Option<SourceChoice>,
    trigger: Trigger,
    lookback_days: u32,
}

impl TryFrom<ScheduleSpecRepr> for ScheduleSpec {
    type Error = Error;
    fn try_from(r: ScheduleSpecRepr) -> Result<Self> {
        Self::new(
            r.name,
            r.tickers,
            r.timeframes,
            r.adjusted,
            r.source,
            r.trigger,
            r.lookback_days,
        )
    }
}

impl ScheduleSpec {
    /// Checks the timeframes (1 to [`MAX_TIMEFRAMES_PER_SCHEDULE`], repeats dropped), the
    /// symbols (at least one, repeats dropped) and the look-back (1 to [`MAX_LOOKBACK_DAYS`]
    /// days).
    pub fn new(
        name: Name,
        tickers: Tickers,
        timeframes: Vec<Timeframe>,
        adjusted: bool,
        source: Option<SourceChoice>,
        trigger: Trigger,
        lookback_days: u32,
    ) -> Result<Self> {
        let mut seen = HashSet::new();
        let timeframes: Vec<Timeframe> =
            timeframes.into_iter().filter(|t| seen.insert(*t)).collect();
        if timeframes.is_empty() || timeframes.len() > MAX_TIMEFRAMES_PER_SCHEDULE {
            return Err(Error::InvalidSchedule(format!(
                "a schedule keeps 1 to {MAX_TIMEFRAMES_PER_SCHEDULE} timeframes current, got {}",
                timeframes.len()
            )));
        }
        let tickers = match tickers {
            Tickers::Symbols(list) => {
                let mut seen = HashSet::new();
                let list: Vec<Symbol> = list
                    .into_iter()
                    .filter(|s| seen.insert(s.clone()))
                    .collect();
                if list.is_empty() {
                    return Err(Error::InvalidSchedule(
                        "a schedule needs at least one symbol, a universe, or all".into(),
                    ));
                }
                Tickers::Symbols(list)
            }
            other => other,
        };
        if lookback_days == 0 || i64::from(lookback_days) > MAX_LOOKBACK_DAYS {
            return Err(Error::InvalidSchedule(format!(
                "the look-back is 1 to {MAX_LOOKBACK_DAYS} days, got {lookback_days}"
            )));
        }
        Ok(Self {
            name,
            tickers,
            timeframes,
            adjusted,
            source,
            trigger,
            lookback_days,
        })
    }

    pub fn name(&self) -> &Name {
        &self.name
    }

    pub fn tickers(&self) -> &Tickers {
        &self.tickers
    }

    pub fn timeframes(&self) -> &[Timeframe] {
        &self.timeframes
    }

    pub fn adjusted(&self) -> bool {
        self.adjusted
    }

    pub fn source(&self) -> Option<SourceChoice> {
        self.source
    }

    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    pub fn lookback_days(&self) -> u32 {
        self.lookback_days
    }

    /// The range a run due at `due` covers: the look-back before it, as New York days, the
    /// due day included (never after tomorrow).
    pub fn run_range(&self, due: DateTime<Utc>) -> Result<DateRange> {
        let last = due.with_timezone(&New_York).date_naive();
        let first = last - TimeDelta::days(i64::from(self.lookback_days) - 1);
        DateRange::new(
            crate::RangeBound::Date(first),
            crate::RangeBound::Date(last),
        )
    }

    /// The jobs of a run due at `due`, one per timeframe, in `missing` mode over
    /// [`ScheduleSpec::run_range`], with `symbols` the run's tickers (`None`: the whole
    /// market; a universe's symbols are looked up by the caller).
    ///
    /// # Errors
    /// As [`JobSpec::plan`]: a source that cannot serve, an empty universe.
    pub fn jobs(
        &self,
        due: DateTime<Utc>,
        symbols: Option<&[Symbol]>,
        available: Sources,
    ) -> Result<Vec<(JobSpec, Vec<SourceCost>)>> {
        let range = self.run_range(due)?;
        self.timeframes
            .iter()
            .map(|tf| {
                JobSpec::plan(
                    symbols.map(<[Symbol]>::to_vec),
                    *tf,
                    range,
                    self.adjusted,
                    BackfillMode::Missing,
                    self.source,
                    available,
                )
            })
            .collect()
    }

    /// Whether this schedule and `other` keep some of the same series current (a timeframe and
    /// adjustment in common, and a symbol in common, the same universe, or the whole market on
    /// either side); then they would fetch the same bars twice. `universe_symbols` gives a
    /// universe's symbols, to compare a universe with a list.
    pub fn overlap(
        &self,
        other: &ScheduleSpec,
        universe_symbols: impl Fn(&Name) -> Vec<Symbol>,
    ) -> Option<String> {
        if self.adjusted != other.adjusted {
            return None;
        }
        let tf = self
            .timeframes
            .iter()
            .find(|t| other.timeframes.contains(t))?;
        let symbols = |t: &Tickers| match t {
            Tickers::Symbols(list) => Some(list.clone()),
            Tickers::Universe(name) => Some(universe_symbols(name)),
            Tickers::All => None,
        };
        let what = match (symbols(&self.tickers), symbols(&other.tickers)) {
            (None, _) | (_, None) => "the whole market".to_owned(),
            (Some(a), Some(b)) => {
                let b: HashSet<Symbol> = b.into_iter().collect();
                a.into_iter().find(|s| b.contains(s))?.to_string()
            }
        };
        Some(format!(
            "{what} at {tf}{}",
            if self.adjusted { "" } else { " (raw)" }
        ))
    }
}

/// A named list of symbols: set by hand, or refreshed from the reference tickers endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamedUniverse {
    pub name: Name,
    pub symbols: Vec<Symbol>,
    /// `manual`, or how it was refreshed (`reference: market=stocks, active, date=...`).
    pub origin: String,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn after_close_is_due_on_weekdays_at_four_plus_the_delay_new_york_time() {
        let t = Trigger::parse("after_close+30m").unwrap();
        assert_eq!(t.to_string(), "after_close+30m");
        // Friday 2024-03-08, 15:00 New York (EST): due 16:30 EST the same day.
        assert_eq!(
            t.next_after(at("2024-03-08T20:00:00Z")),
            Some(at("2024-03-08T21:30:00Z"))
        );
        // After it: the next weekday, Monday 2024-03-11, in EDT now.
        assert_eq!(
            t.next_after(at("2024-03-08T21:30:00Z")),
            Some(at("2024-03-11T20:30:00Z"))
        );
        assert!(Trigger::parse("after_close+13h").is_err());
        assert!(Trigger::parse("after_close+soon").is_err());
    }

    #[test]
    fn cron_patterns_run_in_new_york_time() {
        let t = Trigger::parse("0 18 * * 1-5").unwrap();
        assert_eq!(
            t.next_after(at("2024-07-01T12:00:00Z")),
            Some(at("2024-07-01T22:00:00Z")),
            "18:00 EDT"
        );
        assert_eq!(
            t.next_after(at("2024-01-05T23:30:00Z")),
            Some(at("2024-01-08T23:00:00Z")),
            "the next weekday, 18:00 EST"
        );
        for bad in ["", "61 * * * *", "every day", "0 0 30 2 *"] {
            let err = Trigger::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidSchedule(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn a_schedule_catches_up_once_with_the_latest_missed_run() {
        let t = Trigger::parse("after_close").unwrap();
        // Down from Monday 2024-03-04 morning to Thursday morning: three closes missed.
        let latest = t.last_due_in(at("2024-03-04T14:00:00Z"), at("2024-03-07T14:00:00Z"));
        assert_eq!(latest, Some(at("2024-03-06T21:00:00Z")));
        assert_eq!(
            t.last_due_in(at("2024-03-06T21:00:00Z"), at("2024-03-06T22:00:00Z")),
            None
        );
        // A pattern due every second over a year is not walked second by second.
        let every = Trigger::parse("* * * * * *").unwrap();
        let last = every.last_due_in(at("2023-01-01T00:00:00Z"), at("2024-01-01T00:00:00Z"));
        assert_eq!(last, Some(at("2024-01-01T00:00:00Z")));
    }

    fn spec(name: &str, tickers: Tickers, tfs: &[&str], adjusted: bool) -> ScheduleSpec {
        ScheduleSpec::new(
            Name::parse(name).unwrap(),
            tickers,
            tfs.iter().map(|t| Timeframe::parse(t).unwrap()).collect(),
            adjusted,
            None,
            Trigger::parse("after_close+30m").unwrap(),
            3,
        )
        .unwrap()
    }

    fn syms(list: &[&str]) -> Tickers {
        Tickers::Symbols(list.iter().map(|s| Symbol::parse(s).unwrap()).collect())
    }

    #[test]
    fn a_run_is_one_missing_job_per_timeframe_over_the_look_back() {
        let s = spec(
            "nightly",
            syms(&["AAPL", "MSFT"]),
            &["1m", "1d", "1m"],
            true,
        );
        assert_eq!(s.timeframes().len(), 2);
        let due = at("2024-03-08T21:30:00Z");
        let symbols = [Symbol::parse("AAPL").unwrap()];
        let jobs = s
            .jobs(due, Some(&symbols), Sources { flat_files: false })
            .unwrap();
        assert_eq!(jobs.len(), 2);
        for (job, _) in &jobs {
            assert_eq!(job.mode(), BackfillMode::Missing);
            assert_eq!(job.range().from_ny_date().to_string(), "2024-03-06");
            assert_eq!(job.range().to_ny_date().to_string(), "2024-03-08");
        }
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["trigger"], "after_close+30m");
        assert_eq!(json["tickers"]["symbols"][1], "MSFT");
        assert_eq!(serde_json::from_value::<ScheduleSpec>(json).unwrap(), s);
    }

    #[test]
    fn overlapping_schedules_name_what_they_share() {
        let a = spec("a", syms(&["AAPL", "MSFT"]), &["1m", "1d"], true);
        let b = spec("b", syms(&["IBM", "MSFT"]), &["1d"], true);
        let none = |_: &Name| Vec::new();
        assert_eq!(a.overlap(&b, none).as_deref(), Some("MSFT at 1d"));
        let raw = spec("c", syms(&["MSFT"]), &["1d"], false);
        assert_eq!(a.overlap(&raw, none), None);
        let hourly = spec("d", syms(&["MSFT"]), &["1h"], true);
        assert_eq!(a.overlap(&hourly, none), None);
        let all = spec("e", Tickers::All, &["1m"], true);
        assert_eq!(
            a.overlap(&all, none).as_deref(),
            Some("the whole market at 1m")
        );
        let universe = spec(
            "f",
            Tickers::Universe(Name::parse("tech").unwrap()),
            &["1m"],
            true,
        );
        let tech = |_: &Name| vec![Symbol::parse("AAPL").unwrap()];
        assert_eq!(a.overlap(&universe, tech).as_deref(), Some("AAPL at 1m"));
    }

    #[test]
    fn names_and_limits_are_checked() {
        assert_eq!(Name::parse(" SP500 ").unwrap().as_str(), "sp500");
        assert!(Name::parse("a b").is_err());
        assert!(Name::parse("").is_err());
        let bad = ScheduleSpec::new(
            Name::parse("x").unwrap(),
            syms(&["AAPL"]),
            vec![],
            true,
            None,
            Trigger::parse("after_close").unwrap(),
            3,
        );
        assert!(bad.is_err());
        let bad = ScheduleSpec::new(
            Name::parse("x").unwrap(),
            syms(&["AAPL"]),
            vec![Timeframe::parse("1d").unwrap()],
            true,
            None,
            Trigger::parse("after_close").unwrap(),
            0,
        );
        assert!(bad.unwrap_err().to_string().contains("look-back"));
    }
}
