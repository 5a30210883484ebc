//! What every handler shares: the repositories (as trait objects), the optional in-process
//! progress bus, the optional metrics renderer, and the configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use backfill_domain::Sources;
use backfill_progress::ProgressBus;
use backfill_storage::{ActionStore, CandleStore, JobRepository, ScheduleStore};
use secrecy::{ExposeSecret, SecretString};

use crate::cache::StatusCache;
use crate::error::{Error, Result};
use crate::upstream::{ActionsSource, QuotaView, ReferenceTickers};

/// Renders the process's metrics in the Prometheus text format, for `GET /metrics`.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// Where browsers may call the API from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CorsOrigins {
    /// CORS is off: no CORS headers, preflights are not answered.
    Off,
    /// Any origin (`*`).
    Any,
    /// Exactly these origins.
    List(Vec<HeaderValue>),
}

/// How the API behaves. Built with [`ApiConfig::default`] and the `with_*` methods; the binary
/// fills it from its command line and environment.
///
/// Its `Debug` output never shows the token or the redacted secrets.
#[derive(Clone)]
pub struct ApiConfig {
    api_token: Option<SecretString>,
    cors: CorsOrigins,
    sse_poll_interval: Duration,
    sse_min_interval: Duration,
    sse_keep_alive: Duration,
    body_limit: usize,
    redact: Vec<SecretString>,
    status_cache_ttl: Duration,
    demo: bool,
    sources: Sources,
}

impl ApiConfig {
    /// How often a Server-Sent Events stream re-reads its job when nothing wakes it.
    pub const DEFAULT_SSE_POLL_INTERVAL: Duration = Duration::from_millis(500);
    /// The shortest time between two reads of a job by one stream, so at most four progress
    /// events a second.
    pub const DEFAULT_SSE_MIN_INTERVAL: Duration = Duration::from_millis(250);
    /// How often an idle stream sends a keep-alive comment.
    pub const DEFAULT_SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);
    /// The largest request body accepted: 1 MiB.
    pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
    /// How long one read of a job's status serves every client asking for it.
    pub const DEFAULT_STATUS_CACHE_TTL: Duration = Duration::from_millis(200);

    /// Requires `Authorization: Bearer <token>` on every `/api/v1` route. `None` leaves the API
    /// open.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] when the token is empty or could not be sent in a header.
    pub fn with_api_token(mut self, token: Option<SecretString>) -> Result<Self> {
        if let Some(token) = &token {
            let raw = token.expose_secret();
            if raw.is_empty() {
                return Err(Error::InvalidToken("it must not be empty"));
            }
            if !raw.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::InvalidToken(
                    "it may hold only printable ASCII characters without spaces",
                ));
            }
        }
        self.api_token = token;
        Ok(self)
    }

    /// Allows browsers on these origins (such as `http://localhost:3000`, or `*` for any) to
    /// call the API. An empty list turns CORS off, which is the default.
    ///
    /// # Errors
    /// [`Error::InvalidCorsOrigin`] for an origin that is not `*` or `scheme://host[:port]`.
    pub fn with_cors_origins<I, S>(mut self, origins: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        let mut any = false;
        for origin in origins {
            let origin = origin.as_ref().trim();
            if origin == "*" {
                any = true;
                continue;
            }
            let valid = origin.split_once("://").is_some_and(|(scheme, host)| {
                !scheme.is_empty()
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+')
                    && !host.is_empty()
                    && !host.contains('/')
            }) && !origin.ends_with('/');
            let value = HeaderValue::from_str(origin)
                .ok()
                .filter(|_| valid)
                .ok_or_else(|| Error::InvalidCorsOrigin(origin.to_owned()))?;
            list.push(value);
        }
        self.cors = match (any, list.is_empty()) {
            (true, _) => CorsOrigins::Any,
            (false, true) => CorsOrigins::Off,
            (false, false) => CorsOrigins::List(list),
        };
        Ok(self)
    }

    /// How often a progress stream re-reads its job when no in-process event wakes it
    /// (default 500 ms). This is what makes streams follow jobs run by other processes.
    pub fn with_sse_poll_interval(mut self, interval: Duration) -> Self {
        self.sse_poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The shortest time between two reads of a job by one progress stream (default 250 ms,
    /// so at most four events a second).
    pub fn with_sse_min_interval(mut self, interval: Duration) -> Self {
        self.sse_min_interval = interval;
        self
    }

    /// How often an idle progress stream sends a keep-alive comment (default 15 s).
    pub fn with_sse_keep_alive(mut self, interval: Duration) -> Self {
        self.sse_keep_alive = interval.max(Duration::from_millis(1));
        self
    }

    /// The largest request body accepted, in bytes (default 1 MiB).
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long one read of a job serves every `GET /status` of it (default 200 ms; zero turns
    /// the cache off). Cancel and retry through this process are seen at once.
    pub fn with_status_cache_ttl(mut self, ttl: Duration) -> Self {
        self.status_cache_ttl = ttl;
        self
    }

    /// A secret (such as the Polygon API key) that must never be sent to a client: it is
    /// replaced by `[redacted]` wherever a job's or task's error text would carry it.
    pub fn with_redacted_secret(mut self, secret: SecretString) -> Self {
        if !secret.expose_secret().is_empty() {
            self.redact.push(secret);
        }
        self
    }

    /// Says that the data is simulated (`serve --demo`): `GET /api/v1/info` answers
    /// `"demo": true` and the dashboard shows it on every page. Off by default.
    /// Which sources this server can accept jobs for: Flat Files only when the workers have S3
    /// credentials (the server is given them too). Without this, Flat Files are refused.
    pub fn with_sources(mut self, sources: Sources) -> Self {
        self.sources = sources;
        self
    }

    pub(crate) fn sources(&self) -> Sources {
        self.sources
    }

    pub fn with_demo(mut self, demo: bool) -> Self {
        self.demo = demo;
        self
    }

    pub(crate) fn api_token(&self) -> Option<&SecretString> {
        self.api_token.as_ref()
    }

    pub(crate) fn cors(&self) -> &CorsOrigins {
        &self.cors
    }

    pub(crate) fn sse_poll_interval(&self) -> Duration {
        self.sse_poll_interval
    }

    pub(crate) fn sse_min_interval(&self) -> Duration {
        self.sse_min_interval
    }

    pub(crate) fn sse_keep_alive(&self) -> Duration {
        self.sse_keep_alive
    }

    pub(crate) fn body_limit(&self) -> usize {
        self.body_limit
    }

    pub(crate) fn demo(&self) -> bool {
        self.demo
    }

    /// Replaces every secret given to [`ApiConfig::with_redacted_secret`] in `text` with
    /// `[redacted]`.
    pub(crate) fn redact(&self, text: &mut String) {
        for secret in &self.redact {
            let secret = secret.expose_secret();
            if text.contains(secret) {
                *text = text.replace(secret, "[redacted]");
            }
        }
    }
}

impl Default for ApiConfig {
    /// No token, CORS off, the default stream timings, a 1 MiB body limit, real data.
    fn default() -> Self {
        Self {
            api_token: None,
            cors: CorsOrigins::Off,
            sse_poll_interval: Self::DEFAULT_SSE_POLL_INTERVAL,
            sse_min_interval: Self::DEFAULT_SSE_MIN_INTERVAL,
            sse_keep_alive: Self::DEFAULT_SSE_KEEP_ALIVE,
            body_limit: Self::DEFAULT_BODY_LIMIT,
            redact: Vec::new(),
            status_cache_ttl: Self::DEFAULT_STATUS_CACHE_TTL,
            demo: false,
            sources: Sources { flat_files: false },
        }
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("api_token", &self.api_token.as_ref().map(|_| "[redacted]"))
            .field("cors", &self.cors)
            .field("sse_poll_interval", &self.sse_poll_interval)
            .field("sse_min_interval", &self.sse_min_interval)
            .field("sse_keep_alive", &self.sse_keep_alive)
            .field("body_limit", &self.body_limit)
            .field("redacted_secrets", &self.redact.len())
            .field("demo", &self.demo)
            .field("sources", &self.sources)
            .field("status_cache_ttl", &self.status_cache_ttl)
            .finish()
    }
}

/// The state every handler receives: cheap to clone (everything is shared).
#[derive(Clone)]
pub struct AppState {
    jobs: Arc<dyn JobRepository>,
    candles: Arc<dyn CandleStore>,
    schedules: Option<Arc<dyn ScheduleStore>>,
    reference: Option<Arc<dyn ReferenceTickers>>,
    actions: Option<Arc<dyn ActionStore>>,
    actions_source: Option<Arc<dyn ActionsSource>>,
    quota: Option<Arc<dyn QuotaView>>,
    progress: Option<ProgressBus>,
    metrics: Option<MetricsRenderer>,
    config: Arc<ApiConfig>,
    status_cache: Arc<StatusCache>,
}

impl AppState {
    /// State over the given repositories, with no progress bus and no metrics renderer.
    pub fn new(
        jobs: Arc<dyn JobRepository>,
        candles: Arc<dyn CandleStore>,
        config: ApiConfig,
    ) -> Self {
        Self {
            jobs,
            candles,
            schedules: None,
            reference: None,
            actions: None,
            actions_source: None,
            quota: None,
            progress: None,
            metrics: None,
            status_cache: Arc::new(StatusCache::new(config.status_cache_ttl)),
            config: Arc::new(config),
        }
    }

    /// The schedules and universes store: without it, `/api/v1/schedules` and
    /// `/api/v1/universes` answer 404.
    pub fn with_schedules(mut self, store: Arc<dyn ScheduleStore>) -> Self {
        self.schedules = Some(store);
        self
    }

    /// Where universes are refreshed from (Polygon's reference tickers, through the binary).
    pub fn with_reference_tickers(mut self, reference: Arc<dyn ReferenceTickers>) -> Self {
        self.reference = Some(reference);
        self
    }

    /// The corporate actions store: without it, `/api/v1/corporate-actions` answers 404 and
    /// candle reads cannot adjust raw series for splits.
    pub fn with_actions(mut self, store: Arc<dyn ActionStore>) -> Self {
        self.actions = Some(store);
        self
    }

    /// Where corporate actions are refreshed from (Polygon, through the binary).
    pub fn with_actions_source(mut self, source: Arc<dyn ActionsSource>) -> Self {
        self.actions_source = Some(source);
        self
    }

    pub(crate) fn actions(&self) -> Option<&Arc<dyn ActionStore>> {
        self.actions.as_ref()
    }

    pub(crate) fn actions_source(&self) -> Option<&Arc<dyn ActionsSource>> {
        self.actions_source.as_ref()
    }

    /// How `GET /api/v1/quota` reads the upstream request quota.
    pub fn with_quota_view(mut self, view: Arc<dyn QuotaView>) -> Self {
        self.quota = Some(view);
        self
    }

    pub(crate) fn quota_view(&self) -> Option<&Arc<dyn QuotaView>> {
        self.quota.as_ref()
    }

    pub(crate) fn schedules(&self) -> Option<&Arc<dyn ScheduleStore>> {
        self.schedules.as_ref()
    }

    pub(crate) fn reference(&self) -> Option<&Arc<dyn ReferenceTickers>> {
        self.reference.as_ref()
    }

    /// The bus of a worker running in the same process: progress streams then wake on its
    /// events instead of waiting for their next poll.
    pub fn with_progress_bus(mut self, bus: ProgressBus) -> Self {
        self.progress = Some(bus);
        self
    }

    /// What `GET /metrics` answers (the Prometheus exporter's render function). Without one,
    /// `/metrics` answers 404 `metrics_disabled`.
    pub fn with_metrics_renderer(
        mut self,
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> Self {
        self.metrics = Some(Arc::new(render));
        self
    }

    pub(crate) fn status_cache(&self) -> &StatusCache {
        &self.status_cache
    }

    pub(crate) fn jobs(&self) -> &dyn JobRepository {
        self.jobs.as_ref()
    }

    pub(crate) fn candles(&self) -> &dyn CandleStore {
        self.candles.as_ref()
    }

    pub(crate) fn progress(&self) -> Option<&ProgressBus> {
        self.progress.as_ref()
    }

    pub(crate) fn metrics(&self) -> Option<&MetricsRenderer> {
        self.metrics.as_ref()
    }

    pub(crate) fn config(&self) -> &ApiConfig {
        &self.config
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("schedules", &self.schedules.is_some())
            .field("reference_tickers", &self.reference.is_some())
            .field("quota_view", &self.quota.is_some())
            .field("progress_bus", &self.progress.is_some())
            .field("metrics_renderer", &self.metrics.is_some())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_validated() {
        let config = ApiConfig::default()
            .with_cors_origins(["http://localhost:3000", "https://example.org"])
            .unwrap();
        assert!(matches!(config.cors(), CorsOrigins::List(l) if l.len() == 2));
        assert_eq!(
            ApiConfig::default()
                .with_cors_origins(Vec::<String>::new())
                .unwrap()
                .cors(),
            &CorsOrigins::Off
        );
        assert_eq!(
            ApiConfig::default()
                .with_cors_origins(["*"])
                .unwrap()
                .cors(),
            &CorsOrigins::Any
        );
        for bad in [
            "localhost",
            "http://",
            "http://a/b",
            "http://a/",
            "http://a\nb",
            "",
        ] {
            let err = ApiConfig::default().with_cors_origins([bad]).unwrap_err();
            assert!(matches!(err, Error::InvalidCorsOrigin(_)), "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_validated() {
        for bad in ["", "has space", "tab\t"] {
            assert!(ApiConfig::default()
                .with_api_token(Some(SecretString::from(bad)))
                .is_err());
        }
        assert!(ApiConfig::default()
            .with_api_token(Some(SecretString::from("t0ken")))
            .is_ok());
    }

    #[test]
    fn redacts_secrets() {
        let config = ApiConfig::default()
            .with_redacted_secret(SecretString::from("polygon-key"))
            .with_redacted_secret(SecretString::from(""));
        let mut text = "GET /v2?apiKey=polygon-key failed, polygon-key".to_owned();
        config.redact(&mut text);
        assert_eq!(text, "GET /v2?apiKey=[redacted] failed, [redacted]");
    }
}
