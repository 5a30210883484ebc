//! Corporate actions: a symbol's stored splits and dividends with the split-adjusted series a
//! later split made stale, a refresh from upstream, and the fix: a `full` backfill of each
//! stale series.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backfill_domain::{
    new_york_date, refetch_spec, DateRange, Dividend, JobId, SeriesFreshness, Split, Symbol,
    Timeframe,
};
use backfill_storage::ActionStore;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::AppPath;
use crate::state::AppState;
use crate::upstream::reference_error;

/// The corporate action routes (under `/api/v1`).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_actions))
        .routes(routes!(refresh_actions))
        .routes(routes!(fix_actions))
}

/// A symbol's stored corporate actions and the state of its split-adjusted series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CorporateActionsBody {
    pub symbol: Symbol,
    /// Splits, oldest first.
    pub splits: Vec<Split>,
    /// Cash dividends, oldest first.
    pub dividends: Vec<Dividend>,
    /// Every stored split-adjusted series of the symbol: when it was last stored whole, and the
    /// split executed since (then it is stale).
    pub series: Vec<SeriesFreshness>,
    /// The timeframes of the stale series: `POST .../fix` fetches each again in full.
    #[schema(value_type = Vec<String>, example = json!(["1d"]))]
    pub stale: Vec<Timeframe>,
    /// After a refresh: the splits and dividends that were new or changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<Changed>,
}

/// What a refresh stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Changed {
    pub splits: u64,
    pub dividends: u64,
}

/// The jobs that fetch a symbol's stale series again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FixBody {
    pub symbol: Symbol,
    /// One `full`, split-adjusted job per stale series, over everything the series covers;
    /// empty when nothing is stale.
    pub jobs: Vec<FixJob>,
}

/// One job of a fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FixJob {
    #[schema(value_type = String, example = "1d")]
    pub timeframe: Timeframe,
    pub job_id: JobId,
    /// The range fetched again: from the first to the last stored interval.
    pub range: DateRange,
}

fn store(state: &AppState) -> Result<&Arc<dyn ActionStore>, ApiError> {
    state.actions().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this server keeps no corporate actions (it was built without an action store)",
        )
    })
}

/// A symbol's stored actions and series, judged as of today.
pub(crate) async fn stored_actions(
    store: &dyn ActionStore,
    symbol: &Symbol,
) -> Result<CorporateActionsBody, ApiError> {
    let splits = store.splits(symbol).await?;
    let dividends = store.dividends(symbol).await?;
    let today = new_york_date(Utc::now());
    let series: Vec<SeriesFreshness> = store
        .adjusted_series(symbol)
        .await?
        .into_iter()
        .map(|s| SeriesFreshness::judge(s.timeframe, s.fetched_at, &splits, today))
        .collect();
    let stale = series
        .iter()
        .filter(|s| s.is_stale())
        .map(|s| s.timeframe)
        .collect();
    Ok(CorporateActionsBody {
        symbol: symbol.clone(),
        splits,
        dividends,
        series,
        stale,
        changed: None,
    })
}

/// A symbol's corporate actions.
///
/// The stored splits and dividends of a symbol, and each of its stored split-adjusted series
/// with when it was last stored whole: a split executed after that (New York) day, and by
/// today, makes it stale, and `stale` lists its timeframe.
#[utoipa::path(
    get,
    path = "/api/v1/corporate-actions/{symbol}",
    tag = "candles",
    params(("symbol" = String, Path, description = "The ticker (case-insensitive)", example = "AAPL")),
    responses(
        (status = 200, description = "The stored actions and the state of each adjusted series", body = CorporateActionsBody),
        (status = 400, description = "invalid_symbol", body = ErrorBody),
        (status = 404, description = "not_found: this server keeps no corporate actions", body = ErrorBody),
    )
)]
pub(crate) async fn get_actions(
    State(state): State<AppState>,
    AppPath(symbol): AppPath<String>,
) -> Result<Json<CorporateActionsBody>, ApiError> {
    let symbol = Symbol::parse(&symbol)?;
    Ok(Json(
        stored_actions(store(&state)?.as_ref(), &symbol).await?,
    ))
}

/// Refresh a symbol's corporate actions.
///
/// Fetches the symbol's splits and dividends upstream now, stores them (each once per date:
/// a changed record replaces the stored one) and answers as the `GET` does, with how many were
/// new or changed.
#[utoipa::path(
    post,
    path = "/api/v1/corporate-actions/{symbol}/refresh",
    tag = "candles",
    params(("symbol" = String, Path, description = "The ticker (case-insensitive)", example = "AAPL")),
    responses(
        (status = 200, description = "The actions as refreshed", body = CorporateActionsBody),
        (status = 400, description = "invalid_symbol, reference_rejected, or source_unavailable (this server has no upstream to read)", body = ErrorBody),
        (status = 404, description = "not_found: this server keeps no corporate actions", body = ErrorBody),
        (status = 502, description = "upstream_unavailable: the actions could not be read; try again later", body = ErrorBody),
    )
)]
pub(crate) async fn refresh_actions(
    State(state): State<AppState>,
    AppPath(symbol): AppPath<String>,
) -> Result<Json<CorporateActionsBody>, ApiError> {
    let symbol = Symbol::parse(&symbol)?;
    let body = refresh(&state, &symbol).await?;
    Ok(Json(body))
}

/// Fetches and stores a symbol's actions; answers the stored state with what changed.
pub(crate) async fn refresh(
    state: &AppState,
    symbol: &Symbol,
) -> Result<CorporateActionsBody, ApiError> {
    let store = store(state)?;
    let source = state.actions_source().ok_or_else(|| {
        ApiError::new(
            ErrorCode::SourceUnavailable,
            "this server has no upstream to read corporate actions from",
        )
    })?;
    let (splits, dividends) = source.actions(symbol).await.map_err(reference_error)?;
    let changed = Changed {
        splits: store.upsert_splits(&splits).await?,
        dividends: store.upsert_dividends(&dividends).await?,
    };
    tracing::info!(
        %symbol,
        splits = splits.len(),
        dividends = dividends.len(),
        changed_splits = changed.splits,
        changed_dividends = changed.dividends,
        "corporate actions refreshed"
    );
    let mut body = stored_actions(store.as_ref(), symbol).await?;
    body.changed = Some(changed);
    Ok(body)
}

/// Fetch a symbol's stale series again.
///
/// Creates one `full`, split-adjusted backfill job per stale series of the symbol, over
/// everything the series covers, so that the stored bars before the split are replaced by
/// adjusted ones (202). With nothing stale, nothing is created (200).
#[utoipa::path(
    post,
    path = "/api/v1/corporate-actions/{symbol}/fix",
    tag = "candles",
    params(("symbol" = String, Path, description = "The ticker (case-insensitive)", example = "AAPL")),
    responses(
        (status = 202, description = "The jobs created, one per stale series", body = FixBody),
        (status = 200, description = "Nothing is stale: no job created", body = FixBody),
        (status = 400, description = "invalid_symbol", body = ErrorBody),
        (status = 404, description = "not_found: this server keeps no corporate actions", body = ErrorBody),
    )
)]
pub(crate) async fn fix_actions(
    State(state): State<AppState>,
    AppPath(symbol): AppPath<String>,
) -> Result<Response, ApiError> {
    let symbol = Symbol::parse(&symbol)?;
    let actions = stored_actions(store(&state)?.as_ref(), &symbol).await?;
    let jobs = fix(&state, &symbol, &actions.stale).await?;
    let status = if jobs.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(FixBody { symbol, jobs })).into_response())
}

/// Creates a `full` adjusted job for each timeframe's stored series of `symbol`, over all it
/// covers (series with nothing stored are skipped).
pub(crate) async fn fix(
    state: &AppState,
    symbol: &Symbol,
    timeframes: &[Timeframe],
) -> Result<Vec<FixJob>, ApiError> {
    let mut jobs = Vec::new();
    for &timeframe in timeframes {
        let covered = state.candles().coverage(symbol, timeframe, true).await?;
        let Some(spec) = refetch_spec(symbol, timeframe, &covered, None)? else {
            continue;
        };
        let range = spec.range();
        let created = state
            .jobs()
            .create_job(&spec, None)
            .await
            .map_err(ApiError::from_create)?;
        tracing::info!(%symbol, %timeframe, job_id = %created.job.id, "stale adjusted series fetched again");
        jobs.push(FixJob {
            timeframe,
            job_id: created.job.id,
            range,
        });
    }
    Ok(jobs)
}
