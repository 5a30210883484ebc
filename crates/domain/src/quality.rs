//! The quality report of a stored series: what is covered, which trading days and session
//! minutes have no bar, bars whose values contradict each other, and minute bars that disagree
//! with the day bars. Everything is counted and located; nothing is fixed.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};
use chrono_tz::America::New_York;
use serde::{Deserialize, Serialize};

use crate::resample::ny_midnight;
use crate::{Candle, DateRange, Session, Symbol, Timeframe, Timespan};

/// How many dates, gaps or examples a report lists (it counts them all).
pub const QUALITY_EXAMPLES: usize = 20;
/// A day bar's high or low and the minutes' disagree beyond this fraction of the day bar's.
pub const PRICE_TOLERANCE: f64 = 0.001;
/// A day bar's volume and the minutes' sum disagree beyond this fraction of the day bar's.
pub const VOLUME_TOLERANCE: f64 = 0.01;

/// The quality of one stored series over a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityReport {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    pub adjusted: bool,
    /// The range asked about.
    pub range: DateRange,
    /// The parts of the range that backfills have covered (sorted, disjoint).
    pub covered: Vec<DateRange>,
    /// Stored bars in the range.
    pub bars: u64,
    pub first_bar: Option<DateTime<Utc>>,
    pub last_bar: Option<DateTime<Utc>>,
    pub days: DaysReport,
    /// Session minutes without a bar (minute series of stocks and options only).
    pub session_gaps: Option<SessionGaps>,
    pub ohlc: OhlcReport,
    /// Intraday bars of a stock starting outside 04:00-20:00 New York time.
    pub outside_session: u64,
    /// Minute bars against the day bars of the same symbol and adjustment (minute series, when
    /// day bars are stored).
    pub day_agreement: Option<DayAgreement>,
}

/// Trading days (weekdays; every day for crypto, forex and indices) that the covered range
/// touches, and those without a single bar: market holidays, or data that is missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DaysReport {
    pub covered: u64,
    pub with_bars: u64,
    pub without_bars: u64,
    /// The first of them.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub without_bars_dates: Vec<NaiveDate>,
}

/// Minutes of the sessions with no bar, on days that have bars. A minute without a bar means
/// no eligible trade in it: normal for thinly traded symbols, more so in extended hours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionGaps {
    /// Covered minutes of the regular session (09:30-16:00) on days with bars.
    pub regular_minutes: u64,
    pub regular_missing: u64,
    /// Covered minutes of the extended session (04:00-20:00) on days with bars.
    pub extended_minutes: u64,
    pub extended_missing: u64,
    /// The days missing the most regular-session minutes.
    pub worst_days: Vec<DayGaps>,
    /// The longest runs of regular-session minutes without a bar.
    pub longest_gaps: Vec<Gap>,
}

/// Missing minutes of one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayGaps {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub date: NaiveDate,
    pub regular_missing: u32,
    pub extended_missing: u32,
}

/// Consecutive minutes without a bar: from the first missing minute to the last, inclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gap {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub minutes: u32,
}

/// Bars whose values contradict each other (low above open or close, high below them, low
/// above high, negative volume).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OhlcReport {
    pub violations: u64,
    pub examples: Vec<Violation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Violation {
    pub ts: DateTime<Utc>,
    pub problem: String,
}

/// Each day's minute bars folded (highest high, lowest low, summed volume) against its day bar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayAgreement {
    pub days_compared: u64,
    pub days_disagreeing: u64,
    /// A high or low disagrees beyond this fraction of the day bar's.
    pub price_tolerance: f64,
    /// The volume disagrees beyond this fraction of the day bar's.
    pub volume_tolerance: f64,
    /// Days with minute bars but no day bar, and the other way round.
    pub days_without_day_bar: u64,
    pub day_bars_without_minutes: u64,
    pub examples: Vec<Disagreement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Disagreement {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub date: NaiveDate,
    /// `high`, `low` or `volume`.
    pub field: String,
    pub from_minutes: f64,
    pub day_bar: f64,
}

/// Builds a [`QualityReport`] from a series' bars pushed in time order.
#[derive(Debug)]
pub struct QualityCheck {
    report: QualityReport,
    session: Session,
    minutes: bool,
    intraday: bool,
    /// The covered days, each with its bars' folded values once seen.
    days: BTreeMap<NaiveDate, Option<DayFold>>,
    day_bars: Option<BTreeMap<NaiveDate, Candle>>,
    current: Option<DayFold>,
    day_gaps: Vec<DayGaps>,
    gaps: Vec<Gap>,
    disagreements: Vec<Disagreement>,
}

/// One day's bars, folded.
#[derive(Debug, Clone)]
struct DayFold {
    date: NaiveDate,
    high: f64,
    low: f64,
    volume: f64,
    /// Which minutes of the day (from New York midnight) have a bar (minute series).
    minutes: Vec<bool>,
}

const MINUTES_PER_DAY: usize = 24 * 60;

impl QualityCheck {
    /// A check of `symbol`'s series over `range`, of which `covered` was backfilled (as
    /// storage's coverage, any order), as of `now` (days after it are not expected).
    pub fn new(
        symbol: Symbol,
        timeframe: Timeframe,
        adjusted: bool,
        range: DateRange,
        covered: &[DateRange],
        now: DateTime<Utc>,
    ) -> Self {
        let session = Session::of(&symbol);
        let covered: Vec<DateRange> = crate::merge_intervals(
            covered
                .iter()
                .filter_map(|c| c.intersect(&range))
                .filter_map(|c| DateRange::from_instants(c.from(), c.to().min(now)).ok())
                .collect(),
        );
        let mut days = BTreeMap::new();
        for c in &covered {
            let mut day = c.from_ny_date();
            while day <= c.to_ny_date() {
                let trading = session == Session::AroundTheClock
                    || !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
                if trading {
                    days.insert(day, None);
                }
                day = day.succ_opt().unwrap_or(day);
                if day == NaiveDate::MAX {
                    break;
                }
            }
        }
        let intraday = matches!(
            timeframe.timespan(),
            Timespan::Second | Timespan::Minute | Timespan::Hour
        );
        let minutes = timeframe.timespan() == Timespan::Minute && timeframe.multiplier() == 1;
        Self {
            report: QualityReport {
                symbol,
                timeframe,
                adjusted,
                range,
                covered,
                bars: 0,
                first_bar: None,
                last_bar: None,
                days: DaysReport::default(),
                session_gaps: (minutes && session == Session::ExtendedHours)
                    .then(SessionGaps::default),
                ohlc: OhlcReport::default(),
                outside_session: 0,
                day_agreement: None,
            },
            session,
            minutes,
            intraday,
            days,
            day_bars: None,
            current: None,
            day_gaps: Vec::new(),
            gaps: Vec::new(),
            disagreements: Vec::new(),
        }
    }

    /// The day bars to compare a minute series with (ignored for other series).
    pub fn with_day_bars(mut self, day_bars: impl IntoIterator<Item = Candle>) -> Self {
        if self.minutes {
            self.day_bars = Some(
                day_bars
                    .into_iter()
                    .map(|c| (c.ts().with_timezone(&New_York).date_naive(), c))
                    .collect(),
            );
        }
        self
    }

    /// Adds the next bar (in time order).
    pub fn push(&mut self, c: &Candle) {
        let r = &mut self.report;
        r.bars += 1;
        r.first_bar.get_or_insert(c.ts());
        r.last_bar = Some(c.ts());
        let mut problems = Vec::new();
        if c.low() > c.high() {
            problems.push(format!("low {} above high {}", c.low(), c.high()));
        }
        for (name, v) in [("open", c.open()), ("close", c.close())] {
            if v > c.high() {
                problems.push(format!("{name} {v} above high {}", c.high()));
            }
            if v < c.low() {
                problems.push(format!("{name} {v} below low {}", c.low()));
            }
        }
        if c.volume() < 0.0 {
            problems.push(format!("negative volume {}", c.volume()));
        }
        if !problems.is_empty() {
            r.ohlc.violations += 1;
            if r.ohlc.examples.len() < QUALITY_EXAMPLES {
                r.ohlc.examples.push(Violation {
                    ts: c.ts(),
                    problem: problems.join("; "),
                });
            }
        }
        let local = c.ts().with_timezone(&New_York);
        let minute = minute_of_day(c.ts());
        if self.intraday
            && self.session == Session::ExtendedHours
            && !(4 * 60..20 * 60).contains(&minute)
        {
            r.outside_session += 1;
        }
        let date = local.date_naive();
        if self.current.as_ref().is_some_and(|d| d.date != date) {
            self.close_day();
        }
        let fold = self.current.get_or_insert_with(|| DayFold {
            date,
            high: c.high(),
            low: c.low(),
            volume: 0.0,
            minutes: if self.minutes {
                vec![false; MINUTES_PER_DAY]
            } else {
                Vec::new()
            },
        });
        fold.high = fold.high.max(c.high());
        fold.low = fold.low.min(c.low());
        fold.volume += c.volume();
        if let Some(m) = fold.minutes.get_mut(minute as usize) {
            *m = true;
        }
    }

    /// The report.
    pub fn finish(mut self) -> QualityReport {
        self.close_day();
        let days_seen: Vec<(NaiveDate, bool)> =
            self.days.iter().map(|(d, f)| (*d, f.is_some())).collect();
        let r = &mut self.report;
        r.days.covered = days_seen.len() as u64;
        r.days.with_bars = days_seen.iter().filter(|(_, seen)| *seen).count() as u64;
        r.days.without_bars = r.days.covered - r.days.with_bars;
        r.days.without_bars_dates = days_seen
            .iter()
            .filter(|(_, seen)| !seen)
            .map(|(d, _)| *d)
            .take(QUALITY_EXAMPLES)
            .collect();
        if let Some(gaps) = &mut r.session_gaps {
            self.day_gaps.sort_by(|a, b| {
                b.regular_missing
                    .cmp(&a.regular_missing)
                    .then(a.date.cmp(&b.date))
            });
            self.day_gaps.truncate(QUALITY_EXAMPLES);
            gaps.worst_days = self.day_gaps;
            self.gaps
                .sort_by(|a, b| b.minutes.cmp(&a.minutes).then(a.from.cmp(&b.from)));
            self.gaps.truncate(QUALITY_EXAMPLES);
            gaps.longest_gaps = self.gaps;
        }
        if let Some(day_bars) = &self.day_bars {
            let agreement = r.day_agreement.get_or_insert_with(|| DayAgreement {
                price_tolerance: PRICE_TOLERANCE,
                volume_tolerance: VOLUME_TOLERANCE,
                ..DayAgreement::default()
            });
            agreement.day_bars_without_minutes = day_bars
                .keys()
                .filter(|d| matches!(self.days.get(d), Some(None)))
                .count() as u64;
            agreement.examples = self.disagreements;
        }
        self.report
    }

    /// Folds the day that just ended into the report.
    fn close_day(&mut self) {
        let Some(fold) = self.current.take() else {
            return;
        };
        if let Some(slot) = self.days.get_mut(&fold.date) {
            *slot = Some(fold.clone());
        }
        if self.report.session_gaps.is_some() {
            self.count_gaps(&fold);
        }
        if let Some(day_bars) = &self.day_bars {
            let agreement = self
                .report
                .day_agreement
                .get_or_insert_with(|| DayAgreement {
                    price_tolerance: PRICE_TOLERANCE,
                    volume_tolerance: VOLUME_TOLERANCE,
                    ..DayAgreement::default()
                });
            match day_bars.get(&fold.date) {
                None => agreement.days_without_day_bar += 1,
                Some(day) => {
                    agreement.days_compared += 1;
                    let mut disagrees = false;
                    for (field, minutes, bar, tolerance) in [
                        ("high", fold.high, day.high(), PRICE_TOLERANCE),
                        ("low", fold.low, day.low(), PRICE_TOLERANCE),
                        ("volume", fold.volume, day.volume(), VOLUME_TOLERANCE),
                    ] {
                        if (minutes - bar).abs() > tolerance * bar.abs() {
                            disagrees = true;
                            if self.disagreements.len() < QUALITY_EXAMPLES {
                                self.disagreements.push(Disagreement {
                                    date: fold.date,
                                    field: field.to_owned(),
                                    from_minutes: minutes,
                                    day_bar: bar,
                                });
                            }
                        }
                    }
                    if disagrees {
                        agreement.days_disagreeing += 1;
                    }
                }
            }
        }
    }

    /// Counts the day's covered session minutes without a bar.
    fn count_gaps(&mut self, fold: &DayFold) {
        let midnight = ny_midnight(fold.date);
        let at = |m: usize| midnight + TimeDelta::minutes(m as i64);
        let covered = |m: usize| {
            let t = at(m);
            self.report.covered.iter().any(|c| c.contains(t))
        };
        let (mut regular, mut regular_missing) = (0u32, 0u32);
        let (mut extended, mut extended_missing) = (0u32, 0u32);
        let mut run: Option<(usize, usize)> = None;
        for m in 4 * 60..20 * 60 {
            // Minutes are counted from midnight: on a daylight-saving day the clock skips or
            // repeats an hour at 02:00, before the session.
            if !covered(m) {
                continue;
            }
            let has_bar = fold.minutes.get(m).copied().unwrap_or(false);
            let in_regular = (9 * 60 + 30..16 * 60).contains(&m);
            extended += 1;
            if !has_bar {
                extended_missing += 1;
            }
            if in_regular {
                regular += 1;
                if has_bar {
                    if let Some((from, to)) = run.take() {
                        self.gaps.push(gap(at(from), at(to), to - from + 1));
                    }
                } else {
                    regular_missing += 1;
                    run = Some(run.map_or((m, m), |(from, _)| (from, m)));
                }
            }
        }
        if let Some((from, to)) = run {
            self.gaps.push(gap(at(from), at(to), to - from + 1));
        }
        self.gaps
            .sort_by(|a, b| b.minutes.cmp(&a.minutes).then(a.from.cmp(&b.from)));
        self.gaps.truncate(QUALITY_EXAMPLES);
        if let Some(g) = &mut self.report.session_gaps {
            g.regular_minutes += u64::from(regular);
            g.regular_missing += u64::from(regular_missing);
            g.extended_minutes += u64::from(extended);
            g.extended_missing += u64::from(extended_missing);
        }
        if regular_missing > 0 || extended_missing > 0 {
            self.day_gaps.push(DayGaps {
                date: fold.date,
                regular_missing,
                extended_missing,
            });
            if self.day_gaps.len() > 4 * QUALITY_EXAMPLES {
                self.day_gaps.sort_by(|a, b| {
                    b.regular_missing
                        .cmp(&a.regular_missing)
                        .then(a.date.cmp(&b.date))
                });
                self.day_gaps.truncate(QUALITY_EXAMPLES);
            }
        }
    }
}

fn gap(from: DateTime<Utc>, to: DateTime<Utc>, minutes: usize) -> Gap {
    Gap {
        from,
        to,
        minutes: u32::try_from(minutes).unwrap_or(u32::MAX),
    }
}

/// Minutes from New York midnight to `ts`, counted on the clock of that day's midnight (so a
/// daylight-saving day keeps 1,440 slots).
fn minute_of_day(ts: DateTime<Utc>) -> u32 {
    let date = ts.with_timezone(&New_York).date_naive();
    u32::try_from((ts - ny_midnight(date)).num_minutes()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ohlcv, RangeBound};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn bar(tf: &str, ts: DateTime<Utc>, o: f64, h: f64, l: f64, c: f64, v: f64) -> Candle {
        Candle::new(
            Symbol::parse("AAPL").unwrap(),
            Timeframe::parse(tf).unwrap(),
            ts,
            Ohlcv {
                open: o,
                high: h,
                low: l,
                close: c,
                volume: v,
                vwap: None,
                trades: None,
            },
        )
        .unwrap()
    }

    fn days(from: &str, to: &str) -> DateRange {
        DateRange::new(
            RangeBound::parse(from).unwrap(),
            RangeBound::parse(to).unwrap(),
        )
        .unwrap()
    }

    /// Every extended-session minute of a day, except those in `skip` (minutes from midnight).
    fn day_of_minutes(date: &str, skip: &[std::ops::Range<i64>]) -> Vec<Candle> {
        let midnight = ny_midnight(date.parse().unwrap());
        (4 * 60..20 * 60)
            .filter(|m| !skip.iter().any(|r| r.contains(m)))
            .map(|m| {
                bar(
                    "1m",
                    midnight + TimeDelta::minutes(m),
                    10.0,
                    10.5,
                    9.5,
                    10.0,
                    100.0,
                )
            })
            .collect()
    }

    #[test]
    fn missing_session_minutes_and_days_are_counted_and_located() {
        // Wednesday 2024-03-06 to Tuesday 2024-03-12: five weekdays; Friday has no bars at all,
        // Wednesday misses 09:31-09:40 and 19:00-19:59, the others are complete.
        let range = days("2024-03-06", "2024-03-12");
        let mut check = QualityCheck::new(
            Symbol::parse("AAPL").unwrap(),
            Timeframe::parse("1m").unwrap(),
            true,
            range,
            &[range],
            at("2030-01-01T00:00:00Z"),
        );
        let mut bars = day_of_minutes("2024-03-06", &[571..581, 1140..1200]);
        bars.extend(day_of_minutes("2024-03-07", &[]));
        bars.extend(day_of_minutes("2024-03-11", &[]));
        bars.extend(day_of_minutes("2024-03-12", &[]));
        for b in &bars {
            check.push(b);
        }
        let report = check.finish();
        assert_eq!(report.bars, bars.len() as u64);
        assert_eq!(report.days.covered, 5);
        assert_eq!(report.days.with_bars, 4);
        assert_eq!(
            report.days.without_bars_dates,
            vec!["2024-03-08".parse::<NaiveDate>().unwrap()]
        );
        let gaps = report.session_gaps.unwrap();
        assert_eq!(gaps.regular_minutes, 4 * 390);
        assert_eq!(gaps.regular_missing, 10);
        assert_eq!(gaps.extended_minutes, 4 * 960);
        assert_eq!(gaps.extended_missing, 70);
        assert_eq!(gaps.worst_days.len(), 1);
        assert_eq!(gaps.worst_days[0].regular_missing, 10);
        assert_eq!(gaps.worst_days[0].extended_missing, 70);
        // 09:31 to 09:40 EST is 14:31 to 14:40 UTC.
        assert_eq!(
            gaps.longest_gaps,
            vec![Gap {
                from: at("2024-03-06T14:31:00Z"),
                to: at("2024-03-06T14:40:00Z"),
                minutes: 10
            }]
        );
        assert_eq!(report.ohlc.violations, 0);
        assert_eq!(report.outside_session, 0);
    }

    #[test]
    fn only_covered_minutes_are_expected() {
        // Covered from 10:00 EST on a day whose bars start then: nothing is missing.
        let range =
            DateRange::from_instants(at("2024-03-06T15:00:00Z"), at("2024-03-06T23:59:00Z"))
                .unwrap();
        let mut check = QualityCheck::new(
            Symbol::parse("AAPL").unwrap(),
            Timeframe::parse("1m").unwrap(),
            true,
            range,
            &[range],
            at("2030-01-01T00:00:00Z"),
        );
        let skip = std::iter::once(240..600).collect::<Vec<_>>();
        for b in day_of_minutes("2024-03-06", &skip) {
            check.push(&b);
        }
        let gaps = check.finish().session_gaps.unwrap();
        assert_eq!(gaps.regular_missing, 0);
        assert_eq!(gaps.extended_missing, 0);
        assert_eq!(gaps.regular_minutes, 360);
    }

    #[test]
    fn contradictory_values_and_bars_outside_the_session_are_counted() {
        let range = days("2024-03-06", "2024-03-06");
        let mut check = QualityCheck::new(
            Symbol::parse("AAPL").unwrap(),
            Timeframe::parse("5m").unwrap(),
            true,
            range,
            &[range],
            at("2030-01-01T00:00:00Z"),
        );
        // 02:00 EST: outside the session; then open above high.
        check.push(&bar(
            "5m",
            at("2024-03-06T07:00:00Z"),
            1.0,
            1.0,
            1.0,
            1.0,
            1.0,
        ));
        check.push(&bar(
            "5m",
            at("2024-03-06T15:00:00Z"),
            11.0,
            10.0,
            9.0,
            9.5,
            1.0,
        ));
        let report = check.finish();
        assert_eq!(report.outside_session, 1);
        assert_eq!(report.ohlc.violations, 1);
        assert!(report.ohlc.examples[0]
            .problem
            .contains("open 11 above high 10"));
        assert!(report.session_gaps.is_none(), "5m bars have no minute gaps");
    }

    #[test]
    fn minute_bars_are_compared_with_day_bars_within_tolerances() {
        let range = days("2024-03-06", "2024-03-08");
        let minutes: Vec<Candle> = ["2024-03-06", "2024-03-07"]
            .iter()
            .flat_map(|d| day_of_minutes(d, &[]))
            .collect();
        let midnight = |d: &str| ny_midnight(d.parse().unwrap());
        let day_bars = vec![
            // Agrees: high 10.5, low 9.5, volume 96,000.
            bar(
                "1d",
                midnight("2024-03-06"),
                10.0,
                10.5,
                9.5,
                10.0,
                96_000.0,
            ),
            // The high disagrees (10.6 against 10.5) and the volume too.
            bar(
                "1d",
                midnight("2024-03-07"),
                10.0,
                10.6,
                9.5,
                10.0,
                50_000.0,
            ),
            // No minutes that day.
            bar("1d", midnight("2024-03-08"), 10.0, 10.5, 9.5, 10.0, 1.0),
        ];
        let mut check = QualityCheck::new(
            Symbol::parse("AAPL").unwrap(),
            Timeframe::parse("1m").unwrap(),
            true,
            range,
            &[range],
            at("2030-01-01T00:00:00Z"),
        )
        .with_day_bars(day_bars);
        for b in &minutes {
            check.push(b);
        }
        let agreement = check.finish().day_agreement.unwrap();
        assert_eq!(agreement.days_compared, 2);
        assert_eq!(agreement.days_disagreeing, 1);
        assert_eq!(agreement.day_bars_without_minutes, 1);
        let fields: Vec<&str> = agreement
            .examples
            .iter()
            .map(|d| d.field.as_str())
            .collect();
        assert_eq!(fields, ["high", "volume"]);
        assert_eq!(agreement.examples[0].from_minutes, 10.5);
        assert_eq!(agreement.examples[0].day_bar, 10.6);
    }

    #[test]
    fn crypto_days_are_every_day_and_have_no_session_gaps() {
        let range = days("2024-03-08", "2024-03-11");
        let check = QualityCheck::new(
            Symbol::parse("X:BTCUSD").unwrap(),
            Timeframe::parse("1m").unwrap(),
            true,
            range,
            &[range],
            at("2030-01-01T00:00:00Z"),
        );
        let report = check.finish();
        assert_eq!(report.days.covered, 4);
        assert_eq!(report.days.without_bars, 4);
        assert!(report.session_gaps.is_none());
    }
}
