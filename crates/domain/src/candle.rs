use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{Symbol, Timeframe};

/// The values of one bar. Plain data; [`Candle::new`] checks them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ohlcv {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Polygon sends fractional volumes (crypto, and some equities), so this is a float.
    pub volume: f64,
    /// Volume-weighted average price, when Polygon sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vwap: Option<f64>,
    /// Number of trades, when Polygon sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trades: Option<u64>,
}

/// One OHLCV bar of a symbol at a timeframe, starting at `ts` (UTC).
///
/// Non-finite numbers and negative volumes are rejected because they cannot be stored honestly.
/// Other upstream quirks, such as an open outside the high-low span, are real data and are kept;
/// [`Candle::is_inconsistent`] tells them apart so that callers can count and log them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CandleRepr")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Candle {
    symbol: Symbol,
    timeframe: Timeframe,
    /// The start of the bar, UTC.
    ts: DateTime<Utc>,
    #[serde(flatten)]
    values: Ohlcv,
}

impl Candle {
    /// Checks the values and builds the candle.
    pub fn new(
        symbol: Symbol,
        timeframe: Timeframe,
        ts: DateTime<Utc>,
        values: Ohlcv,
    ) -> Result<Self> {
        let Ohlcv {
            open,
            high,
            low,
            close,
            volume,
            vwap,
            trades: _,
        } = values;
        for (name, v) in [
            ("open", open),
            ("high", high),
            ("low", low),
            ("close", close),
            ("volume", volume),
        ] {
            if !v.is_finite() {
                return Err(Error::InvalidCandle(format!(
                    "{symbol} at {ts}: {name} is not a finite number ({v})"
                )));
            }
        }
        if let Some(v) = vwap.filter(|v| !v.is_finite()) {
            return Err(Error::InvalidCandle(format!(
                "{symbol} at {ts}: vwap is not a finite number ({v})"
            )));
        }
        if volume < 0.0 {
            return Err(Error::InvalidCandle(format!(
                "{symbol} at {ts}: volume is negative ({volume})"
            )));
        }
        Ok(Self {
            symbol,
            timeframe,
            ts,
            values,
        })
    }

    pub fn symbol(&self) -> &Symbol {
        &self.symbol
    }

    pub fn timeframe(&self) -> Timeframe {
        self.timeframe
    }

    /// The start of the bar.
    pub fn ts(&self) -> DateTime<Utc> {
        self.ts
    }

    pub fn values(&self) -> &Ohlcv {
        &self.values
    }

    pub fn open(&self) -> f64 {
        self.values.open
    }

    pub fn high(&self) -> f64 {
        self.values.high
    }

    pub fn low(&self) -> f64 {
        self.values.low
    }

    pub fn close(&self) -> f64 {
        self.values.close
    }

    pub fn volume(&self) -> f64 {
        self.values.volume
    }

    pub fn vwap(&self) -> Option<f64> {
        self.values.vwap
    }

    pub fn trades(&self) -> Option<u64> {
        self.values.trades
    }

    /// True when the bar contradicts itself (high below low, or open or close outside the
    /// high-low span). Such bars are kept: they are what upstream published.
    pub fn is_inconsistent(&self) -> bool {
        let Ohlcv {
            open,
            high,
            low,
            close,
            ..
        } = self.values;
        high < low || !(low..=high).contains(&open) || !(low..=high).contains(&close)
    }
}

#[derive(Deserialize)]
struct CandleRepr {
    symbol: Symbol,
    timeframe: Timeframe,
    ts: DateTime<Utc>,
    #[serde(flatten)]
    values: Ohlcv,
}

impl TryFrom<CandleRepr> for Candle {
    type Error = Error;
    fn try_from(r: CandleRepr) -> Result<Self> {
        Self::new(r.symbol, r.timeframe, r.ts, r.values)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn values() -> Ohlcv {
        Ohlcv {
            open: 10.0,
            high: 12.0,
            low: 9.5,
            close: 11.0,
            volume: 1_029_145.5,
            vwap: Some(10.7),
            trades: Some(42),
        }
    }

    fn candle(v: Ohlcv) -> Result<Candle> {
        Candle::new(
            Symbol::parse("AAPL").unwrap(),
            Timeframe::parse("1m").unwrap(),
            DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            v,
        )
    }

    #[test]
    fn accepts_fractional_volume_and_optional_fields() {
        let c = candle(Ohlcv {
            vwap: None,
            trades: None,
            ..values()
        })
        .unwrap();
        assert_eq!(c.volume(), 1_029_145.5);
        assert_eq!(c.vwap(), None);
        assert!(!c.is_inconsistent());
    }

    #[test]
    fn rejects_non_finite_numbers_and_negative_volume() {
        for v in [
            Ohlcv {
                open: f64::NAN,
                ..values()
            },
            Ohlcv {
                high: f64::INFINITY,
                ..values()
            },
            Ohlcv {
                close: f64::NEG_INFINITY,
                ..values()
            },
            Ohlcv {
                volume: -1.0,
                ..values()
            },
            Ohlcv {
                vwap: Some(f64::NAN),
                ..values()
            },
        ] {
            let err = candle(v).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCandle(ref m) if m.contains("AAPL")),
                "{err}"
            );
        }
    }

    #[test]
    fn keeps_upstream_quirks_and_flags_them() {
        let c = candle(Ohlcv {
            open: 13.0,
            ..values()
        })
        .unwrap();
        assert!(c.is_inconsistent());
        let c = candle(Ohlcv {
            high: 9.0,
            ..values()
        })
        .unwrap();
        assert!(c.is_inconsistent());
    }

    #[test]
    fn serde_is_flat_and_validated() {
        let c = candle(values()).unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["symbol"], "AAPL");
        assert_eq!(json["timeframe"], "1m");
        assert_eq!(json["close"], 11.0);
        assert_eq!(serde_json::from_value::<Candle>(json.clone()).unwrap(), c);
        let mut bad = json;
        bad["volume"] = serde_json::json!(-5.0);
        assert!(serde_json::from_value::<Candle>(bad).is_err());
    }

    proptest! {
        #[test]
        fn finite_values_round_trip_through_json(
            o in -1e12f64..1e12, h in -1e12f64..1e12, l in -1e12f64..1e12, c in -1e12f64..1e12,
            v in 0f64..1e15, vw in proptest::option::of(-1e12f64..1e12), n in proptest::option::of(any::<u64>()),
        ) {
            let candle = candle(Ohlcv { open: o, high: h, low: l, close: c, volume: v, vwap: vw, trades: n }).unwrap();
            let json = serde_json::to_string(&candle).unwrap();
            prop_assert_eq!(serde_json::from_str::<Candle>(&json).unwrap(), candle);
        }
    }
}
