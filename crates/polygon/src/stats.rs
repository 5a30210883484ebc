use std::collections::BTreeMap;
use std::time::Duration;

/// Counters of what a client has done since it was built, for metrics. All clones of a client
/// share them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Responses received, by HTTP status.
    pub responses: BTreeMap<u16, u64>,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Requests that failed in the transport for another reason (refused, reset, cut short).
    pub transport_errors: u64,
    /// Retries made.
    pub retries: u64,
    /// Time spent waiting for the client-side limiter (including pauses after a 429).
    pub rate_limiter_wait: Duration,
    /// Pauses ordered after 429s (`Retry-After` or the cool-down).
    pub rate_limit_pauses: Duration,
    /// Time slept in backoff before retries of other failures.
    pub backoff_wait: Duration,
    /// Pages returned.
    pub pages: u64,
    /// Candles returned.
    pub candles: u64,
    /// Bars dropped: duplicated, out of order, outside the range, or invalid.
    pub bars_dropped: u64,
}

/// Counters of what a [`FlatFilesClient`](crate::FlatFilesClient) has done since it was built,
/// for metrics. All clones of a client share them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlatFilesStats {
    /// Requests sent (HEADs and GETs), retries included.
    pub requests: u64,
    /// HEADs sent: looking a day's file up.
    pub heads: u64,
    /// GETs sent: downloads, and resumptions of cut downloads.
    pub gets: u64,
    /// GETs that resumed a download cut short, from the byte where it stopped.
    pub resumes: u64,
    /// Compressed bytes downloaded.
    pub bytes: u64,
    /// Retries made after transient failures.
    pub retries: u64,
    /// Requests or downloads that timed out.
    pub timeouts: u64,
    /// Requests or downloads that failed in the transport for another reason (refused, reset,
    /// cut short).
    pub transport_errors: u64,
    /// Time slept in backoff before retries.
    pub backoff_wait: Duration,
    /// Files read to their end.
    pub files: u64,
    /// Pages returned.
    pub pages: u64,
    /// Candles returned.
    pub candles: u64,
    /// Rows dropped: malformed, or values that make no candle.
    pub rows_dropped: u64,
}
