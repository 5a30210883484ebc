//! Backfill jobs: submit, status, recent, cancel and retry.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backfill_domain::{
    BackfillJob, BackfillMode, DateRange, JobId, JobProgress, JobSpec, JobStatus, RangeBound,
    SourceChoice, SourceCost, Sources, Symbol, Task, Timeframe, Timespan, Universe,
};
use backfill_storage::{JobDetails, JobSummary};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::state::{ApiConfig, AppState};

/// The header that makes a submission idempotent.
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set to `true` on a submission answered from an earlier one with the same idempotency key.
pub(crate) const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The longest idempotency key accepted, in bytes.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// `recent`'s default and largest page.
const RECENT_DEFAULT_LIMIT: u32 = 20;
const RECENT_MAX_LIMIT: u32 = 100;
/// How many bad symbols an error lists in its details.
const MAX_REPORTED_SYMBOLS: usize = 50;

/// The job routes (all under `/api/v1`, so behind the token when one is set).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_backfill))
        .routes(routes!(plan_backfill))
        .routes(routes!(job_status))
        .routes(routes!(recent_jobs))
        .routes(routes!(cancel_job))
        .routes(routes!(retry_job))
}

/// A backfill request: which symbols (or the whole market), at which bar size, over which
/// dates, from which source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "symbols": ["AAPL", "MSFT"], "timeframe": "1m", "from": "2024-01-01", "to": "2024-06-30",
    "adjusted": true, "mode": "missing", "source": "auto"
}))]
pub struct CreateBackfillRequest {
    /// Tickers (letters, digits and `.:-_`), upper-cased and de-duplicated: 1 to 1,000 for the
    /// rest source, up to 20,000 for the bulk sources. Empty or absent with `"universe": "all"`.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// `symbols` (the default): the listed symbols; `all`: every ticker the source has each
    /// day (flatfiles and grouped only).
    #[serde(default)]
    pub universe: Universe,
    /// Where the bars come from: `rest` (the aggregates endpoint, symbol by symbol), `flatfiles`
    /// (Flat Files: 1m or 1d bars of the whole market per trading day, raw prices, no vwap;
    /// needs S3 credentials), `grouped` (grouped daily: 1d bars of the whole market per
    /// request), or `auto` (the source with the fewest upstream calls that can serve the job;
    /// the job says why). Default: `rest`, or `auto` with `"universe": "all"`.
    #[serde(default)]
    #[schema(example = "auto")]
    pub source: Option<String>,
    /// `"1m"`-style short form, or `{"multiplier": 1, "timespan": "minute"}`.
    #[schema(value_type = Timeframe)]
    pub timeframe: TimeframeInput,
    /// The first day (`YYYY-MM-DD`, a New York trading date), an RFC 3339 instant, or Unix
    /// milliseconds.
    #[schema(value_type = String, example = "2024-01-01")]
    pub from: BoundInput,
    /// The last day, inclusive (same forms as `from`); not after tomorrow.
    #[schema(value_type = String, example = "2024-06-30")]
    pub to: BoundInput,
    /// Split- and dividend-adjusted prices (default) or raw ones; the two are stored apart.
    #[serde(default = "default_adjusted")]
    #[schema(default = true)]
    pub adjusted: bool,
    /// `missing` (default) fetches only what is not stored yet; `full` fetches everything again.
    #[serde(default)]
    pub mode: BackfillMode,
}

/// A timeframe as sent: the short form or the long one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TimeframeInput {
    /// `"5m"`, `"1d"`, `"1mo"`.
    Short(String),
    /// `{"multiplier": 5, "timespan": "minute"}`.
    Long { multiplier: u32, timespan: String },
}

/// A range bound as sent: a string (date or RFC 3339) or Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BoundInput {
    /// Unix milliseconds.
    Millis(i64),
    /// `YYYY-MM-DD` or RFC 3339.
    Text(String),
}

fn default_adjusted() -> bool {
    true
}

impl TimeframeInput {
    pub(crate) fn parse(&self) -> Result<Timeframe, ApiError> {
        match self {
            Self::Short(s) => Ok(Timeframe::parse(s)?),
            Self::Long {
                multiplier,
                timespan,
            } => {
                let unit = Timespan::ALL
                    .into_iter()
                    .find(|t| t.as_str() == timespan.as_str())
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidTimeframe,
                            "invalid timeframe: expected a timespan of second, minute, hour, \
                             day, week, month, quarter or year",
                        )
                    })?;
                Ok(Timeframe::new(*multiplier, unit)?)
            }
        }
    }
}

impl BoundInput {
    fn parse(&self) -> Result<RangeBound, ApiError> {
        Ok(match self {
            Self::Millis(ms) => RangeBound::from_millis(*ms)?,
            Self::Text(s) => RangeBound::parse(s)?,
        })
    }
}

/// Parses every ticker, reporting every bad one at once (up to 50 in the details).
pub(crate) fn parse_symbols(raw: &[String]) -> Result<Vec<Symbol>, ApiError> {
    let mut symbols = Vec::with_capacity(raw.len());
    let mut bad = Vec::new();
    let mut first_error = None;
    for (index, raw) in raw.iter().enumerate() {
        match Symbol::parse(raw) {
            Ok(symbol) => symbols.push(symbol),
            Err(err) => {
                if let backfill_domain::Error::InvalidSymbol { input, reason } = &err {
                    if bad.len() < MAX_REPORTED_SYMBOLS {
                        bad.push(json!({ "index": index, "input": input, "reason": reason }));
                    }
                }
                first_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = first_error {
        let count = raw.len() - symbols.len();
        let message = if count == 1 {
            err.to_string()
        } else {
            format!("{err} (and {} more invalid symbols)", count - 1)
        };
        return Err(ApiError::new(ErrorCode::InvalidSymbol, message)
            .with_details(json!({ "symbols": bad })));
    }
    Ok(symbols)
}

impl CreateBackfillRequest {
    /// Validates everything, reporting every bad symbol at once, and resolves the source among
    /// those `available`.
    pub(crate) fn into_spec(self, available: Sources) -> Result<JobSpec, ApiError> {
        let (spec, _) = self.plan(available)?;
        Ok(spec)
    }

    /// The job this request would create, and what each source would cost it.
    pub(crate) fn plan(self, available: Sources) -> Result<(JobSpec, Vec<SourceCost>), ApiError> {
        let symbols = parse_symbols(&self.symbols)?;
        let timeframe = self.timeframe.parse()?;
        let range = DateRange::new(self.from.parse()?, self.to.parse()?)?;
        let symbols = match self.universe {
            Universe::Symbols => Some(symbols),
            Universe::All if symbols.is_empty() => None,
            Universe::All => {
                return Err(ApiError::new(
                    ErrorCode::InvalidJob,
                    "invalid job: \"universe\": \"all\" takes every ticker of the source: \
                     leave \"symbols\" out, or use \"universe\": \"symbols\"",
                ))
            }
        };
        let choice = self
            .source
            .as_deref()
            .map(str::parse::<SourceChoice>)
            .transpose()?;
        let (spec, costs) = JobSpec::plan(
            symbols,
            timeframe,
            range,
            self.adjusted,
            self.mode,
            choice,
            available,
        )?;
        Ok((spec, costs))
    }
}

/// A job, its progress and every symbol's task: the answer of submit, status, cancel and
/// retry, and the data of each `progress` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobStatusBody {
    pub job: BackfillJob,
    pub progress: JobProgress,
    /// One task per symbol, in the order of the job's symbols.
    pub tasks: Vec<Task>,
}

impl JobStatusBody {
    /// The body for a job as read from storage, with configured secrets scrubbed from its
    /// error texts.
    pub(crate) fn new(details: JobDetails, config: &ApiConfig) -> Self {
        let JobDetails {
            mut job,
            mut tasks,
            progress,
        } = details;
        redact_job(&mut job, config);
        for task in &mut tasks {
            if let Some(error) = &mut task.last_error {
                config.redact(error);
            }
        }
        Self {
            job,
            progress,
            tasks,
        }
    }
}

fn redact_job(job: &mut BackfillJob, config: &ApiConfig) {
    if let Some(error) = &mut job.error {
        config.redact(error);
    }
}

/// A job and its progress, as listed by `recent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobSummaryBody {
    pub job: BackfillJob,
    pub progress: JobProgress,
}

/// The answer of `recent`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecentJobsBody {
    pub jobs: Vec<JobSummaryBody>,
}

/// The query of `recent`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecentQuery {
    /// How many jobs, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// Only jobs in this status.
    #[param(inline)]
    status: Option<JobStatus>,
}

/// Parses a job id from the path.
pub(crate) fn parse_job_id(raw: &str) -> Result<JobId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidJobId,
            "the job id must be a UUID such as 0190a4c2-7d3e-7b41-9c55-5a8e3f1b2c4d",
        )
    })
}

/// Reads the `Idempotency-Key` header: 1 to 255 printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && bytes.iter().all(|b| (b' '..=b'~').contains(b));
    match std::str::from_utf8(bytes) {
        Ok(key) if valid => Ok(Some(key.to_owned())),
        _ => Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            "the Idempotency-Key header must hold 1 to 255 printable ASCII characters",
        )),
    }
}

async fn status_body(state: &AppState, id: JobId) -> Result<JobStatusBody, ApiError> {
    let details = state.jobs().get_job(id).await?;
    Ok(JobStatusBody::new(details, state.config()))
}

/// Submit a backfill.
///
/// Validates the symbols (upper-cased and de-duplicated), the timeframe and the range, creates
/// a queued job with one task per symbol, and answers at once; workers do the fetching. With
/// an `Idempotency-Key`, repeating the request answers the job it created the first time.
#[utoipa::path(
    post,
    path = "/api/v1/backfill",
    tag = "jobs",
    request_body = CreateBackfillRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "1 to 255 printable ASCII characters; a repeated request with the same key and body answers the same job"),
    ),
    responses(
        (status = 202, description = "The job was queued (or, with a known idempotency key, found)", body = JobStatusBody,
         headers(
            ("Location" = String, description = "The job's status URL: /api/v1/backfill/status/{job_id}"),
            ("Idempotent-Replayed" = Option<String>, description = "`true` when an earlier request with the same key created the job"),
         )),
        (status = 400, description = "invalid_json, invalid_body, invalid_symbol, invalid_timeframe, invalid_range, invalid_job, invalid_source, source_unavailable or invalid_idempotency_key", body = ErrorBody),
        (status = 409, description = "idempotency_key_conflict: the key was used for a different request", body = ErrorBody),
        (status = 413, description = "payload_too_large: the body is over 1 MiB", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not sent as application/json", body = ErrorBody),
    )
)]
pub(crate) async fn create_backfill(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(request): AppJson<CreateBackfillRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let spec = request.into_spec(state.config().sources())?;
    let created = state
        .jobs()
        .create_job(&spec, key.as_deref())
        .await
        .map_err(ApiError::from_create)?;
    let id = created.job.id;
    tracing::info!(
        job_id = %id,
        created = created.created,
        source = %spec.source(),
        symbols = spec.symbols().len(),
        tasks = spec.units().len(),
        "backfill submitted"
    );
    let body = status_body(&state, id).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/backfill/status/{id}"))
        .map_err(|e| ApiError::new(ErrorCode::InternalError, "bad location").with_source(e))?;
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response();
    if !created.created {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// What a backfill request would become: the job's spec (with the source chosen and why), its
/// tasks, and what each source would cost it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanBody {
    /// The validated spec, as the job would be created.
    pub spec: JobSpec,
    /// Tasks the job would have: one per symbol (rest), one per weekday (bulk sources).
    pub tasks: usize,
    /// Upstream calls and estimated bytes of each source, and why a source cannot serve the
    /// job when it cannot.
    pub costs: Vec<SourceCost>,
}

/// Plan a backfill.
///
/// Validates a request exactly as submitting it would and answers the job it would create,
/// with the source chosen (and, for `auto`, why) and every source's cost: requests or file
/// downloads, and estimated bytes. Nothing is created.
#[utoipa::path(
    post,
    path = "/api/v1/backfill/plan",
    tag = "jobs",
    request_body = CreateBackfillRequest,
    responses(
        (status = 200, description = "The job the request would create and what each source would cost", body = PlanBody),
        (status = 400, description = "invalid_json, invalid_body, invalid_symbol, invalid_timeframe, invalid_range, invalid_job, invalid_source or source_unavailable", body = ErrorBody),
        (status = 413, description = "payload_too_large: the body is over 1 MiB", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not sent as application/json", body = ErrorBody),
    )
)]
pub(crate) async fn plan_backfill(
    State(state): State<AppState>,
    AppJson(request): AppJson<CreateBackfillRequest>,
) -> Result<Json<PlanBody>, ApiError> {
    let (spec, costs) = request.plan(state.config().sources())?;
    Ok(Json(PlanBody {
        tasks: spec.units().len(),
        spec,
        costs,
    }))
}

/// A job's status.
///
/// The job, its progress (symbols total, done, failed, running; candles stored; percent;
/// throughput; ETA) and every symbol's task (status, candles, attempts, last error,
/// checkpoint).
#[utoipa::path(
    get,
    path = "/api/v1/backfill/status/{job_id}",
    tag = "jobs",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, its progress and its tasks", body = JobStatusBody),
        (status = 400, description = "invalid_job_id", body = ErrorBody),
        (status = 404, description = "not_found: no such job", body = ErrorBody),
    )
)]
pub(crate) async fn job_status(
    State(state): State<AppState>,
    AppPath(job_id): AppPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_job_id(&job_id)?;
    // Many clients may poll one job: they share one read per cache interval.
    let reader = state.clone();
    let body = state
        .status_cache()
        .get_or_load(id, move || async move {
            let body = status_body(&reader, id).await?;
            serde_json::to_vec(&body).map(Bytes::from).map_err(|e| {
                ApiError::new(ErrorCode::InternalError, "could not serialise the job")
                    .with_source(e)
            })
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Recent jobs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/backfill/recent",
    tag = "jobs",
    params(RecentQuery),
    responses(
        (status = 200, description = "The most recent jobs with their progress, newest first", body = RecentJobsBody),
        (status = 400, description = "invalid_query (an unknown status, a limit that is not a number) or invalid_limit", body = ErrorBody),
    )
)]
pub(crate) async fn recent_jobs(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<RecentQuery>,
) -> Result<Json<RecentJobsBody>, ApiError> {
    let limit = query.limit.unwrap_or(RECENT_DEFAULT_LIMIT);
    if !(1..=RECENT_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be between 1 and {RECENT_MAX_LIMIT}, got {limit}"),
        ));
    }
    let jobs = state.jobs().list_jobs(limit, query.status).await?;
    let config = state.config();
    let jobs = jobs
        .into_iter()
        .map(|JobSummary { mut job, progress }| {
            redact_job(&mut job, config);
            JobSummaryBody { job, progress }
        })
        .collect();
    Ok(Json(RecentJobsBody { jobs }))
}

/// Cancel a job.
///
/// Queued tasks are cancelled at once; running ones stop when their workers notice (within a
/// heartbeat). Answers the job as it stands after the request.
#[utoipa::path(
    post,
    path = "/api/v1/backfill/{job_id}/cancel",
    tag = "jobs",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job was cancelled", body = JobStatusBody),
        (status = 400, description = "invalid_job_id", body = ErrorBody),
        (status = 404, description = "not_found: no such job", body = ErrorBody),
        (status = 409, description = "conflict: the job already ended", body = ErrorBody),
    )
)]
pub(crate) async fn cancel_job(
    State(state): State<AppState>,
    AppPath(job_id): AppPath<String>,
) -> Result<Json<JobStatusBody>, ApiError> {
    let id = parse_job_id(&job_id)?;
    state.jobs().cancel_job(id).await?;
    state.status_cache().invalidate(id);
    tracing::info!(job_id = %id, "job cancelled");
    Ok(Json(status_body(&state, id).await?))
}

/// Retry a job.
///
/// Puts a failed, cancelled or partly failed job back in the queue: its failed and cancelled
/// symbols resume from their checkpoints.
#[utoipa::path(
    post,
    path = "/api/v1/backfill/{job_id}/retry",
    tag = "jobs",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job is queued again", body = JobStatusBody),
        (status = 400, description = "invalid_job_id", body = ErrorBody),
        (status = 404, description = "not_found: no such job", body = ErrorBody),
        (status = 409, description = "conflict: the job is queued, running or succeeded, or has nothing to retry", body = ErrorBody),
    )
)]
pub(crate) async fn retry_job(
    State(state): State<AppState>,
    AppPath(job_id): AppPath<String>,
) -> Result<Json<JobStatusBody>, ApiError> {
    let id = parse_job_id(&job_id)?;
    state.jobs().retry_job(id).await?;
    state.status_cache().invalidate(id);
    tracing::info!(job_id = %id, "job retried");
    Ok(Json(status_body(&state, id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> CreateBackfillRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn accepts_both_timeframe_forms_and_defaults() {
        let spec = request(json!({
            "symbols": ["aapl", "AAPL", "msft"], "timeframe": {"multiplier": 5, "timespan": "minute"},
            "from": "2024-01-01", "to": 1_704_153_600_000i64
        }))
        .into_spec(Sources { flat_files: false })
        .unwrap();
        let names: Vec<_> = spec.symbols().iter().map(Symbol::as_str).collect();
        assert_eq!(names, ["AAPL", "MSFT"]);
        assert_eq!(spec.timeframe().to_string(), "5m");
        assert!(spec.adjusted());
        assert_eq!(spec.mode(), BackfillMode::Missing);
    }

    #[test]
    fn reports_every_bad_symbol() {
        let err = request(json!({
            "symbols": ["AAPL", "A B", "<img src=x>"], "timeframe": "1m",
            "from": "2024-01-01", "to": "2024-01-02"
        }))
        .into_spec(Sources { flat_files: false })
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidSymbol);
        let body = err.into_body();
        assert!(body.error.message.contains("and 1 more"), "{body:?}");
        let details = body.error.details.unwrap();
        assert_eq!(details["symbols"][0]["index"], 1);
        assert_eq!(details["symbols"][1]["input"], "<img src=x>");
    }

    #[test]
    fn idempotency_keys_are_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(idempotency_key(&headers).unwrap(), None);
        headers.insert(&IDEMPOTENCY_KEY, HeaderValue::from_static("abc-123 x"));
        assert_eq!(
            idempotency_key(&headers).unwrap().as_deref(),
            Some("abc-123 x")
        );
        for bad in [
            HeaderValue::from_static(""),
            HeaderValue::from_str(&"k".repeat(256)).unwrap(),
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
            HeaderValue::from_bytes(b"a\tb").unwrap(),
        ] {
            headers.insert(&IDEMPOTENCY_KEY, bad);
            assert_eq!(
                idempotency_key(&headers).unwrap_err().code(),
                ErrorCode::InvalidIdempotencyKey
            );
        }
        headers.insert(
            &IDEMPOTENCY_KEY,
            HeaderValue::from_str(&"k".repeat(255)).unwrap(),
        );
        assert!(idempotency_key(&headers).is_ok());
    }
}
