use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// A failure the simulator can serve instead of (or on top of) a normal response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This HTTP status with the body Polygon sends for it: `ERROR` with `error` for 400, 401 and
    /// 5xx, `NOT_AUTHORIZED` with `message` for 403, `NOT_FOUND` with `message` for 404.
    Status(u16),
    /// A 504 with nginx's HTML "Gateway Time-out" page.
    GatewayTimeoutHtml,
    /// A 429 with Polygon's rate-limit body and, when given, `Retry-After` in whole seconds.
    RateLimited { retry_after: Option<u64> },
    /// The normal response, held back for this long (longer than the client's timeout to make it
    /// time out). The request is counted with status 200 when it arrives.
    Slow(Duration),
    /// A complete 200 response whose JSON body stops half-way.
    TruncatedJson,
    /// A 200 that promises the whole body but drops the connection half-way through it.
    AbortedBody,
    /// A 200 whose counts claim results while `results` is `null`. Polygon has sent
    /// `"results": null` for empty answers; a body that contradicts its own counts is the glitch.
    NullResults,
    /// The normal page with a `next_url` that points back at the same page.
    RepeatCursor,
}

/// A queue of faults for the next requests whose path contains `pattern` (all when `None`).
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) pattern: Option<String>,
    pub(crate) queue: VecDeque<Fault>,
}

/// What the simulator has served, for tests to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimStats {
    /// Responses by request path (without the query) and HTTP status.
    pub served: BTreeMap<(String, u16), u64>,
    /// When each request arrived, in order (tokio's clock, so paused-time tests can read it).
    pub arrivals: Vec<Instant>,
    /// How many flat files were generated (not served from the cache).
    pub flat_files_generated: u64,
    /// The object bytes that the flat-file bucket sent in 200 and 206 responses (as far as a
    /// fault let them go).
    pub s3_bytes_served: u64,
}

impl SimStats {
    /// All responses.
    pub fn total(&self) -> u64 {
        self.served.values().sum()
    }

    /// Responses with this status.
    pub fn with_status(&self, status: u16) -> u64 {
        self.served
            .iter()
            .filter(|((_, s), _)| *s == status)
            .map(|(_, n)| n)
            .sum()
    }

    /// Responses to paths containing `pattern`.
    pub fn matching(&self, pattern: &str) -> u64 {
        self.served
            .iter()
            .filter(|((p, _), _)| p.contains(pattern))
            .map(|(_, n)| n)
            .sum()
    }

    /// The largest number of arrivals within any window `[t, t + window)`.
    pub fn max_in_window(&self, window: Duration) -> usize {
        let mut times = self.arrivals.clone();
        times.sort();
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= window {
                start += 1;
            }
            best = best.max(end + 1 - start);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_arrivals_per_half_open_window() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let stats = SimStats {
            served: BTreeMap::new(),
            arrivals: vec![at(0), at(500), at(999), at(1000), at(1001)],
            ..SimStats::default()
        };
        assert_eq!(stats.max_in_window(Duration::from_secs(1)), 4);
        assert_eq!(stats.max_in_window(Duration::from_millis(500)), 3);
        assert_eq!(stats.max_in_window(Duration::from_millis(1002)), 5);
    }
}
