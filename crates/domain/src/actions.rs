//! Corporate actions: stock splits and cash dividends, when a stored split-adjusted series goes
//! stale, and a raw series adjusted for splits on the fly.
//!
//! Polygon adjusts a series for every split executed by the time it is fetched: bars before a
//! split's execution date have their prices divided by the split's ratio (`split_to /
//! split_from`) and their volumes multiplied by it. So a stored adjusted series is **stale** once
//! a split has executed after the day it was last fetched ([`stale_split`]), and a raw series
//! becomes the adjusted one by applying, to each bar, the product of the ratios of the splits
//! executed after the bar's New York day ([`SplitAdjuster`]).

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::America::New_York;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{BackfillMode, Candle, DateRange, JobSpec, Ohlcv, Symbol, Timeframe};

/// One stock split: `split_from` old shares became `split_to` new ones on `execution_date`
/// (a 4-for-1 split is `1 -> 4`; a 1-for-10 reverse split is `10 -> 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Split {
    pub ticker: Symbol,
    /// The first trading day on the new basis (a New York date).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date, example = "2020-08-31"))]
    pub execution_date: NaiveDate,
    pub split_from: f64,
    pub split_to: f64,
}

impl Split {
    /// Checks that both sides are finite and positive.
    pub fn new(
        ticker: Symbol,
        execution_date: NaiveDate,
        split_from: f64,
        split_to: f64,
    ) -> Result<Self> {
        for (name, v) in [("split_from", split_from), ("split_to", split_to)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::InvalidCandle(format!(
                    "split of {ticker} on {execution_date}: {name} must be a positive number ({v})"
                )));
            }
        }
        Ok(Self {
            ticker,
            execution_date,
            split_from,
            split_to,
        })
    }

    /// What a price before the split is divided by (and a volume multiplied by): 4 for a
    /// 4-for-1 split, 0.1 for a 1-for-10 reverse split.
    pub fn ratio(&self) -> f64 {
        self.split_to / self.split_from
    }
}

/// One cash dividend, as Polygon's reference dividends list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dividend {
    pub ticker: Symbol,
    /// The first day the stock trades without the dividend (a New York date).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date, example = "2024-02-09"))]
    pub ex_dividend_date: NaiveDate,
    /// The cash paid per share, in `currency`.
    pub cash_amount: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub declaration_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub record_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub pay_date: Option<NaiveDate>,
    /// Payments a year: 0 (one-time), 1, 2, 4, 12, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<u32>,
    /// Polygon's type code: `CD` (regular cash), `SC` (special cash), `LT`, `ST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dividend_type: Option<String>,
}

/// The New York date of an instant: the calendar splits execute on.
pub fn new_york_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&New_York).date_naive()
}

/// The split that makes an adjusted series fetched at `fetched_at` stale as of `today` (both
/// New York days): the latest split executed after the fetch's day and by `today`. A split
/// executed on the fetch's day is taken as reflected (Polygon adjusts before the session
/// opens); one still to come makes nothing stale yet.
pub fn stale_split(
    fetched_at: DateTime<Utc>,
    splits: &[Split],
    today: NaiveDate,
) -> Option<&Split> {
    let fetched = new_york_date(fetched_at);
    splits
        .iter()
        .filter(|s| s.execution_date > fetched && s.execution_date <= today)
        .max_by_key(|s| s.execution_date)
}

/// An adjusted series of a symbol and whether it is stale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesFreshness {
    pub timeframe: Timeframe,
    /// When an adjusted job last stored the whole series (absent: never recorded).
    pub adjusted_fetched_at: Option<DateTime<Utc>>,
    /// The latest split executed after that fetch (absent: not stale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_since: Option<Split>,
}

impl SeriesFreshness {
    /// Judges a series from its last adjusted fetch and the symbol's splits; a series without
    /// a recorded fetch is stale when any split executed by `today` is known.
    pub fn judge(
        timeframe: Timeframe,
        adjusted_fetched_at: Option<DateTime<Utc>>,
        splits: &[Split],
        today: NaiveDate,
    ) -> Self {
        let stale_since = match adjusted_fetched_at {
            Some(at) => stale_split(at, splits, today).cloned(),
            None => splits
                .iter()
                .filter(|s| s.execution_date <= today)
                .max_by_key(|s| s.execution_date)
                .cloned(),
        };
        Self {
            timeframe,
            adjusted_fetched_at,
            stale_since,
        }
    }

    pub fn is_stale(&self) -> bool {
        self.stale_since.is_some()
    }
}

/// The job that stores a stale adjusted series whole again: `full`, split-adjusted, of one
/// symbol, over every interval the series covers (`covered`, in order) and on to `until` when
/// that is later (the day a schedule's own run reaches). `None` when the series covers nothing.
///
/// # Errors
/// As [`JobSpec::new`].
pub fn refetch_spec(
    symbol: &Symbol,
    timeframe: Timeframe,
    covered: &[DateRange],
    until: Option<DateTime<Utc>>,
) -> Result<Option<JobSpec>> {
    let (Some(first), Some(last)) = (covered.first(), covered.last()) else {
        return Ok(None);
    };
    let to = until.map_or(last.to(), |u| u.max(last.to()));
    let range = DateRange::from_instants(first.from(), to)?;
    JobSpec::new(
        vec![symbol.clone()],
        timeframe,
        range,
        true,
        BackfillMode::Full,
    )
    .map(Some)
}

/// The idempotency key of the job that fetches a series again after `split`: one such job per
/// series and split, however many processes find the series stale.
pub fn refetch_key(timeframe: Timeframe, split: &Split) -> String {
    format!(
        "split-refetch:{}:{timeframe}:{}",
        split.ticker, split.execution_date
    )
}

/// Adjusts raw candles for splits, as Polygon's adjusted series is built: a bar whose New York
/// day is before a split's execution date has its open, high, low, close and vwap divided by
/// the split's ratio and its volume multiplied by it (the products over every later split);
/// trade counts are unchanged.
///
/// A bar is placed by the New York day it starts on, so a week or a longer bar that spans a
/// split is adjusted as a whole by the splits after its start (Polygon builds it from adjusted
/// days: its prices before the split then differ).
#[derive(Debug, Clone)]
pub struct SplitAdjuster {
    /// Execution dates ascending, with the product of the ratios of that split and every later
    /// one.
    cumulative: Vec<(NaiveDate, f64)>,
}

impl SplitAdjuster {
    /// An adjuster for the splits of one symbol (in any order).
    pub fn new(splits: &[Split]) -> Self {
        let mut sorted: Vec<&Split> = splits.iter().collect();
        sorted.sort_by_key(|s| s.execution_date);
        let mut cumulative: Vec<(NaiveDate, f64)> = Vec::with_capacity(sorted.len());
        let mut product = 1.0;
        for split in sorted.iter().rev() {
            product *= split.ratio();
            cumulative.push((split.execution_date, product));
        }
        cumulative.reverse();
        Self { cumulative }
    }

    /// The factor of a bar starting at `ts`: the product of the ratios of the splits executed
    /// after its New York day (1 when none).
    pub fn factor(&self, ts: DateTime<Utc>) -> f64 {
        let day = new_york_date(ts);
        let first_later = self.cumulative.partition_point(|(date, _)| *date <= day);
        self.cumulative.get(first_later).map_or(1.0, |(_, f)| *f)
    }

    /// The candle as its split-adjusted series has it.
    pub fn adjust(&self, candle: &Candle) -> Candle {
        let factor = self.factor(candle.ts());
        if factor == 1.0 {
            return candle.clone();
        }
        let v = candle.values();
        let values = Ohlcv {
            open: v.open / factor,
            high: v.high / factor,
            low: v.low / factor,
            close: v.close / factor,
            volume: v.volume * factor,
            vwap: v.vwap.map(|w| w / factor),
            trades: v.trades,
        };
        // Finite positive factors keep the values finite and the volume non-negative.
        Candle::new(
            candle.symbol().clone(),
            candle.timeframe(),
            candle.ts(),
            values,
        )
        .unwrap_or_else(|_| candle.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn split(date: &str, from: f64, to: f64) -> Split {
        Split::new(Symbol::parse("AAPL").unwrap(), day(date), from, to).unwrap()
    }

    fn candle(ts: &str, price: f64, volume: f64) -> Candle {
        Candle::new(
            Symbol::parse("AAPL").unwrap(),
            Timeframe::parse("1d").unwrap(),
            ts.parse().unwrap(),
            Ohlcv {
                open: price,
                high: price * 1.1,
                low: price * 0.9,
                close: price,
                volume,
                vwap: Some(price),
                trades: Some(7),
            },
        )
        .unwrap()
    }

    #[test]
    fn splits_need_positive_sides() {
        assert_eq!(split("2020-08-31", 1.0, 4.0).ratio(), 4.0);
        assert_eq!(split("2020-08-31", 10.0, 1.0).ratio(), 0.1);
        for (from, to) in [
            (0.0, 4.0),
            (1.0, -2.0),
            (f64::NAN, 1.0),
            (1.0, f64::INFINITY),
        ] {
            let err = Split::new(Symbol::parse("A").unwrap(), day("2020-01-02"), from, to);
            assert!(err.is_err(), "{from} {to}");
        }
    }

    #[test]
    fn bars_before_each_split_take_the_product_of_the_later_ratios() {
        let adjuster =
            SplitAdjuster::new(&[split("2020-08-31", 1.0, 4.0), split("2014-06-09", 1.0, 7.0)]);
        // New York days: 2014-06-06 is before both, 2014-06-09 on the first, 2020-08-28 between.
        assert_eq!(
            adjuster.factor("2014-06-06T04:00:00Z".parse().unwrap()),
            28.0
        );
        assert_eq!(
            adjuster.factor("2014-06-09T04:00:00Z".parse().unwrap()),
            4.0
        );
        // 01:00 UTC on the 31st is still the 30th in New York.
        assert_eq!(
            adjuster.factor("2020-08-31T01:00:00Z".parse().unwrap()),
            4.0
        );
        assert_eq!(
            adjuster.factor("2020-08-31T04:00:00Z".parse().unwrap()),
            1.0
        );
        let raw = candle("2014-06-06T04:00:00Z", 280.0, 100.0);
        let adjusted = adjuster.adjust(&raw);
        assert_eq!(adjusted.open(), 10.0);
        assert_eq!(adjusted.close(), 10.0);
        assert!((adjusted.high() - 11.0).abs() < 1e-12);
        assert_eq!(adjusted.volume(), 2_800.0);
        assert_eq!(adjusted.vwap(), Some(10.0));
        assert_eq!(adjusted.trades(), Some(7));
        let after = candle("2021-01-04T05:00:00Z", 130.0, 5.0);
        assert_eq!(adjuster.adjust(&after), after);
        assert_eq!(SplitAdjuster::new(&[]).adjust(&raw), raw);
    }

    #[test]
    fn a_series_is_stale_once_a_split_executes_after_the_day_it_was_fetched() {
        let splits = [
            split("2024-06-10", 1.0, 10.0),
            split("2020-08-31", 1.0, 4.0),
        ];
        let fetched: DateTime<Utc> = "2024-06-07T20:00:00Z".parse().unwrap();
        // Not yet executed: nothing is stale.
        assert_eq!(stale_split(fetched, &splits, day("2024-06-09")), None);
        assert_eq!(
            stale_split(fetched, &splits, day("2024-06-10")),
            Some(&splits[0])
        );
        // Fetched on the execution day (New York): reflected.
        let same_day: DateTime<Utc> = "2024-06-10T13:00:00Z".parse().unwrap();
        assert_eq!(stale_split(same_day, &splits, day("2024-07-01")), None);
        let tf = Timeframe::parse("1d").unwrap();
        let fresh = SeriesFreshness::judge(tf, Some(same_day), &splits, day("2024-07-01"));
        assert!(!fresh.is_stale());
        let stale = SeriesFreshness::judge(tf, Some(fetched), &splits, day("2024-07-01"));
        assert_eq!(stale.stale_since.as_ref(), Some(&splits[0]));
        let unknown = SeriesFreshness::judge(tf, None, &splits, day("2021-01-01"));
        assert_eq!(unknown.stale_since.as_ref(), Some(&splits[1]));
        assert!(!SeriesFreshness::judge(tf, None, &[], day("2021-01-01")).is_stale());
    }
}
