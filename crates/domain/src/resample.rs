//! Reading a stored series as a coarser timeframe, without new requests: minutes as 5-minute,
//! hourly or daily bars in New York sessions, days as weeks or months.
//!
//! Buckets follow Polygon's: intraday bars snap to multiples of their length from New York
//! midnight (an hour bar starts at the top of the hour), day bars to New York midnight, week
//! bars to Sunday, month, quarter and year bars to their first day.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::America::New_York;
use serde::{Deserialize, Serialize};

use crate::{Candle, Error, Ohlcv, Result, Timeframe, Timespan};

/// Which bars of a day a resampled series is built from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Hours {
    /// Bars starting from 09:30 to before 16:00 New York time: the regular session.
    Regular,
    /// Every stored bar: for stocks, the extended session from 04:00 to 20:00.
    #[default]
    Extended,
}

impl Hours {
    /// Whether a bar starting at `ts` belongs to these hours.
    pub fn contains(self, ts: DateTime<Utc>) -> bool {
        match self {
            Self::Extended => true,
            Self::Regular => {
                let t = ts.with_timezone(&New_York).time();
                t >= REGULAR_OPEN && t < REGULAR_CLOSE
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Regular => "regular",
            Self::Extended => "extended",
        }
    }
}

/// The regular session, New York time.
pub(crate) const REGULAR_OPEN: NaiveTime = match NaiveTime::from_hms_opt(9, 30, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};
pub(crate) const REGULAR_CLOSE: NaiveTime = match NaiveTime::from_hms_opt(16, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// The start of the New York day `date`, as an instant.
pub(crate) fn ny_midnight(date: NaiveDate) -> DateTime<Utc> {
    let naive = date.and_time(NaiveTime::MIN);
    naive
        .and_local_timezone(New_York)
        .earliest()
        .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc))
}

/// Builds coarser bars from finer ones pushed in time order.
#[derive(Debug, Clone)]
pub struct Resampler {
    source: Timeframe,
    target: Timeframe,
    hours: Hours,
    current: Option<Bucket>,
}

#[derive(Debug, Clone)]
struct Bucket {
    start: DateTime<Utc>,
    first: Candle,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    /// Sum of vwap x volume, while every bar has a vwap.
    vwap_volume: Option<f64>,
    trades: Option<u64>,
    last_ts: DateTime<Utc>,
}

impl Resampler {
    /// A resampler from `source` bars to `target` bars over `hours`.
    ///
    /// # Errors
    /// [`Error::InvalidTimeframe`] when `target` is not coarser than `source`, is not a whole
    /// number of `source` bars, or is a calendar bar other than 1d, 1w, 1mo, 1q or 1y; regular
    /// hours with day (or coarser) source bars.
    pub fn new(source: Timeframe, target: Timeframe, hours: Hours) -> Result<Self> {
        let refuse = |reason: String| Error::InvalidTimeframe {
            input: target.to_string(),
            reason,
        };
        let intraday = |t: Timeframe| {
            matches!(
                t.timespan(),
                Timespan::Second | Timespan::Minute | Timespan::Hour
            )
        };
        let one_day = source.timespan() == Timespan::Day && source.multiplier() == 1;
        if !(intraday(source) || one_day) {
            return Err(refuse(format!(
                "only intraday or 1d series can be resampled, not {source}"
            )));
        }
        if intraday(target) {
            let (s, t) = (
                source.duration().unwrap_or(TimeDelta::MAX),
                target.duration().unwrap_or(TimeDelta::zero()),
            );
            if !intraday(source) || t <= s || t.num_seconds() % s.num_seconds() != 0 {
                return Err(refuse(format!(
                    "{target} bars cannot be built from {source} bars: the target must be a \
                     whole number (2 or more) of source bars"
                )));
            }
            if TimeDelta::days(1).num_seconds() % t.num_seconds() != 0 {
                return Err(refuse(format!(
                    "{target} does not divide a day; use a length that does (5m, 15m, 30m, 1h, \
                     2h, 4h, ...)"
                )));
            }
        } else {
            if target.multiplier() != 1 {
                return Err(refuse(
                    "calendar bars can be resampled to 1d, 1w, 1mo, 1q or 1y only".to_owned(),
                ));
            }
            if target.timespan() == Timespan::Day && !intraday(source) {
                return Err(refuse(format!(
                    "{target} bars cannot be built from {source} bars: the target must be \
                     coarser"
                )));
            }
        }
        if hours == Hours::Regular && !intraday(source) {
            return Err(refuse(format!(
                "regular hours need intraday source bars; {source} bars cover whole days"
            )));
        }
        Ok(Self {
            source,
            target,
            hours,
            current: None,
        })
    }

    /// The timeframe of the bars built.
    pub fn target(&self) -> Timeframe {
        self.target
    }

    /// The start of the target bar that holds a source bar starting at `ts`.
    pub fn bucket(&self, ts: DateTime<Utc>) -> DateTime<Utc> {
        let local = ts.with_timezone(&New_York);
        let date = local.date_naive();
        match self.target.timespan() {
            Timespan::Second | Timespan::Minute | Timespan::Hour => {
                let midnight = ny_midnight(date);
                let len = self
                    .target
                    .duration()
                    .map_or(1, |d| d.num_milliseconds().max(1));
                let offset = (ts - midnight).num_milliseconds();
                midnight + TimeDelta::milliseconds(offset - offset.rem_euclid(len))
            }
            Timespan::Day => ny_midnight(date),
            Timespan::Week => {
                let back = u64::from(date.weekday().num_days_from_sunday());
                ny_midnight(date.checked_sub_days(Days::new(back)).unwrap_or(date))
            }
            Timespan::Month => ny_midnight(date.with_day(1).unwrap_or(date)),
            Timespan::Quarter => {
                let month = (date.month0() / 3) * 3 + 1;
                ny_midnight(NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date))
            }
            Timespan::Year => {
                ny_midnight(NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date))
            }
        }
    }

    /// Adds the next source bar (in time order); returns the target bar it completed, if any.
    ///
    /// # Errors
    /// [`Error::InvalidCandle`] for a bar of another timeframe or out of order.
    pub fn push(&mut self, candle: &Candle) -> Result<Option<Candle>> {
        if candle.timeframe() != self.source {
            return Err(Error::InvalidCandle(format!(
                "a {} bar in a resampling of {} bars",
                candle.timeframe(),
                self.source
            )));
        }
        if !self.hours.contains(candle.ts()) {
            return Ok(None);
        }
        let start = self.bucket(candle.ts());
        let done = match &mut self.current {
            Some(b) if b.start == start => {
                if candle.ts() <= b.last_ts {
                    return Err(Error::InvalidCandle(format!(
                        "{} at {}: bars must come in time order",
                        candle.symbol(),
                        candle.ts()
                    )));
                }
                b.add(candle);
                return Ok(None);
            }
            Some(b) if start < b.start => {
                return Err(Error::InvalidCandle(format!(
                    "{} at {}: bars must come in time order",
                    candle.symbol(),
                    candle.ts()
                )));
            }
            _ => self.current.replace(Bucket::new(start, candle)),
        };
        done.map(|b| b.finish(self.target)).transpose()
    }

    /// The last, partly filled target bar, if any.
    ///
    /// # Errors
    /// Never for bars that were accepted; the result leaves room for it.
    pub fn finish(&mut self) -> Result<Option<Candle>> {
        self.current
            .take()
            .map(|b| b.finish(self.target))
            .transpose()
    }
}

impl Bucket {
    fn new(start: DateTime<Utc>, c: &Candle) -> Self {
        Self {
            start,
            first: c.clone(),
            high: c.high(),
            low: c.low(),
            close: c.close(),
            volume: c.volume(),
            vwap_volume: c.vwap().map(|v| v * c.volume()),
            trades: c.trades(),
            last_ts: c.ts(),
        }
    }

    fn add(&mut self, c: &Candle) {
        self.high = self.high.max(c.high());
        self.low = self.low.min(c.low());
        self.close = c.close();
        self.volume += c.volume();
        self.vwap_volume = self
            .vwap_volume
            .zip(c.vwap())
            .map(|(sum, v)| sum + v * c.volume());
        self.trades = self.trades.zip(c.trades()).map(|(a, b)| a + b);
        self.last_ts = c.ts();
    }

    fn finish(self, target: Timeframe) -> Result<Candle> {
        let vwap = self
            .vwap_volume
            .filter(|_| self.volume > 0.0)
            .map(|sum| sum / self.volume);
        Candle::new(
            self.first.symbol().clone(),
            target,
            self.start,
            Ohlcv {
                open: self.first.open(),
                high: self.high,
                low: self.low,
                close: self.close,
                volume: self.volume,
                vwap,
                trades: self.trades,
            },
        )
    }
}

/// Resamples a whole series at once (see [`Resampler`]).
///
/// # Errors
/// As [`Resampler::new`] and [`Resampler::push`].
pub fn resample(
    candles: &[Candle],
    source: Timeframe,
    target: Timeframe,
    hours: Hours,
) -> Result<Vec<Candle>> {
    let mut r = Resampler::new(source, target, hours)?;
    let mut out = Vec::new();
    for c in candles {
        out.extend(r.push(c)?);
    }
    out.extend(r.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Symbol;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn bar(tf: &str, ts: &str, o: f64, h: f64, l: f64, c: f64, v: f64) -> Candle {
        Candle::new(
            Symbol::parse("AAPL").unwrap(),
            Timeframe::parse(tf).unwrap(),
            at(ts),
            Ohlcv {
                open: o,
                high: h,
                low: l,
                close: c,
                volume: v,
                vwap: Some((h + l) / 2.0),
                trades: Some(v as u64 / 10),
            },
        )
        .unwrap()
    }

    fn tf(s: &str) -> Timeframe {
        Timeframe::parse(s).unwrap()
    }

    #[test]
    fn minutes_become_five_minute_bars_with_ohlcv_folded() {
        // 2024-03-08 (EST, UTC-5): 09:30 New York is 14:30 UTC.
        let minutes = [
            bar("1m", "2024-03-08T14:30:00Z", 10.0, 11.0, 9.5, 10.5, 100.0),
            bar("1m", "2024-03-08T14:31:00Z", 10.5, 12.0, 10.0, 11.0, 300.0),
            bar("1m", "2024-03-08T14:34:00Z", 11.0, 11.5, 8.0, 9.0, 100.0),
            bar("1m", "2024-03-08T14:35:00Z", 9.0, 9.5, 8.5, 9.2, 50.0),
        ];
        let five = resample(&minutes, tf("1m"), tf("5m"), Hours::Extended).unwrap();
        assert_eq!(five.len(), 2);
        let first = &five[0];
        assert_eq!(first.ts(), at("2024-03-08T14:30:00Z"));
        assert_eq!(first.timeframe(), tf("5m"));
        assert_eq!(
            (first.open(), first.high(), first.low(), first.close()),
            (10.0, 12.0, 8.0, 9.0)
        );
        assert_eq!(first.volume(), 500.0);
        assert_eq!(first.trades(), Some(10 + 30 + 10));
        let vwap = (10.25 * 100.0 + 11.0 * 300.0 + 9.75 * 100.0) / 500.0;
        assert!((first.vwap().unwrap() - vwap).abs() < 1e-12);
        assert_eq!(five[1].ts(), at("2024-03-08T14:35:00Z"));
        assert_eq!(five[1].volume(), 50.0);
    }

    #[test]
    fn hours_snap_to_the_top_of_the_hour_and_days_to_new_york_midnight_across_dst() {
        let r = Resampler::new(tf("1m"), tf("1h"), Hours::Extended).unwrap();
        // 09:45 EDT (UTC-4) on 2024-03-11 belongs to the 09:00 New York hour bar.
        assert_eq!(
            r.bucket(at("2024-03-11T13:45:00Z")),
            at("2024-03-11T13:00:00Z")
        );
        let d = Resampler::new(tf("1m"), tf("1d"), Hours::Extended).unwrap();
        assert_eq!(
            d.bucket(at("2024-03-08T20:59:00Z")),
            at("2024-03-08T05:00:00Z")
        );
        assert_eq!(
            d.bucket(at("2024-03-11T08:00:00Z")),
            at("2024-03-11T04:00:00Z")
        );
        let w = Resampler::new(tf("1d"), tf("1w"), Hours::Extended).unwrap();
        // Friday 2024-03-08 belongs to the week of Sunday 2024-03-03.
        assert_eq!(
            w.bucket(at("2024-03-08T05:00:00Z")),
            at("2024-03-03T05:00:00Z")
        );
        let m = Resampler::new(tf("1d"), tf("1mo"), Hours::Extended).unwrap();
        assert_eq!(
            m.bucket(at("2024-03-08T05:00:00Z")),
            at("2024-03-01T05:00:00Z")
        );
        let q = Resampler::new(tf("1d"), tf("1q"), Hours::Extended).unwrap();
        assert_eq!(
            q.bucket(at("2024-05-08T04:00:00Z")),
            at("2024-04-01T04:00:00Z")
        );
    }

    #[test]
    fn regular_hours_keep_only_bars_from_the_open_to_before_the_close() {
        let minutes = [
            bar("1m", "2024-03-08T14:29:00Z", 1.0, 1.0, 1.0, 1.0, 7.0), // 09:29
            bar("1m", "2024-03-08T14:30:00Z", 2.0, 3.0, 2.0, 3.0, 1.0), // 09:30
            bar("1m", "2024-03-08T20:59:00Z", 3.0, 4.0, 3.0, 4.0, 1.0), // 15:59
            bar("1m", "2024-03-08T21:00:00Z", 9.0, 9.0, 9.0, 9.0, 5.0), // 16:00
        ];
        let regular = resample(&minutes, tf("1m"), tf("1d"), Hours::Regular).unwrap();
        assert_eq!(regular.len(), 1);
        assert_eq!(
            (regular[0].open(), regular[0].close(), regular[0].volume()),
            (2.0, 4.0, 2.0)
        );
        let extended = resample(&minutes, tf("1m"), tf("1d"), Hours::Extended).unwrap();
        assert_eq!(
            (
                extended[0].open(),
                extended[0].close(),
                extended[0].volume()
            ),
            (1.0, 9.0, 14.0)
        );
    }

    #[test]
    fn impossible_resamplings_are_refused_with_the_reason() {
        for (source, target, hours, needle) in [
            ("5m", "5m", Hours::Extended, "whole number"),
            ("5m", "7m", Hours::Extended, "whole number"),
            ("1m", "7m", Hours::Extended, "divide a day"),
            ("1h", "1m", Hours::Extended, "whole number"),
            ("1d", "1d", Hours::Extended, "coarser"),
            ("1d", "1w", Hours::Regular, "regular hours"),
            ("1m", "2d", Hours::Extended, "1d, 1w"),
            ("1w", "1mo", Hours::Extended, "intraday or 1d"),
        ] {
            let err = Resampler::new(tf(source), tf(target), hours).unwrap_err();
            assert!(
                err.to_string().contains(needle),
                "{source}->{target}: {err}"
            );
        }
    }

    #[test]
    fn bars_out_of_order_or_of_another_timeframe_are_refused() {
        let mut r = Resampler::new(tf("1m"), tf("5m"), Hours::Extended).unwrap();
        r.push(&bar("1m", "2024-03-08T14:31:00Z", 1.0, 1.0, 1.0, 1.0, 1.0))
            .unwrap();
        assert!(r
            .push(&bar("1m", "2024-03-08T14:30:00Z", 1.0, 1.0, 1.0, 1.0, 1.0))
            .is_err());
        assert!(r
            .push(&bar("5m", "2024-03-08T14:40:00Z", 1.0, 1.0, 1.0, 1.0, 1.0))
            .is_err());
    }

    proptest::proptest! {
        /// Resampling in one go equals resampling in two steps (1m -> 5m -> 15m = 1m -> 15m),
        /// and volume is conserved.
        #[test]
        fn resampling_composes_and_conserves_volume(
            steps in proptest::collection::vec((1i64..4, 1.0f64..100.0, 0.0f64..1000.0), 1..300)
        ) {
            let mut ts = at("2024-03-08T13:00:00Z");
            let mut bars = Vec::new();
            for (gap, price, volume) in steps {
                ts += TimeDelta::minutes(gap);
                bars.push(Candle::new(
                    Symbol::parse("AAPL").unwrap(),
                    tf("1m"),
                    ts,
                    Ohlcv { open: price, high: price + 1.0, low: price - 0.5, close: price,
                            volume, vwap: None, trades: None },
                ).unwrap());
            }
            let direct = resample(&bars, tf("1m"), tf("15m"), Hours::Extended).unwrap();
            let five = resample(&bars, tf("1m"), tf("5m"), Hours::Extended).unwrap();
            let two_steps = resample(&five, tf("5m"), tf("15m"), Hours::Extended).unwrap();
            proptest::prop_assert_eq!(direct.len(), two_steps.len());
            for (a, b) in direct.iter().zip(&two_steps) {
                proptest::prop_assert_eq!(a.ts(), b.ts());
                proptest::prop_assert_eq!(a.open(), b.open());
                proptest::prop_assert_eq!(a.high(), b.high());
                proptest::prop_assert_eq!(a.low(), b.low());
                proptest::prop_assert_eq!(a.close(), b.close());
                proptest::prop_assert!((a.volume() - b.volume()).abs() < 1e-6);
            }
            let total: f64 = bars.iter().map(Candle::volume).sum();
            let resampled: f64 = direct.iter().map(Candle::volume).sum();
            proptest::prop_assert!((total - resampled).abs() < 1e-6);
        }
    }
}
