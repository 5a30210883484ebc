//! A Polygon-compatible market-data server for tests, benchmarks and the offline demo:
//! deterministic candles from a seeded random walk, served as REST aggregates (with `next_url`
//! pagination), as grouped daily answers and as flat files in an S3-compatible bucket, and the
//! universe's reference tickers with a listing history, with authentication, rate limits and
//! fault injection, and request counters that tests can read.
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
//! # Aggregates
//!
//! The wire format follows Polygon's: `GET /v2/aggs/ticker/{T}/range/{m}/{span}/{from}/{to}` with
//! `adjusted`, `sort`, `limit` (counting base aggregates) and `cursor`; bodies carry `ticker`,
//! `queryCount`, `resultsCount`, `adjusted`, `results`, `status`, `request_id`, `count` and
//! `next_url`. Stocks trade weekdays 04:00-20:00 New York time, except on configured holidays
//! ([`SimConfig::holiday`]); tickers starting `X:` trade around the clock; day and longer bars
//! start at New York midnight (see the `calendar` module notes on multiples). Adjusted and
//! unadjusted prices differ before one simulated split per stock.
//!
//! # The market universe
//!
//! [`SimConfig::market`] (default [`DEFAULT_MARKET_SIZE`]) sets how many stock tickers the
//! whole-market endpoints cover; [`Simulator::market_tickers`] lists them (two to five upper-case
//! letters, the same first tickers whatever the size). Each trades only in a share of minutes,
//! its liquidity (0.03 to 1, most tickers illiquid), so that a minute file holds about 150 bars
//! per ticker as real ones do; the aggregates endpoint serves the same sparse bars, and
//! [`Simulator::expected_candles`] predicts them. Tickers outside the universe keep their data.
//! [`Simulator::revise_day`] revises a day: every bar of that day gets its volume plus the
//! revision number, alike on every endpoint.
//!
//! # Grouped daily
//!
//! `GET /v2/aggs/grouped/locale/us/market/stocks/{YYYY-MM-DD}?adjusted=&include_otc=` answers
//! `{"queryCount","resultsCount","adjusted","results":[{"T","v","vw","o","c","h","l","t","n"}],
//! "status","request_id","count"}` with one result per universe ticker, sorted by ticker, equal
//! to its `1/day` aggregate of that date except `t`, which is 16:00 New York time (as in
//! Polygon's fixtures). Weekends and holidays have `resultsCount` 0 and no `results`. It shares
//! the aggregates endpoint's API key, rate limit, faults and stats.
//!
//! # Reference tickers
//!
//! `GET /v3/reference/tickers?market=&active=&date=&type=&sort=ticker&order=&limit=&cursor=`
//! lists the reference records ([`SimTicker`], [`Simulator::ticker_records`]) of the universe's
//! tickers and of a fifth as many delisted ones, with a deterministic history: some universe
//! tickers listed between 2001 and 2024, some with a stale duplicate record (no `type`, the name
//! upper-cased), some reusing the ticker of a former, delisted company (see the `listing` module
//! notes; every event lies on or before [`LAST_EVENT`]). `active=true` (the default) lists the
//! records active on `date` (default today), `active=false` those delisted by then, with
//! `delisted_utc`; `type` keeps one type (`CS`, `ETF`); markets other than `stocks` are empty.
//! Records are sorted by ticker (then by a hash, as Polygon's), `limit` records a page (default
//! [`DEFAULT_TICKERS_LIMIT`], at most [`MAX_TICKERS_LIMIT`]), and `next_url` is Polygon's:
//! `{base}/v3/reference/tickers?cursor=` and the unpadded base64 of the remaining query, sorted
//! (`active=true&date=..&limit=..&order=asc&page_marker={ticker}%7C{hash}&sort=ticker`).
//! Bodies carry `results` (in the fixture's field order), `status`, `request_id`, `count` and
//! `next_url`. [`Simulator::reference_tickers`] gives what a whole listing returns. The listing
//! history is reference data only: the other endpoints serve every universe ticker on every
//! day. It shares the aggregates endpoint's API key, rate limit, faults and stats.
//!
//! # Corporate actions
//!
//! `GET /v3/reference/splits?ticker=` lists a ticker's splits ([`Simulator::splits`]): the one
//! simulated split of every stock (adjusted and unadjusted prices differ before it) and those
//! added with [`Simulator::add_split`], which from then on change the adjusted bars before
//! them, as a split announced after data was fetched does; without `ticker=` it lists every
//! ticker's splits by execution date, then ticker, bounded by `execution_date.gte`, `.gt`,
//! `.lte` and `.lt` as Polygon's. `GET /v3/reference/dividends?ticker=`
//! lists deterministic quarterly cash dividends ([`Simulator::dividends`]) of three stock tickers
//! in five. Both sort by date (`order=asc|desc`), page by `limit` (default
//! [`DEFAULT_ACTIONS_LIMIT`], at most [`MAX_ACTIONS_LIMIT`]) with a `next_url` whose `cursor` is
//! the base64 of the remaining query, and share the aggregates endpoint's API key, rate limit,
//! faults and stats.
//!
//! # Flat files (S3)
//!
//! The same server is a path-style S3 bucket ([`SimConfig::bucket`], default
//! [`DEFAULT_BUCKET`]) holding Polygon's (Massive's) flat files, one per dataset ([`Dataset`])
//! and trading day from [`SimConfig::flat_files_from`] through
//! [`Simulator::published_through`] (by default yesterday in New York), at the keys of
//! [`flat_file_key`]: `us_stocks_sip/{minute,day}_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz`. A file is
//! the gzip of a CSV with the header [`FLAT_FILE_HEADER`] and one row per unadjusted `1/minute`
//! (or `1/day`) bar of every universe ticker that New York day, sorted by ticker then
//! `window_start` (Unix nanoseconds), its numbers written so that they parse back to exactly
//! the REST JSON's `f64`s; [`Simulator::flat_file_rows`] gives its candles.
//!
//! - `GET /{bucket}?list-type=2&prefix=&delimiter=&max-keys=&continuation-token=&start-after=`:
//!   ListObjectsV2 XML, keys in lexicographic order, at most 1,000 a page, found lazily from the
//!   calendar. Its `Size` and `ETag` are exact, so listing a file generates it once (the size and
//!   ETag are remembered for good); list narrow prefixes (a month) of large universes.
//! - `HEAD` and `GET /{bucket}/{key}`: `ETag` (a hash of the content, so it changes with a
//!   revision), `Content-Length`, `Last-Modified` (06:00 New York the next morning, or the
//!   revision's time), `Content-Type: application/x-gzip`, `Range: bytes=a-b|a-|-n` (206 with
//!   `Content-Range`, 416 past the end), `If-Match`, `If-None-Match`, `If-Modified-Since` and
//!   `If-Unmodified-Since`. Unknown keys get 404 `NoSuchKey`.
//! - Every request must carry an AWS Signature Version 4 `Authorization` header for
//!   [`SimConfig::s3_credentials`] (default [`DEFAULT_S3_ACCESS_KEY_ID`] /
//!   [`DEFAULT_S3_SECRET_ACCESS_KEY`], any region), checked for real: 403 `AccessDenied`
//!   (missing), `InvalidAccessKeyId`, `SignatureDoesNotMatch` or `RequestTimeTooSkewed`.
//! - Faults ([`Simulator::inject_on`] with a pattern such as `/flatfiles/`) apply in S3's
//!   dialect: statuses get S3's XML errors, a rate limit is `503 SlowDown`, truncated and aborted
//!   bodies cut the gzip. The REST rate limit does not apply. [`SimStats`] counts the responses
//!   by path, the object bytes served and the files generated.
//!
//! Files are generated on demand (a 5,000-ticker minute file, about 740,000 rows and 18 MB, in
//! well under a second of CPU in release builds, compressed on several threads) and the few most
//! recent are cached, so that ranged GETs of one file generate it once.

mod actions;
mod bar;
mod calendar;
mod config;
mod cursor;
mod error;
mod fault;
mod flatfile;
mod generator;
mod hash;
mod listing;
mod market;
mod render;
mod server;
mod sigv4;

pub use actions::SimDividend;
pub use bar::SimBar;
pub use config::{
    SimConfig, DEFAULT_BUCKET, DEFAULT_MARKET_SIZE, DEFAULT_S3_ACCESS_KEY_ID,
    DEFAULT_S3_SECRET_ACCESS_KEY,
};
pub use error::{Error, Result};
pub use fault::{Fault, SimStats};
pub use flatfile::{flat_file_key, Dataset, FlatFile, FLAT_FILE_HEADER};
pub use generator::{MarketGenerator, SimSplit};
pub use listing::{SimTicker, LAST_EVENT, LONG_LISTED};
pub use server::{
    RunningSimulator, Simulator, DEFAULT_ACTIONS_LIMIT, DEFAULT_LIMIT, DEFAULT_TICKERS_LIMIT,
    MAX_ACTIONS_LIMIT, MAX_LIMIT, MAX_TICKERS_LIMIT,
};
