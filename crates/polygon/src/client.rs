use std::error::Error as _;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use backfill_domain::{Candle, DateRange};
use chrono::{DateTime, NaiveDate};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::backoff::jittered;
use crate::paging::{first_path, next_step, rebuild_next_url, CursorState, Step};
use crate::quota::{Permit, RequestQuota};
use crate::wire::{decode_aggregates, decode_grouped, parse_retry_after, DecodedPage};
use crate::{
    AggregatesRequest, ClientStats, Error, GroupedDay, MarketData, Page, PageCursor, PolygonConfig,
    RateLimiter, Result,
};
use backfill_domain::{chunk_at, Session};

mod actions;
mod tickers;

/// The Polygon (Massive) aggregates client. Cheap to clone: clones share the connection pool, the
/// request quota and the counters, so one client serves every task.
#[derive(Clone)]
pub struct PolygonClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    config: PolygonConfig,
    quota: Arc<dyn RequestQuota>,
    stats: Mutex<ClientStats>,
}

impl fmt::Debug for PolygonClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolygonClient")
            .field("base_url", &self.inner.base_url)
            .field("config", &self.inner.config)
            .field("limit", &self.inner.quota.limit())
            .field("window", &self.inner.quota.window())
            .finish_non_exhaustive()
    }
}

impl PolygonClient {
    /// A client with a [`RateLimiter`] of its own: `config.requests_per_minute` in any
    /// `config.rate_window`.
    pub fn new(config: PolygonConfig) -> Result<Self> {
        let limiter = RateLimiter::with_limit(config.requests_per_minute, config.rate_window);
        Self::with_quota(config, Arc::new(limiter))
    }

    /// A client whose requests wait on `quota` (shared with other clients, or with other
    /// processes) instead of `config.requests_per_minute`.
    pub fn with_quota(config: PolygonConfig, quota: Arc<dyn RequestQuota>) -> Result<Self> {
        let base_url = validate_base_url(&config.base_url)?;
        let key = config.api_key.expose_secret();
        if key.trim().is_empty() {
            return Err(Error::Config {
                message: "the api key is empty".to_owned(),
            });
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| Error::Config {
                message: "the api key contains characters that cannot be sent in an http header"
                    .to_owned(),
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("backfill-polygon/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .gzip(true)
            .build()
            .map_err(|e| Error::Config {
                message: format!("could not build the http client: {}", e.without_url()),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url,
                config,
                quota,
                stats: Mutex::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PolygonConfig {
        &self.inner.config
    }

    /// The quota every request waits on.
    pub fn quota(&self) -> &Arc<dyn RequestQuota> {
        &self.inner.quota
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ClientStats {
        self.stats_mut().clone()
    }

    fn stats_mut(&self) -> MutexGuard<'_, ClientStats> {
        match self.inner.stats.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Fetches one page with retries; returns it with the number of requests made and the
    /// bytes of the body that was decoded.
    async fn get_with_retries<T: Send + 'static>(
        &self,
        path: &str,
        decode: &Decoder<T>,
    ) -> Result<(T, u32, u64)> {
        let config = &self.inner.config;
        let started = Instant::now();
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            let error = match self.attempt(path, decode).await {
                Ok((page, bytes)) => return Ok((page, attempts, bytes)),
                Err(error) => error,
            };
            if error.is_permanent() {
                tracing::warn!(path, attempts, error = %error, "polygon request failed permanently");
                return Err(error);
            }
            let delay = match &error {
                Error::RateLimited { retry_after, .. } => {
                    retry_after.unwrap_or(config.rate_limit_cooldown)
                }
                _ => jittered(backoff_cap(config, attempts)),
            };
            if let Error::RateLimited { .. } = error {
                // Everyone holds back, whether or not this request is retried.
                self.inner.quota.pause(delay).await;
                self.stats_mut().rate_limit_pauses += delay;
            }
            let out_of_attempts = attempts > config.max_retries;
            let out_of_time = started.elapsed() + delay > config.max_retry_elapsed;
            if out_of_attempts || out_of_time {
                tracing::warn!(path, attempts, error = %error, "giving up on polygon request");
                return Err(error);
            }
            tracing::warn!(
                path,
                attempts,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "polygon request failed, retrying"
            );
            {
                let mut stats = self.stats_mut();
                stats.retries += 1;
                if !matches!(error, Error::RateLimited { .. }) {
                    stats.backoff_wait += delay;
                }
            }
            if !matches!(error, Error::RateLimited { .. }) {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// One HTTP request, rate limited, decoded; returns what was decoded and the body's size.
    async fn attempt<T: Send + 'static>(
        &self,
        path: &str,
        decode: &Decoder<T>,
    ) -> Result<(T, u64)> {
        let permit = Permit::acquire(self.inner.quota.as_ref()).await?;
        {
            let mut stats = self.stats_mut();
            stats.requests += 1;
            stats.rate_limiter_wait += permit.waited();
        }
        let url = format!("{}{path}", self.inner.base_url);
        let sent = Instant::now();
        tracing::debug!(path, "polygon request");
        let response = self
            .inner
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        *self.stats_mut().responses.entry(status).or_default() += 1;
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        drop(permit);
        tracing::debug!(
            path,
            status,
            bytes = body.len(),
            elapsed_ms = sent.elapsed().as_millis() as u64,
            "polygon response"
        );
        let key = self.inner.config.api_key.expose_secret();
        let bytes = body.len() as u64;
        let decoded = if body.len() > BLOCKING_DECODE_ABOVE {
            // A full page is megabytes of JSON: decode it off the async threads, so that the
            // rest of the process (an API on the same runtime, say) keeps answering.
            let decode = Arc::clone(decode);
            tokio::task::spawn_blocking(move || decode(status, retry_after, &body))
                .await
                .map_err(|e| Error::Decode {
                    message: format!("the decoding task failed: {e}"),
                })?
        } else {
            decode(status, retry_after, &body)
        };
        Ok((decoded.map_err(|e| e.redact(key))?, bytes))
    }

    /// Every ticker's day bar of `day` (a New York date) from the grouped daily endpoint, one
    /// request (plus retries). Each bar's timestamp is New York midnight of `day`, as the
    /// aggregates endpoint stamps day bars (the grouped endpoint stamps them at the close).
    /// A market holiday or a weekend gives no bars.
    ///
    /// # Errors
    /// As [`MarketData::fetch_page`].
    pub async fn grouped_day(&self, day: NaiveDate, adjusted: bool) -> Result<GroupedDay> {
        let path = format!("/v2/aggs/grouped/locale/us/market/stocks/{day}?adjusted={adjusted}");
        let decoder: Decoder<DecodedPage> = Arc::new(move |status, retry_after, body: &[u8]| {
            let page = decode_grouped(status, retry_after, body, day)?;
            check_adjusted(page.adjusted, adjusted)?;
            Ok(page)
        });
        let (decoded, requests, bytes) = self.get_with_retries(&path, &decoder).await?;
        {
            let mut stats = self.stats_mut();
            stats.pages += 1;
            stats.candles += decoded.candles.len() as u64;
            stats.bars_dropped += decoded.invalid_bars;
        }
        Ok(GroupedDay {
            candles: decoded.candles,
            requests,
            bytes,
            dropped: decoded.invalid_bars,
        })
    }

    /// A transport failure, described without the URL and without the key.
    fn transport_error(&self, error: reqwest::Error) -> Error {
        let timed_out = error.is_timeout();
        let error = error.without_url();
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        let message = crate::error::redact(message, self.inner.config.api_key.expose_secret());
        let mut stats = self.stats_mut();
        if timed_out {
            stats.timeouts += 1;
            Error::Timeout { message }
        } else {
            stats.transport_errors += 1;
            Error::Transport { message }
        }
    }
}

/// Bodies larger than this are decoded on tokio's blocking threads.
const BLOCKING_DECODE_ABOVE: usize = 64 * 1024;

#[async_trait]
impl MarketData for PolygonClient {
    #[tracing::instrument(skip_all, fields(symbol = %request.symbol, timeframe = %request.timeframe))]
    async fn fetch_page(
        &self,
        request: &AggregatesRequest,
        cursor: Option<PageCursor>,
    ) -> Result<Page> {
        let state = match cursor {
            None => CursorState::start(request),
            Some(PageCursor(state)) if state.request == *request => state,
            Some(_) => {
                return Err(Error::InvalidCursor {
                    message: "the cursor belongs to another request".to_owned(),
                })
            }
        };
        let range = &request.range;
        let session = Session::of(&request.symbol);
        let current =
            chunk_at(range, request.timeframe, session, state.chunk_from).ok_or_else(|| {
                Error::InvalidCursor {
                    message: "the cursor points past the end of the range".to_owned(),
                }
            })?;
        let path = match &state.next {
            Some(path) => path.clone(),
            None => first_path(request, current.from_ms(), current.to_ms()),
        };
        let (symbol, timeframe, adjusted) =
            (request.symbol.clone(), request.timeframe, request.adjusted);
        let decoder: Decoder<DecodedPage> = Arc::new(move |status, retry_after, body: &[u8]| {
            let page = decode_aggregates(status, retry_after, body, &symbol, timeframe)?;
            check_adjusted(page.adjusted, adjusted)?;
            Ok(page)
        });
        let (decoded, requests, bytes) = self.get_with_retries(&path, &decoder).await?;

        let (candles, last_ts, out_of_place) = keep_new_bars(decoded.candles, range, state.last_ts);
        let dropped = decoded.invalid_bars + out_of_place;
        if dropped > 0 {
            tracing::info!(dropped, path, "dropped bars from a page");
        }

        let next_url = decoded
            .next_url
            .as_deref()
            .map(|url| rebuild_next_url(url, request.adjusted))
            .transpose()?;
        let step = next_step(
            &path,
            next_url,
            state.high_from,
            !candles.is_empty(),
            current.to_ms(),
        )?;
        let delivered = last_ts.unwrap_or(i64::MIN);
        let (next, covered_ms) = match step {
            Step::Follow { path, from } => {
                let covered = state.covered_ms.max(delivered);
                let next = CursorState {
                    next: Some(path),
                    high_from: state.high_from.max(from.unwrap_or(i64::MIN)),
                    last_ts,
                    covered_ms: covered,
                    ..state
                };
                (Some(PageCursor(next)), covered)
            }
            Step::ChunkDone => {
                let covered = current.to_ms().max(delivered).min(range.to_ms());
                let following = current
                    .to_ms()
                    .checked_add(1)
                    .and_then(|from| chunk_at(range, request.timeframe, session, from));
                let next = following.map(|c| {
                    PageCursor(CursorState {
                        chunk_from: c.from_ms(),
                        next: None,
                        high_from: c.from_ms(),
                        last_ts,
                        covered_ms: covered,
                        ..state
                    })
                });
                (next, covered)
            }
        };
        let covered_through =
            DateTime::from_timestamp_millis(covered_ms.min(range.to_ms())).unwrap_or(range.from());
        {
            let mut stats = self.stats_mut();
            stats.pages += 1;
            stats.candles += candles.len() as u64;
            stats.bars_dropped += dropped;
        }
        Ok(Page {
            candles,
            covered_through,
            next,
            dropped,
            requests,
            bytes,
        })
    }

    async fn fetch_grouped(&self, day: NaiveDate, adjusted: bool) -> Result<GroupedDay> {
        self.grouped_day(day, adjusted).await
    }
}

/// Decodes a response body (HTTP status, `Retry-After`, body) into what a request asked for.
type Decoder<T> = Arc<dyn Fn(u16, Option<Duration>, &[u8]) -> Result<T> + Send + Sync>;

/// Fails when Polygon echoed another adjustment than the request's.
fn check_adjusted(echoed: Option<bool>, asked: bool) -> Result<()> {
    match echoed {
        Some(adjusted) if adjusted != asked => Err(Error::Decode {
            message: format!(
                "polygon answered adjusted={adjusted} to a request for adjusted={asked}"
            ),
        }),
        _ => Ok(()),
    }
}

/// Keeps the bars inside `range` that start after `last_ts` and after every bar kept before them;
/// returns them, the new last start, and how many were dropped.
fn keep_new_bars(
    mut bars: Vec<Candle>,
    range: &DateRange,
    mut last_ts: Option<i64>,
) -> (Vec<Candle>, Option<i64>, u64) {
    let before = bars.len();
    bars.retain(|candle| {
        let t = candle.ts().timestamp_millis();
        if t < range.from_ms() || t > range.to_ms() {
            tracing::debug!(t, "dropping a bar outside the range");
            false
        } else if last_ts.is_some_and(|last| t <= last) {
            tracing::debug!(t, "dropping a duplicated or out-of-order bar");
            false
        } else {
            last_ts = Some(t);
            true
        }
    });
    let dropped = (before - bars.len()) as u64;
    (bars, last_ts, dropped)
}

fn validate_base_url(base_url: &str) -> Result<String> {
    let invalid = |why: &str| Error::Config {
        message: format!("base url {base_url:?} {why}"),
    };
    let url = url::Url::parse(base_url).map_err(|_| invalid("is not a url"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must use http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid("must not have a query, a fragment or credentials"));
    }
    Ok(base_url.trim_end_matches('/').to_owned())
}

/// The backoff cap before retry number `retry` (1-based): doubling from the initial backoff,
/// capped.
pub(crate) fn backoff_cap(config: &PolygonConfig, retry: u32) -> Duration {
    crate::backoff::cap(config.initial_backoff, config.max_backoff, retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = PolygonConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..PolygonConfig::new("k".into())
        };
        let caps: Vec<_> = (1..=6)
            .map(|r| backoff_cap(&config, r).as_millis())
            .collect();
        assert_eq!(caps, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff_cap(&config, 1_000), Duration::from_secs(1));
        for _ in 0..100 {
            assert!(jittered(Duration::from_millis(50)) <= Duration::from_millis(50));
        }
    }

    #[test]
    fn drops_duplicated_out_of_order_and_out_of_range_bars() {
        let symbol = backfill_domain::Symbol::parse("AAPL").unwrap();
        let tf = backfill_domain::Timeframe::parse("1m").unwrap();
        let bar = |t: i64| {
            let values = backfill_domain::Ohlcv {
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: 1.0,
                vwap: None,
                trades: None,
            };
            Candle::new(
                symbol.clone(),
                tf,
                DateTime::from_timestamp_millis(t).unwrap(),
                values,
            )
            .unwrap()
        };
        let range = DateRange::from_millis(1_000, 10_000).unwrap();
        let input = [500, 1_000, 3_000, 2_000, 3_000, 4_000, 10_000, 10_001]
            .map(bar)
            .to_vec();
        let (kept, last, dropped) = keep_new_bars(input, &range, None);
        let starts: Vec<_> = kept.iter().map(|c| c.ts().timestamp_millis()).collect();
        assert_eq!(starts, vec![1_000, 3_000, 4_000, 10_000]);
        assert_eq!((last, dropped), (Some(10_000), 4));
        // Bars already delivered on an earlier page are duplicates too.
        let (kept, _, dropped) = keep_new_bars(vec![bar(4_000), bar(5_000)], &range, Some(4_000));
        assert_eq!((kept.len(), dropped), (1, 1));
    }

    #[test]
    fn rejects_unusable_configuration_without_echoing_the_key() {
        let config = |url: &str, key: &str| PolygonConfig::new(key.into()).with_base_url(url);
        for url in [
            "not a url",
            "ftp://x",
            "https://h/?q=1",
            "https://user:pw@h",
        ] {
            let err = PolygonClient::new(config(url, "k")).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{url}: {err}");
        }
        let err = PolygonClient::new(config("https://h", "bad\nkey-123")).unwrap_err();
        assert!(!err.to_string().contains("key-123"), "{err}");
        assert!(PolygonClient::new(config("https://h", " ")).is_err());
        let client = PolygonClient::new(config("https://h/", "k")).unwrap();
        assert_eq!(client.inner.base_url, "https://h");
    }
}
