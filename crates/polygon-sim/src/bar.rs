//! One bar as the simulator serves it: what the generator makes and the renderer writes.

use backfill_domain::{Candle, Ohlcv, Symbol, Timeframe};
use chrono::DateTime;
use serde::Serialize;

/// One bar as the simulator serves it, with Polygon's field names and order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimBar {
    /// Volume.
    pub v: f64,
    /// Volume-weighted average price.
    pub vw: f64,
    /// Open.
    pub o: f64,
    /// Close.
    pub c: f64,
    /// High.
    pub h: f64,
    /// Low.
    pub l: f64,
    /// Start of the bar, Unix milliseconds.
    pub t: i64,
    /// Number of trades.
    pub n: u64,
}

impl SimBar {
    /// The bar as a domain candle.
    pub fn to_candle(&self, symbol: &Symbol, timeframe: Timeframe) -> Option<Candle> {
        let ts = DateTime::from_timestamp_millis(self.t)?;
        let values = Ohlcv {
            open: self.o,
            high: self.h,
            low: self.l,
            close: self.c,
            volume: self.v,
            vwap: Some(self.vw),
            trades: Some(self.n),
        };
        Candle::new(symbol.clone(), timeframe, ts, values).ok()
    }
}
