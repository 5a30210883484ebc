use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use backfill_domain::{Candle, DateRange, RangeBound, Symbol, Timeframe, Timespan};
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::calendar::day_of_date;
use crate::config::SimConfig;
use crate::fault::{Fault, Script, SimStats};
use crate::flatfile::FileCache;
use crate::generator::MarketGenerator;
use crate::hash::{hash, unit};
use crate::listing::{self, SimTicker};
use crate::render::{self, Results};
use crate::{cursor, Error, Result};

mod actions;
mod files;
mod grouped;
mod s3;
mod tickers;

pub use actions::{DEFAULT_ACTIONS_LIMIT, MAX_ACTIONS_LIMIT};
pub use tickers::{DEFAULT_TICKERS_LIMIT, MAX_TICKERS_LIMIT};

/// Polygon's largest `limit`.
pub const MAX_LIMIT: u64 = 50_000;
/// Polygon's `limit` when none is given.
pub const DEFAULT_LIMIT: u64 = 5_000;

/// A Polygon-compatible aggregates server: deterministic data, authentication, pagination, a rate
/// limit and fault injection. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: SimConfig,
    generator: MarketGenerator,
    market: Vec<String>,
    /// The universe tickers that have data (not configured as unknown), sorted.
    listed: Vec<String>,
    /// The reference records of the universe's and the delisted tickers that have data, sorted.
    tickers: Vec<SimTicker>,
    files: FileCache,
    state: Mutex<Dynamic>,
    base_url: OnceLock<String>,
    shutdown: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct Dynamic {
    stats: SimStats,
    /// When each revised day (number) was last revised.
    revised_at: HashMap<i64, DateTime<Utc>>,
    scripts: Vec<Script>,
    admitted: VecDeque<Instant>,
    requests: u64,
}

impl Simulator {
    /// A simulator with this configuration.
    pub fn new(config: SimConfig) -> Self {
        // The names after the universe's are the delisted tickers (see `listing`).
        let mut market =
            crate::market::tickers(config.market_size + config.market_size.div_ceil(5));
        let delisted = market.split_off(config.market_size);
        let tickers = listing::records(&market, &delisted)
            .into_iter()
            .filter(|r| !config.is_unknown(&r.ticker))
            .collect();
        let holidays = config.holidays.iter().map(|d| day_of_date(*d)).collect();
        let generator = MarketGenerator::new(config.seed, config.missing_bar_probability)
            .with_market(&market)
            .with_holidays(holidays);
        let mut listed: Vec<String> = market
            .iter()
            .filter(|t| !config.is_unknown(t))
            .cloned()
            .collect();
        listed.sort_unstable();
        let (shutdown, _) = watch::channel(false);
        let files = FileCache::new(config.cached_files.0, config.cached_files.1);
        Self {
            shared: Arc::new(Shared {
                config,
                generator,
                market,
                listed,
                tickers,
                files,
                state: Mutex::default(),
                base_url: OnceLock::new(),
                shutdown,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// The candle source behind the server.
    pub fn generator(&self) -> &MarketGenerator {
        &self.shared.generator
    }

    /// The tickers of the market universe ([`SimConfig::market`]), in a fixed order that does
    /// not depend on the universe's size (not sorted): stock tickers of two to five upper-case
    /// letters, each trading in only a share of minutes (its liquidity, see
    /// [`MarketGenerator::liquidity`]). Tickers outside the universe keep their data.
    pub fn market_tickers(&self) -> &[String] {
        &self.shared.market
    }

    /// Revises a New York day's data, as when Polygon replaces a flat file: the volume of every
    /// bar of that day grows by the day's revision number, alike for the aggregates, the grouped
    /// daily answer and the flat files (whose content and ETag change). Returns the new revision.
    pub fn revise_day(&self, date: NaiveDate) -> u64 {
        let day = day_of_date(date);
        let mut state = self.lock();
        // Whole seconds, as `Last-Modified` carries them.
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default();
        state.revised_at.insert(day, now);
        self.shared.generator.revise(day)
    }

    /// How many times a day has been revised.
    pub fn revision(&self, date: NaiveDate) -> u64 {
        self.shared.generator.revision(day_of_date(date))
    }

    /// Exactly the candles a complete backfill of `range` gets from this server: the bars that
    /// start within the range, oldest first (none for unknown tickers).
    pub fn expected_candles(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        range: &DateRange,
        adjusted: bool,
    ) -> Vec<Candle> {
        if self.shared.config.is_unknown(symbol.as_str()) {
            return Vec::new();
        }
        self.shared
            .generator
            .candles(symbol, timeframe, range, adjusted)
    }

    /// The axum router, for in-process tests (`tower::ServiceExt::oneshot`) or embedding.
    pub fn router(&self) -> Router {
        let bucket = &self.shared.config.bucket;
        Router::new()
            .route(
                "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}",
                get(aggregates),
            )
            .route(
                "/v2/aggs/grouped/locale/us/market/stocks/{date}",
                get(grouped::grouped_daily),
            )
            .route("/v3/reference/tickers", get(tickers::reference_tickers))
            .route("/v3/reference/splits", get(actions::reference_splits))
            .route("/v3/reference/dividends", get(actions::reference_dividends))
            .route(&format!("/{bucket}"), get(s3::list_objects))
            .route(&format!("/{bucket}/"), get(s3::list_objects))
            .route(&format!("/{bucket}/{{*key}}"), get(s3::object))
            .fallback(not_found)
            .with_state(self.clone())
    }

    /// Binds `addr` (use `127.0.0.1:0` for a free port) and serves until shut down. Spawn a given
    /// simulator once.
    pub async fn spawn(&self, addr: impl tokio::net::ToSocketAddrs) -> Result<RunningSimulator> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                addr: "the requested address".to_owned(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| Error::Bind {
            addr: "the requested address".to_owned(),
            source,
        })?;
        let base_url = format!("http://{local}");
        let _ = self.shared.base_url.set(base_url.clone());
        let mut stop = self.shared.shutdown.subscribe();
        let app = self.router();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await
        });
        tracing::info!(%base_url, "polygon simulator listening");
        Ok(RunningSimulator {
            sim: self.clone(),
            addr: local,
            base_url,
            task: Some(task),
        })
    }

    /// A snapshot of what has been served.
    pub fn stats(&self) -> SimStats {
        self.lock().stats.clone()
    }

    /// Forgets what has been served.
    pub fn reset_stats(&self) {
        self.lock().stats = SimStats::default();
    }

    /// Serves these faults, in order, to the next requests (after any path-specific script).
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.script(None, faults);
    }

    /// Serves these faults, in order, to the next requests whose path contains `pattern`.
    pub fn inject_on(&self, pattern: impl Into<String>, faults: impl IntoIterator<Item = Fault>) {
        self.script(Some(pattern.into()), faults);
    }

    /// Drops every scripted fault not yet served.
    pub fn clear_faults(&self) {
        self.lock().scripts.clear();
    }

    fn script(&self, pattern: Option<String>, faults: impl IntoIterator<Item = Fault>) {
        let script = Script {
            pattern,
            queue: faults.into_iter().collect(),
        };
        let mut state = self.lock();
        // Path-specific scripts are consulted before global ones.
        if script.pattern.is_some() {
            let at = state
                .scripts
                .iter()
                .position(|s| s.pattern.is_none())
                .unwrap_or(state.scripts.len());
            state.scripts.insert(at, script);
        } else {
            state.scripts.push(script);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Dynamic> {
        match self.shared.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A simulator serving on a socket. Dereferences to its [`Simulator`]; dropping it stops it.
#[derive(Debug)]
pub struct RunningSimulator {
    sim: Simulator,
    addr: SocketAddr,
    base_url: String,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSimulator {
    /// `http://127.0.0.1:PORT`, to configure a client with.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The simulator.
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// Stops accepting connections, cuts short held (slow) responses and waits for the server.
    pub async fn shutdown(mut self) -> Result<()> {
        self.sim.shared.shutdown.send_replace(true);
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result.map_err(Error::Serve),
                Err(e) => Err(Error::Task(e.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Deref for RunningSimulator {
    type Target = Simulator;
    fn deref(&self) -> &Simulator {
        &self.sim
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            self.sim.shared.shutdown.send_replace(true);
            task.abort();
        }
    }
}

/// What the gatekeeping part of a request decided.
enum Verdict {
    Reject(Response),
    Serve(Option<Fault>),
}

type AggsPath = (String, String, String, String, String);

async fn aggregates(
    State(sim): State<Simulator>,
    Path((ticker, multiplier, timespan, from, to)): Path<AggsPath>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let parse =
        |params: &Params| AggsRequest::parse(&ticker, &multiplier, &timespan, &from, &to, params);
    answer(
        &sim,
        &uri,
        query.as_deref(),
        &headers,
        parse,
        Simulator::serve,
    )
    .await
}

/// What every JSON endpoint does with a request: admits it (key, rate limit, faults), parses it
/// (a 400 with Polygon's error body when it does not parse) and serves it, holding the answer
/// back for a slow fault.
async fn answer<R>(
    sim: &Simulator,
    uri: &Uri,
    query: Option<&str>,
    headers: &HeaderMap,
    parse: impl FnOnce(&Params) -> Result<R, String>,
    serve: impl Fn(&Simulator, &str, &str, &R, Option<&Fault>) -> Response,
) -> Response {
    let path = uri.path();
    let params = Params::parse(query.unwrap_or(""));
    let (request_id, verdict) = sim.admit(path, headers, &params);
    let fault = match verdict {
        Verdict::Reject(response) => return response,
        Verdict::Serve(fault) => fault,
    };
    let request = match parse(&params) {
        Ok(r) => r,
        Err(text) => {
            let body = json(render::error_body(&request_id, &text));
            return sim.respond(path, StatusCode::BAD_REQUEST, &request_id, body);
        }
    };
    if let Some(Fault::Slow(delay)) = fault {
        let response = serve(sim, path, &request_id, &request, None);
        sim.hold(delay).await;
        return response;
    }
    serve(sim, path, &request_id, &request, fault.as_ref())
}

async fn not_found(State(sim): State<Simulator>, uri: Uri, headers: HeaderMap) -> Response {
    let request_id = sim.next_request_id();
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-"));
    if signed {
        // An S3 client that asks for another bucket.
        let response = s3::error_xml(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
            None,
            &request_id,
        );
        return sim.respond(uri.path(), StatusCode::NOT_FOUND, &request_id, response);
    }
    let body = render::message_body(
        "NOT_FOUND",
        &request_id,
        "The specified resource was not found",
    );
    sim.respond(uri.path(), StatusCode::NOT_FOUND, &request_id, json(body))
}

impl Simulator {
    /// Where the simulator serves (`http://127.0.0.1` before it is spawned), for `next_url`s.
    fn base_url(&self) -> &str {
        self.shared
            .base_url
            .get()
            .map_or("http://127.0.0.1", String::as_str)
    }

    fn next_request_id(&self) -> String {
        let n = {
            let mut state = self.lock();
            state.requests += 1;
            state.requests
        };
        request_id(self.shared.config.seed, n)
    }

    /// Records the arrival and applies authentication, the rate limit and scripted or random
    /// faults.
    fn admit(&self, path: &str, headers: &HeaderMap, params: &Params) -> (String, Verdict) {
        let config = &self.shared.config;
        let now = Instant::now();
        let mut state = self.lock();
        let (n, request_id) = self.arrive(&mut state, now);

        let key = bearer(headers).or(params.get("apiKey"));
        let auth_error = match (key, &config.api_key) {
            (None | Some(""), _) => Some("API Key was not provided"),
            (Some(given), Some(expected)) if given != expected => Some("Unknown API Key"),
            _ => None,
        };
        if let Some(text) = auth_error {
            let body = json(render::error_body(&request_id, text));
            return (
                request_id.clone(),
                Verdict::Reject(self.record(
                    &mut state,
                    path,
                    StatusCode::UNAUTHORIZED,
                    &request_id,
                    body,
                )),
            );
        }

        if let Some((limit, window)) = config.rate_limit {
            while state
                .admitted
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                state.admitted.pop_front();
            }
            if state.admitted.len() >= limit as usize {
                let response = rate_limited(&request_id, config.retry_after);
                return (
                    request_id.clone(),
                    Verdict::Reject(self.record(
                        &mut state,
                        path,
                        StatusCode::TOO_MANY_REQUESTS,
                        &request_id,
                        response,
                    )),
                );
            }
            state.admitted.push_back(now);
        }

        let fault = self.pick_fault(&mut state, path, n);
        (request_id, Verdict::Serve(fault))
    }

    /// Counts a request's arrival and gives it its number and request id.
    fn arrive(&self, state: &mut Dynamic, now: Instant) -> (u64, String) {
        state.requests += 1;
        let n = state.requests;
        state.stats.arrivals.push(now);
        (n, request_id(self.shared.config.seed, n))
    }

    /// The fault for the `n`-th request, to `path`: the next scripted one that applies, or a
    /// random one.
    fn pick_fault(&self, state: &mut Dynamic, path: &str, n: u64) -> Option<Fault> {
        let config = &self.shared.config;
        let scripted = state.scripts.iter_mut().find_map(|s| {
            let applies = s.pattern.as_ref().is_none_or(|p| path.contains(p.as_str()));
            if applies {
                s.queue.pop_front()
            } else {
                None
            }
        });
        state.scripts.retain(|s| !s.queue.is_empty());
        scripted.or_else(|| {
            let (probability, kinds) = config.random_faults.as_ref()?;
            let w = hash(&[config.fault_seed, n]);
            if kinds.is_empty() || unit(w) >= *probability {
                return None;
            }
            kinds
                .get((hash(&[w]) % kinds.len() as u64) as usize)
                .cloned()
        })
    }

    /// Builds the response for an admitted, valid request.
    fn serve(
        &self,
        path: &str,
        request_id: &str,
        req: &AggsRequest,
        fault: Option<&Fault>,
    ) -> Response {
        if let Some(response) = self.fault_response(path, request_id, fault) {
            return response;
        }
        let config = &self.shared.config;
        let unknown = config.is_unknown(&req.ticker);
        let limit = config
            .max_page_size
            .map_or(req.limit, |cap| req.limit.min(cap));
        let page = if unknown {
            Default::default()
        } else {
            self.shared.generator.page(
                &req.ticker,
                req.timeframe,
                req.from_ms,
                req.to_ms,
                req.adjusted,
                req.descending,
                limit,
            )
        };
        let base = self.base_url();
        let sort = if req.descending { "desc" } else { "asc" };
        let cursor = cursor::encode(format!("limit={}&sort={sort}", req.limit).as_bytes());
        let next_url = if matches!(fault, Some(Fault::RepeatCursor)) {
            Some(format!("{base}{path}?cursor={cursor}"))
        } else {
            page.next.map(|next| {
                let (from, to) = if req.descending {
                    (req.from_raw.clone(), (next - 1).to_string())
                } else {
                    (next.to_string(), req.to_raw.clone())
                };
                format!(
                    "{base}/v2/aggs/ticker/{}/range/{}/{}/{from}/{to}?cursor={cursor}",
                    req.ticker,
                    req.timeframe.multiplier(),
                    req.timeframe.timespan().as_str(),
                )
            })
        };
        let results = if matches!(fault, Some(Fault::NullResults)) && !page.bars.is_empty() {
            Results::Null
        } else {
            Results::Bars(&page.bars)
        };
        let body = render::ok_body(
            &req.ticker,
            req.adjusted,
            &config.status,
            request_id,
            results,
            page.query_count,
            next_url.as_deref(),
        );
        self.respond(path, StatusCode::OK, request_id, json_with(body, fault))
    }

    /// The whole response for a fault that replaces the answer (a status, nginx's 504 page, a
    /// 429), or `None` for the faults that only change or delay the answer.
    fn fault_response(
        &self,
        path: &str,
        request_id: &str,
        fault: Option<&Fault>,
    ) -> Option<Response> {
        match fault? {
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Some(self.respond(path, status, request_id, status_body(status, request_id)))
            }
            Fault::GatewayTimeoutHtml => {
                let response =
                    ([(header::CONTENT_TYPE, "text/html")], render::HTML_504).into_response();
                Some(self.respond(path, StatusCode::GATEWAY_TIMEOUT, request_id, response))
            }
            Fault::RateLimited { retry_after } => {
                let response = rate_limited(request_id, *retry_after);
                Some(self.respond(path, StatusCode::TOO_MANY_REQUESTS, request_id, response))
            }
            _ => None,
        }
    }

    /// Waits for a slow fault's delay, or less if the simulator shuts down.
    async fn hold(&self, delay: std::time::Duration) {
        let mut stop = self.shared.shutdown.subscribe();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|stopped| *stopped) => {}
        }
    }

    fn respond(
        &self,
        path: &str,
        status: StatusCode,
        request_id: &str,
        response: Response,
    ) -> Response {
        let mut state = self.lock();
        self.record(&mut state, path, status, request_id, response)
    }

    fn record(
        &self,
        state: &mut Dynamic,
        path: &str,
        status: StatusCode,
        request_id: &str,
        mut response: Response,
    ) -> Response {
        *state
            .stats
            .served
            .entry((path.to_owned(), status.as_u16()))
            .or_default() += 1;
        tracing::debug!(path, status = status.as_u16(), "simulator served");
        *response.status_mut() = status;
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
}

fn request_id(seed: u64, n: u64) -> String {
    format!("{:016x}{:016x}", hash(&[seed, n, 1]), hash(&[seed, n, 2]))
}

fn json(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A JSON response with the body as a fault breaks it: cut in half, or dropped half-way.
fn json_with(body: Vec<u8>, fault: Option<&Fault>) -> Response {
    match fault {
        Some(Fault::TruncatedJson) => {
            let half = body.len() / 2;
            json(body[..half].to_vec())
        }
        Some(Fault::AbortedBody) => aborted(body, "application/json"),
        _ => json(body),
    }
}

fn status_body(status: StatusCode, request_id: &str) -> Response {
    let text = status.canonical_reason().unwrap_or("Error");
    let body = match status.as_u16() {
        401 => render::error_body(request_id, "Unknown API Key"),
        403 => render::message_body("NOT_AUTHORIZED", request_id, render::NOT_ENTITLED_TEXT),
        404 => render::message_body(
            "NOT_FOUND",
            request_id,
            "The specified resource was not found",
        ),
        400 => render::error_body(
            request_id,
            "The parameter 'to' cannot be a time that occurs before 'from'",
        ),
        _ => render::error_body(request_id, text),
    };
    json(body)
}

fn rate_limited(request_id: &str, retry_after: Option<u64>) -> Response {
    let mut response = json(render::error_body(request_id, render::RATE_LIMIT_TEXT));
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A response that announces the whole body but sends only half of it before failing.
fn aborted(body: Vec<u8>, content_type: &'static str) -> Response {
    let total = body.len();
    let half = Bytes::from(body).slice(..total / 2);
    // Yielding between the chunk and the failure lets the server flush the headers and the
    // first half before the connection drops, as a reset mid-body looks on the wire.
    let chunks = futures::stream::unfold(Some(half), |state| async move {
        match state {
            Some(half) => Some((Ok(half), None)),
            None => {
                tokio::task::yield_now().await;
                let reset =
                    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated reset");
                Some((Err::<Bytes, _>(reset), None))
            }
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

/// The query string, with `cursor` expanded into the parameters it carries.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Self {
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        let from_cursor: Vec<(String, String)> = pairs
            .iter()
            .find(|(k, _)| k == "cursor")
            .and_then(|(_, v)| cursor::decode(v))
            .map(|bytes| Self::parse(&String::from_utf8_lossy(&bytes)).0)
            .unwrap_or_default();
        for (k, v) in from_cursor {
            if !pairs.iter().any(|(key, _)| *key == k) {
                pairs.push((k, v));
            }
        }
        Self(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A `true` or `false` parameter; `None` when absent.
    fn flag(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(format!("Could not parse the {name} parameter")),
        }
    }

    /// Whether an order parameter (`asc`, the default, or `desc`) asks for descending order.
    fn descending(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None | Some("asc") => Ok(false),
            Some("desc") => Ok(true),
            Some(_) => Err(format!("Could not parse the {name} parameter")),
        }
    }

    /// `limit`: `default` when absent, clamped to `1..=max`.
    fn limit(&self, default: u64, max: u64) -> Result<u64, String> {
        match self.get("limit") {
            None => Ok(default),
            Some(l) => l
                .parse::<u64>()
                .map(|l| l.clamp(1, max))
                .map_err(|_| "Could not parse the limit parameter".to_owned()),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A validated aggregates request.
#[derive(Debug)]
struct AggsRequest {
    ticker: String,
    timeframe: Timeframe,
    from_ms: i64,
    to_ms: i64,
    from_raw: String,
    to_raw: String,
    adjusted: bool,
    descending: bool,
    limit: u64,
}

impl AggsRequest {
    fn parse(
        ticker: &str,
        multiplier: &str,
        timespan: &str,
        from: &str,
        to: &str,
        params: &Params,
    ) -> Result<Self, String> {
        let timespan = Timespan::ALL
            .into_iter()
            .find(|t| t.as_str() == timespan)
            .ok_or_else(|| format!("Could not parse the timespan: {timespan:?} is not one of second, minute, hour, day, week, month, quarter, year"))?;
        let multiplier: u32 = multiplier
            .parse()
            .map_err(|_| "Could not parse the multiplier".to_owned())?;
        let timeframe = Timeframe::new(multiplier, timespan).map_err(|e| e.to_string())?;
        let bound = |s: &str| {
            RangeBound::parse(s).map_err(|_| format!("Could not parse the time parameter: {s:?}"))
        };
        let (from_bound, to_bound) = (bound(from)?, bound(to)?);
        let from_ms = from_bound.start().timestamp_millis();
        let to_ms = to_bound.end().timestamp_millis();
        if from_ms > to_ms {
            return Err("The parameter 'to' cannot be a time that occurs before 'from'".to_owned());
        }
        let adjusted = params.flag("adjusted")?.unwrap_or(true);
        let descending = params.descending("sort")?;
        let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
        Ok(Self {
            ticker: ticker.to_owned(),
            timeframe,
            from_ms,
            to_ms,
            from_raw: from.to_owned(),
            to_raw: to.to_owned(),
            adjusted,
            descending,
            limit,
        })
    }
}
