//! A Polygon-compatible aggregates server for tests, benchmarks and the offline demo: deterministic
//! candles from a seeded random walk, `next_url` pagination, authentication, rate limits and fault
//! injection, with request counters that tests can read.
//!
//! ```no_run
//! # async fn demo() -> backfill_polygon_sim::Result<()> {
//! use backfill_polygon_sim::{Fault, SimConfig, Simulator};
//!
//! let sim = Simulator::new(SimConfig::new().api_key("test-key").max_page_size(1_000));
//! let running = sim.spawn("127.0.0.1:0").await?;
//! running.inject([Fault::Status(503)]);
//! println!("serving on {}", running.base_url());
//! running.shutdown().await
//! # }
//! ```
//!
//! The wire format follows Polygon's: `GET /v2/aggs/ticker/{T}/range/{m}/{span}/{from}/{to}` with
//! `adjusted`, `sort`, `limit` (counting base aggregates) and `cursor`; bodies carry `ticker`,
//! `queryCount`, `resultsCount`, `adjusted`, `results`, `status`, `request_id`, `count` and
//! `next_url`. Stocks trade weekdays 04:00-20:00 New York time; tickers starting `X:` trade around
//! the clock; day and longer bars start at New York midnight (see the `calendar` module notes on
//! multiples). Adjusted and unadjusted prices differ before one simulated split per stock.

mod bar;
mod calendar;
mod config;
mod cursor;
mod error;
mod fault;
mod generator;
mod hash;
mod market;
mod render;
mod server;

pub use bar::SimBar;
pub use config::{
    SimConfig, DEFAULT_BUCKET, DEFAULT_MARKET_SIZE, DEFAULT_S3_ACCESS_KEY_ID,
    DEFAULT_S3_SECRET_ACCESS_KEY,
};
pub use error::{Error, Result};
pub use fault::{Fault, SimStats};
pub use generator::MarketGenerator;
pub use server::{RunningSimulator, Simulator, DEFAULT_LIMIT, MAX_LIMIT};
