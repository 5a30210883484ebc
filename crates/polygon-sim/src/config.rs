use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use chrono::NaiveDate;

use crate::Fault;

/// The number of tickers in the market universe unless [`SimConfig::market`] says otherwise.
pub const DEFAULT_MARKET_SIZE: usize = 25;
/// The bucket that serves the flat files unless [`SimConfig::bucket`] says otherwise.
pub const DEFAULT_BUCKET: &str = "flatfiles";
/// The S3 access key id accepted unless [`SimConfig::s3_credentials`] says otherwise.
pub const DEFAULT_S3_ACCESS_KEY_ID: &str = "sim-access-key";
/// The S3 secret access key accepted unless [`SimConfig::s3_credentials`] says otherwise.
pub const DEFAULT_S3_SECRET_ACCESS_KEY: &str = "sim-secret-key";

/// How a [`Simulator`](crate::Simulator) behaves. Build it with [`SimConfig::new`] and the
/// chainable setters.
#[derive(Clone)]
pub struct SimConfig {
    pub(crate) seed: u64,
    pub(crate) api_key: Option<String>,
    pub(crate) unknown_tickers: BTreeSet<String>,
    pub(crate) max_page_size: Option<u64>,
    pub(crate) rate_limit: Option<(u32, Duration)>,
    pub(crate) retry_after: Option<u64>,
    pub(crate) random_faults: Option<(f64, Vec<Fault>)>,
    pub(crate) fault_seed: u64,
    pub(crate) missing_bar_probability: f64,
    pub(crate) status: String,
    pub(crate) market_size: usize,
    pub(crate) holidays: BTreeSet<NaiveDate>,
    pub(crate) bucket: String,
    pub(crate) s3_access_key_id: String,
    pub(crate) s3_secret_access_key: String,
    pub(crate) flat_files_from: NaiveDate,
    pub(crate) published_through: Option<NaiveDate>,
    pub(crate) cached_files: (usize, usize),
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("unknown_tickers", &self.unknown_tickers)
            .field("max_page_size", &self.max_page_size)
            .field("rate_limit", &self.rate_limit)
            .field("retry_after", &self.retry_after)
            .field("random_faults", &self.random_faults)
            .field("fault_seed", &self.fault_seed)
            .field("missing_bar_probability", &self.missing_bar_probability)
            .field("status", &self.status)
            .field("market_size", &self.market_size)
            .field("holidays", &self.holidays)
            .field("bucket", &self.bucket)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field("s3_secret_access_key", &"[redacted]")
            .field("flat_files_from", &self.flat_files_from)
            .field("published_through", &self.published_through)
            .finish()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SimConfig {
    /// Defaults: seed 42, any non-empty key accepted, tickers starting `ZZZ` unknown, no page cap
    /// beyond Polygon's 50,000, no rate limit (a limit's 429 carries `Retry-After: 60`), no
    /// faults, no missing bars, status `OK`; a market universe of [`DEFAULT_MARKET_SIZE`]
    /// tickers, no holidays; flat files in the bucket [`DEFAULT_BUCKET`] for S3 credentials
    /// [`DEFAULT_S3_ACCESS_KEY_ID`] / [`DEFAULT_S3_SECRET_ACCESS_KEY`], from 2000-01-03 through
    /// yesterday in New York.
    pub fn new() -> Self {
        Self {
            seed: 42,
            api_key: None,
            unknown_tickers: BTreeSet::new(),
            max_page_size: None,
            rate_limit: None,
            retry_after: Some(60),
            random_faults: None,
            fault_seed: 7,
            missing_bar_probability: 0.0,
            status: "OK".to_owned(),
            market_size: DEFAULT_MARKET_SIZE,
            holidays: BTreeSet::new(),
            bucket: DEFAULT_BUCKET.to_owned(),
            s3_access_key_id: DEFAULT_S3_ACCESS_KEY_ID.to_owned(),
            s3_secret_access_key: DEFAULT_S3_SECRET_ACCESS_KEY.to_owned(),
            flat_files_from: NaiveDate::from_ymd_opt(2000, 1, 3).unwrap_or(NaiveDate::MIN),
            published_through: None,
            cached_files: (crate::flatfile::CACHED_FILES, crate::flatfile::CACHED_BYTES),
        }
    }

    /// The seed of the random walk: the same seed gives the same candles.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Requires this key (as `Authorization: Bearer` or `apiKey=`); others get a 401. Without it
    /// any non-empty key is accepted, but a missing key is still a 401.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// A ticker that answers `OK` with no results (tickers starting `ZZZ` always do).
    pub fn unknown_ticker(mut self, ticker: impl Into<String>) -> Self {
        self.unknown_tickers.insert(ticker.into());
        self
    }

    /// Caps `limit` (in base aggregates; in records for splits and dividends), so that tests
    /// get many pages from small ranges.
    pub fn max_page_size(mut self, base_aggregates: u64) -> Self {
        self.max_page_size = Some(base_aggregates.max(1));
        self
    }

    /// Answers 429 to the request that would exceed `requests` within any `window`. Only
    /// admitted requests count.
    pub fn rate_limit(mut self, requests: u32, window: Duration) -> Self {
        self.rate_limit = Some((requests.max(1), window));
        self
    }

    /// The `Retry-After` (whole seconds) sent with rate-limit 429s; `None` sends none.
    pub fn retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }

    /// Answers each request with one of `faults` (picked at random) with this probability,
    /// deterministically for a given [`SimConfig::fault_seed`] and request order.
    pub fn random_faults(mut self, probability: f64, faults: Vec<Fault>) -> Self {
        self.random_faults = Some((probability.clamp(0.0, 1.0), faults));
        self
    }

    /// The seed of the random faults.
    pub fn fault_seed(mut self, seed: u64) -> Self {
        self.fault_seed = seed;
        self
    }

    /// Drops this share of base bars (0 to 1), as real data has minutes without trades.
    pub fn missing_bar_probability(mut self, probability: f64) -> Self {
        self.missing_bar_probability = probability.clamp(0.0, 1.0);
        self
    }

    /// The `status` of successful bodies: `OK`, or `DELAYED` as delayed plans get.
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = status.into();
        self
    }

    /// The number of tickers in the market universe, the stocks that the grouped daily endpoint
    /// and the flat files cover (see [`Simulator::market_tickers`](crate::Simulator::market_tickers)).
    /// Only a share of their minutes has a bar (their liquidity), as in a real market.
    pub fn market(mut self, tickers: usize) -> Self {
        self.market_size = tickers;
        self
    }

    /// Makes a weekday a market holiday: tickers other than crypto (`X:`) have no bars that New
    /// York day, the grouped daily answer is empty and no flat file is published.
    pub fn holiday(mut self, date: NaiveDate) -> Self {
        self.holidays.insert(date);
        self
    }

    /// The name of the S3 bucket that serves the flat files (path-style: `/{bucket}/{key}`).
    pub fn bucket(mut self, name: impl Into<String>) -> Self {
        self.bucket = name.into();
        self
    }

    /// The only S3 credentials whose AWS Signature Version 4 the flat-file bucket accepts.
    pub fn s3_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.s3_access_key_id = access_key_id.into();
        self.s3_secret_access_key = secret_access_key.into();
        self
    }

    /// The first day with flat files.
    pub fn flat_files_from(mut self, date: NaiveDate) -> Self {
        self.flat_files_from = date;
        self
    }

    /// The last day with flat files (by default yesterday in New York, read when a request
    /// arrives: a day's files are published the next morning).
    /// Keeps up to `files` generated flat files (and `bytes` of them) for later requests
    /// (default 8 files, 512 MiB): a benchmark that warms every file of its days first sets
    /// enough to hold them.
    pub fn cached_files(mut self, files: usize, bytes: usize) -> Self {
        self.cached_files = (files, bytes);
        self
    }

    pub fn published_through(mut self, date: NaiveDate) -> Self {
        self.published_through = Some(date);
        self
    }

    /// Whether a ticker has no data.
    pub fn is_unknown(&self, ticker: &str) -> bool {
        ticker.starts_with("ZZZ") || self.unknown_tickers.contains(ticker)
    }
}
