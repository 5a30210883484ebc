//! Schedules (keep series current: a job per due time) and universes (named symbol lists,
//! set by hand or refreshed from the reference tickers).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backfill_domain::{
    JobId, Name, NamedUniverse, ScheduleSpec, SourceChoice, Tickers, Timeframe, Trigger,
};
use backfill_storage::{Schedule, ScheduleRun, ScheduleStore};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{AppJson, AppPath};
use crate::jobs::{parse_symbols, TimeframeInput};
use crate::state::AppState;
use crate::upstream::{reference_error, RefreshUniverseRequest, TickerStatus};

/// The default look-back of a schedule's runs, in days.
const DEFAULT_LOOKBACK_DAYS: u32 = 5;

/// The schedule and universe routes (under `/api/v1`, behind the token when one is set).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(get_schedule, delete_schedule))
        .routes(routes!(pause_schedule))
        .routes(routes!(resume_schedule))
        .routes(routes!(list_universes))
        .routes(routes!(get_universe, put_universe, delete_universe))
        .routes(routes!(refresh_universe))
}

/// A new schedule: what to keep current and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "nightly", "symbols": ["AAPL", "MSFT"], "timeframes": ["1m", "1d"],
    "trigger": "after_close+30m", "lookback_days": 5
}))]
pub struct CreateScheduleRequest {
    /// 1 to 64 letters, digits, `.`, `_` or `-` (lower-cased); unique.
    pub name: String,
    /// The tickers to keep current; leave out with `universe`.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// A named universe (its symbols as they stand at each run), or `all`: every ticker of a
    /// bulk source (`flatfiles` or `grouped`).
    #[serde(default)]
    pub universe: Option<String>,
    /// 1 to 8 timeframes; each run makes one job per timeframe.
    #[schema(value_type = Vec<Timeframe>)]
    pub timeframes: Vec<TimeframeInput>,
    /// Split-adjusted prices (default) or raw ones.
    #[serde(default = "default_adjusted")]
    #[schema(default = true)]
    pub adjusted: bool,
    /// `rest`, `flatfiles`, `grouped` or `auto`, as for a job.
    #[serde(default)]
    pub source: Option<String>,
    /// A cron pattern in New York time (`0 18 * * 1-5`; six fields with seconds first), or
    /// `after_close` with an optional delay (`after_close+30m`): 16:00 New York on weekdays.
    #[schema(example = "after_close+30m")]
    pub trigger: String,
    /// Each run covers this many days up to its due day, in `missing` mode, so it fetches
    /// only the new tail (and whatever a downtime left out). 1 to 366; default 5.
    #[serde(default)]
    pub lookback_days: Option<u32>,
}

fn default_adjusted() -> bool {
    true
}

impl CreateScheduleRequest {
    fn into_spec(self) -> Result<ScheduleSpec, ApiError> {
        let name = Name::parse(&self.name)?;
        let symbols = parse_symbols(&self.symbols)?;
        let tickers = match (self.universe.as_deref(), symbols.is_empty()) {
            (None, _) => Tickers::Symbols(symbols),
            (Some(u), true) if u.trim().eq_ignore_ascii_case("all") => Tickers::All,
            (Some(u), true) => Tickers::Universe(Name::parse(u)?),
            (Some(_), false) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidSchedule,
                    "a schedule keeps either \"symbols\" or a \"universe\" current, not both",
                ))
            }
        };
        let timeframes = self
            .timeframes
            .iter()
            .map(TimeframeInput::parse)
            .collect::<Result<Vec<Timeframe>, ApiError>>()?;
        let source = self
            .source
            .as_deref()
            .map(str::parse::<SourceChoice>)
            .transpose()?;
        let trigger = Trigger::parse(&self.trigger)?;
        Ok(ScheduleSpec::new(
            name,
            tickers,
            timeframes,
            self.adjusted,
            source,
            trigger,
            self.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS),
        )?)
    }
}

/// A schedule: its spec, whether it is paused, when it is next due, and its last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleBody {
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    pub paused: bool,
    /// When it is next due; `null` while paused or for a trigger that never comes due again.
    pub next_due_at: Option<DateTime<Utc>>,
    /// Its latest run, if it has run.
    pub last_run: Option<ScheduleRunBody>,
    /// Runs fired so far.
    pub runs: u64,
    pub created_at: DateTime<Utc>,
}

/// One run of a schedule: the jobs it created (one per timeframe), or why it created none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleRunBody {
    /// The due time this run was for (after a downtime, the latest one missed).
    pub due_at: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub job_ids: Vec<JobId>,
    pub error: Option<String>,
}

impl From<ScheduleRun> for ScheduleRunBody {
    fn from(run: ScheduleRun) -> Self {
        Self {
            due_at: run.due_at,
            fired_at: run.fired_at,
            job_ids: run.job_ids,
            error: run.error,
        }
    }
}

impl From<Schedule> for ScheduleBody {
    fn from(s: Schedule) -> Self {
        Self {
            next_due_at: s.next_due_at.filter(|_| !s.paused),
            spec: s.spec,
            paused: s.paused,
            last_run: s.last_run.map(Into::into),
            runs: s.runs,
            created_at: s.created_at,
        }
    }
}

/// Every schedule, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SchedulesBody {
    pub schedules: Vec<ScheduleBody>,
}

fn store(state: &AppState) -> Result<&Arc<dyn ScheduleStore>, ApiError> {
    state.schedules().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this server keeps no schedules (it was built without a schedule store)",
        )
    })
}

fn parse_name(raw: &str) -> Result<Name, ApiError> {
    Name::parse(raw).map_err(|e| ApiError::new(ErrorCode::NotFound, e.to_string()))
}

/// A universe a schedule names that does not exist is the request's fault: 400, not 404.
fn unknown_universe(err: backfill_storage::Error) -> ApiError {
    match err {
        backfill_storage::Error::NotFound { what } => ApiError::new(
            ErrorCode::UnknownUniverse,
            format!("{what} not found: create it first (PUT /api/v1/universes/{{name}})"),
        ),
        other => other.into(),
    }
}

/// List schedules.
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    tag = "schedules",
    responses((status = 200, description = "Every schedule, by name", body = SchedulesBody))
)]
pub(crate) async fn list_schedules(
    State(state): State<AppState>,
) -> Result<Json<SchedulesBody>, ApiError> {
    let schedules = store(&state)?.list_schedules().await?;
    Ok(Json(SchedulesBody {
        schedules: schedules.into_iter().map(Into::into).collect(),
    }))
}

/// Create a schedule.
///
/// From its first due time on, each due time makes one job per timeframe, in `missing` mode
/// over the look-back, exactly once however many `serve` and `worker` processes run. A
/// downtime is caught up with one run for the latest missed due time.
#[utoipa::path(
    post,
    path = "/api/v1/schedules",
    tag = "schedules",
    request_body = CreateScheduleRequest,
    responses(
        (status = 201, description = "The schedule was created", body = ScheduleBody,
         headers(("Location" = String, description = "The schedule's URL"))),
        (status = 400, description = "invalid_json, invalid_body, invalid_schedule (a bad name, trigger, timeframe list or look-back), invalid_symbol, invalid_timeframe, invalid_source, source_unavailable or unknown_universe", body = ErrorBody),
        (status = 409, description = "conflict: the name is taken, or the schedule overlaps another one (the message says which and on what)", body = ErrorBody),
        (status = 413, description = "payload_too_large: the body is over 1 MiB", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not sent as application/json", body = ErrorBody),
    )
)]
pub(crate) async fn create_schedule(
    State(state): State<AppState>,
    AppJson(request): AppJson<CreateScheduleRequest>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let spec = request.into_spec()?;
    // Check now that the runs can be made (the source serves the timeframes, the universe
    // exists), so a mistake answers here instead of failing every run.
    let universe = match spec.tickers() {
        Tickers::Universe(name) => Some(store.get_universe(name).await.map_err(unknown_universe)?),
        _ => None,
    };
    let symbols = match spec.tickers() {
        Tickers::Symbols(list) => Some(list.as_slice()),
        Tickers::Universe(_) => universe.as_ref().map(|u| u.symbols.as_slice()),
        Tickers::All => None,
    };
    spec.jobs(Utc::now(), symbols, state.config().sources())?;
    let created = store
        .create_schedule(&spec)
        .await
        .map_err(unknown_universe)?;
    tracing::info!(schedule = %spec.name(), trigger = %spec.trigger(), "schedule created");
    let location = HeaderValue::from_str(&format!("/api/v1/schedules/{}", spec.name()))
        .map_err(|e| ApiError::new(ErrorCode::InternalError, "bad location").with_source(e))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(ScheduleBody::from(created)),
    )
        .into_response())
}

/// Get a schedule.
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{name}",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 200, description = "The schedule, with its next due time and last run", body = ScheduleBody),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub(crate) async fn get_schedule(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> Result<Json<ScheduleBody>, ApiError> {
    let name = parse_name(&name)?;
    Ok(Json(store(&state)?.get_schedule(&name).await?.into()))
}

/// Delete a schedule.
///
/// The jobs it created stay.
#[utoipa::path(
    delete,
    path = "/api/v1/schedules/{name}",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 204, description = "The schedule was deleted"),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub(crate) async fn delete_schedule(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_name(&name)?;
    store(&state)?.delete_schedule(&name).await?;
    tracing::info!(schedule = %name, "schedule deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Pause a schedule.
///
/// It fires no more until resumed; its jobs already created go on.
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{name}/pause",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 200, description = "The schedule, paused", body = ScheduleBody),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub(crate) async fn pause_schedule(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> Result<Json<ScheduleBody>, ApiError> {
    set_paused(&state, &name, true).await
}

/// Resume a schedule.
///
/// It is due next at its trigger's first due time from now: the due times it missed while
/// paused are skipped, and the look-back of its next run covers them.
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{name}/resume",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 200, description = "The schedule, active again", body = ScheduleBody),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub(crate) async fn resume_schedule(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> Result<Json<ScheduleBody>, ApiError> {
    set_paused(&state, &name, false).await
}

async fn set_paused(
    state: &AppState,
    name: &str,
    paused: bool,
) -> Result<Json<ScheduleBody>, ApiError> {
    let name = parse_name(name)?;
    let schedule = store(state)?.set_paused(&name, paused).await?;
    tracing::info!(schedule = %name, paused, "schedule paused or resumed");
    Ok(Json(schedule.into()))
}

/// A universe in a list: its name, size and origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UniverseSummary {
    pub name: Name,
    /// How many symbols it holds.
    pub symbols: usize,
    /// `manual`, or the reference query it was refreshed from.
    pub origin: String,
    pub updated_at: DateTime<Utc>,
}

/// Every universe, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UniversesBody {
    pub universes: Vec<UniverseSummary>,
}

/// A universe's symbols, set by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"symbols": ["AAPL", "MSFT", "NVDA"]}))]
pub struct PutUniverseRequest {
    /// 1 to 20,000 tickers; upper-cased and de-duplicated.
    pub symbols: Vec<String>,
}

/// List universes.
#[utoipa::path(
    get,
    path = "/api/v1/universes",
    tag = "schedules",
    responses((status = 200, description = "Every universe, by name", body = UniversesBody))
)]
pub(crate) async fn list_universes(
    State(state): State<AppState>,
) -> Result<Json<UniversesBody>, ApiError> {
    let universes = store(&state)?.list_universes().await?;
    Ok(Json(UniversesBody {
        universes: universes
            .into_iter()
            .map(|u| UniverseSummary {
                name: u.name,
                symbols: u.symbols.len(),
                origin: u.origin,
                updated_at: u.updated_at,
            })
            .collect(),
    }))
}

/// Get a universe with its symbols.
#[utoipa::path(
    get,
    path = "/api/v1/universes/{name}",
    tag = "schedules",
    params(("name" = String, Path, description = "The universe's name")),
    responses(
        (status = 200, description = "The universe", body = NamedUniverse),
        (status = 404, description = "not_found", body = ErrorBody),
    )
)]
pub(crate) async fn get_universe(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> Result<Json<NamedUniverse>, ApiError> {
    let name = parse_name(&name)?;
    Ok(Json(store(&state)?.get_universe(&name).await?))
}

/// A universe's name as sent to be created: `all` is the whole market, not a universe.
fn new_universe_name(raw: &str) -> Result<Name, ApiError> {
    let name = Name::parse(raw)?;
    if name.as_str() == "all" {
        return Err(ApiError::new(
            ErrorCode::InvalidSchedule,
            "\"all\" means every ticker of a bulk source; name the universe otherwise",
        ));
    }
    Ok(name)
}

/// Create or replace a universe.
///
/// Schedules that name it use its new symbols from their next run on.
#[utoipa::path(
    put,
    path = "/api/v1/universes/{name}",
    tag = "schedules",
    params(("name" = String, Path, description = "The universe's name")),
    request_body = PutUniverseRequest,
    responses(
        (status = 200, description = "The universe as stored", body = NamedUniverse),
        (status = 400, description = "invalid_json, invalid_body, invalid_schedule (a bad name), invalid_symbol or invalid_input (no symbols)", body = ErrorBody),
        (status = 413, description = "payload_too_large: the body is over 1 MiB", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not sent as application/json", body = ErrorBody),
    )
)]
pub(crate) async fn put_universe(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
    AppJson(request): AppJson<PutUniverseRequest>,
) -> Result<Json<NamedUniverse>, ApiError> {
    let name = new_universe_name(&name)?;
    let mut symbols = parse_symbols(&request.symbols)?;
    let mut seen = std::collections::HashSet::new();
    symbols.retain(|s| seen.insert(s.clone()));
    let universe = store(&state)?
        .put_universe(&name, &symbols, "manual")
        .await?;
    tracing::info!(universe = %name, symbols = universe.symbols.len(), "universe set");
    Ok(Json(universe))
}

/// Delete a universe.
#[utoipa::path(
    delete,
    path = "/api/v1/universes/{name}",
    tag = "schedules",
    params(("name" = String, Path, description = "The universe's name")),
    responses(
        (status = 204, description = "The universe was deleted"),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "conflict: a schedule names it", body = ErrorBody),
    )
)]
pub(crate) async fn delete_universe(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_name(&name)?;
    store(&state)?.delete_universe(&name).await?;
    tracing::info!(universe = %name, "universe deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Refresh a universe from the reference tickers.
///
/// Replaces (or creates) the universe with the US stock tickers Polygon lists for the query:
/// active ones, delisted ones or both, as of a past day if asked (survivorship-free).
#[utoipa::path(
    post,
    path = "/api/v1/universes/{name}/refresh",
    tag = "schedules",
    params(("name" = String, Path, description = "The universe's name")),
    request_body = RefreshUniverseRequest,
    responses(
        (status = 200, description = "The universe as refreshed", body = NamedUniverse),
        (status = 400, description = "invalid_json, invalid_body, invalid_schedule (a bad name), reference_rejected, or source_unavailable (this server has no reference data)", body = ErrorBody),
        (status = 502, description = "upstream_unavailable: the reference data could not be read; try again later", body = ErrorBody),
        (status = 413, description = "payload_too_large: the body is over 1 MiB", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: the body is not sent as application/json", body = ErrorBody),
    )
)]
pub(crate) async fn refresh_universe(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
    AppJson(request): AppJson<RefreshUniverseRequest>,
) -> Result<Json<NamedUniverse>, ApiError> {
    let name = new_universe_name(&name)?;
    let reference = state.reference().ok_or_else(|| {
        ApiError::new(
            ErrorCode::SourceUnavailable,
            "this server has no reference data to refresh universes from",
        )
    })?;
    let symbols = reference.tickers(&request).await.map_err(reference_error)?;
    if symbols.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ReferenceRejected,
            "the reference tickers list no ticker for this query; the universe is unchanged",
        ));
    }
    let universe = store(&state)?
        .put_universe(&name, &symbols, &origin(&request))
        .await?;
    tracing::info!(universe = %name, symbols = universe.symbols.len(), "universe refreshed");
    Ok(Json(universe))
}

/// How a refreshed universe says where it came from.
fn origin(request: &RefreshUniverseRequest) -> String {
    let mut origin = format!(
        "reference: market=stocks, status={}",
        match request.status {
            TickerStatus::Active => "active",
            TickerStatus::Delisted => "delisted",
            TickerStatus::All => "all",
        }
    );
    if let Some(kind) = &request.kind {
        origin.push_str(&format!(", type={kind}"));
    }
    if let Some(date) = request.date {
        origin.push_str(&format!(", date={date}"));
    }
    origin
}
