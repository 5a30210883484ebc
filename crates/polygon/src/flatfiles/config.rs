use std::time::Duration;

use secrecy::SecretString;

/// Everything [`FlatFilesClient`](crate::FlatFilesClient) needs, passed in explicitly (this
/// crate never reads the environment). `Debug` shows both keys as `[REDACTED]`.
///
/// Build it with [`FlatFilesConfig::new`] and change fields as needed:
///
/// ```
/// # use backfill_polygon::FlatFilesConfig;
/// let config = FlatFilesConfig {
///     page_rows: 10_000,
///     ..FlatFilesConfig::new("key-id".into(), "secret-key".into())
/// }
/// .with_endpoint("http://127.0.0.1:9000");
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("key-id") && !shown.contains("secret-key"));
/// ```
#[derive(Debug, Clone)]
pub struct FlatFilesConfig {
    /// The S3 endpoint, without a trailing path: `https://files.massive.com` by default. An
    /// `http://` endpoint (a simulator) is allowed too.
    pub endpoint: String,
    /// The bucket (default `flatfiles`), addressed path-style: `{endpoint}/{bucket}/{key}`.
    pub bucket: String,
    /// The region the requests are signed for (default `us-east-1`).
    pub region: String,
    /// The S3 access key id of the Flat Files credentials.
    pub access_key_id: SecretString,
    /// The S3 secret access key of the Flat Files credentials.
    pub secret_access_key: SecretString,
    /// At most this many candles per page (default 20,000; at least 1).
    pub page_rows: usize,
    /// Retries after a failed attempt for transient failures (default 5). While a download makes
    /// progress the count starts again: it bounds the failures in a row, not per file.
    pub max_retries: u32,
    /// The first backoff cap; each retry doubles it (default 500 ms). The wait is drawn uniformly
    /// below the cap ("full jitter").
    pub initial_backoff: Duration,
    /// The largest backoff cap (default 30 s).
    pub max_backoff: Duration,
    /// Retrying stops when the next wait would end later than this after the first failure of a
    /// run of failures (default 5 min).
    pub max_retry_elapsed: Duration,
    /// The TCP and TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// The longest wait for a HEAD's response or a GET's response headers (default 30 s).
    pub request_timeout: Duration,
    /// The longest wait for the next bytes of a file being downloaded (default 30 s). A whole
    /// file has no time limit: a minute file is tens of megabytes.
    pub read_timeout: Duration,
}

impl FlatFilesConfig {
    /// The default endpoint.
    pub const DEFAULT_ENDPOINT: &'static str = "https://files.massive.com";
    /// The default bucket.
    pub const DEFAULT_BUCKET: &'static str = "flatfiles";
    /// The default signing region.
    pub const DEFAULT_REGION: &'static str = "us-east-1";
    /// The default page size, in candles.
    pub const DEFAULT_PAGE_ROWS: usize = 20_000;

    /// The defaults documented on each field, with these credentials.
    pub fn new(access_key_id: SecretString, secret_access_key: SecretString) -> Self {
        Self {
            endpoint: Self::DEFAULT_ENDPOINT.to_owned(),
            bucket: Self::DEFAULT_BUCKET.to_owned(),
            region: Self::DEFAULT_REGION.to_owned(),
            access_key_id,
            secret_access_key,
            page_rows: Self::DEFAULT_PAGE_ROWS,
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_elapsed: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
        }
    }

    /// The same configuration against another endpoint (the simulator, a proxy).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }
}
