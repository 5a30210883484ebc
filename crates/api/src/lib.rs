//! The backfill REST API on axum: job submission, status, cancel and retry, live progress over
//! Server-Sent Events, schedules and universes, corporate actions, candle read-back, health, metrics and the OpenAPI document, with one JSON
//! error shape. Its state holds trait objects only, so every handler can be tested against mocks.
//!
//! - [`router`] builds the whole service from an [`AppState`] (repositories, optional progress
//!   bus and metrics renderer, [`ApiConfig`]).
//! - [`serve`] runs that router on a listener until a shutdown future resolves.
//! - [`openapi`] gives the OpenAPI 3.1 document without a state, as `/api/openapi.json` serves it.
//! - Every error is an [`ApiError`] answered as an [`ErrorBody`] with a stable [`ErrorCode`];
//!   `error.rs` is the one place that picks error statuses.
//!
//! `/api/v1/*` requires `Authorization: Bearer <token>` when a token is configured;
//! `/healthz`, `/readyz`, `/metrics` and `/api/openapi.json` stay open, and so do the dashboard
//! page at `/` and its files under `/assets/` (compiled in; the page's API calls carry the
//! token).

mod actions;
mod auth;
mod cache;
mod candles;
mod dashboard;
mod error;
mod events;
mod export;
mod extract;
mod health;
mod jobs;
mod openapi;
mod quota;
mod schedules;
mod serve;
mod state;
mod telemetry;
mod upstream;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method};
use axum::{middleware, Extension, Router};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_axum::router::OpenApiRouter;

pub use actions::{Changed, CorporateActionsBody, FixBody, FixJob};
pub use candles::{Adjust, CandleRow, CandlesBody, CoverageBody};
pub use dashboard::{InfoBody, CONTENT_SECURITY_POLICY};
pub use error::{ApiError, Error, ErrorBody, ErrorCode, ErrorDetail, Result};
pub use health::HealthBody;
pub use jobs::{
    BoundInput, CreateBackfillRequest, JobStatusBody, JobSummaryBody, PlanBody, RecentJobsBody,
    TimeframeInput,
};
pub use schedules::{
    CreateScheduleRequest, PutUniverseRequest, ScheduleBody, ScheduleRunBody, SchedulesBody,
    UniverseSummary, UniversesBody,
};
pub use serve::serve;
pub use state::{ApiConfig, AppState, MetricsRenderer};
pub use telemetry::{HTTP_REQUESTS_TOTAL, HTTP_REQUEST_DURATION_SECONDS};
pub use upstream::{
    ActionsSource, QuotaBody, QuotaScope, QuotaView, ReferenceError, ReferenceTickers,
    RefreshUniverseRequest, TickerStatus,
};

use crate::state::CorsOrigins;

/// The names of the Server-Sent Events a progress stream sends: `progress` on every change,
/// `done` last, `error` if the job can no longer be read.
pub mod sse {
    pub use crate::events::{DONE_EVENT, ERROR_EVENT, PROGRESS_EVENT};
}

/// The whole API as one axum router, ready to serve.
pub fn router(state: AppState) -> Router {
    let (protected, open, doc) = parts();
    let protected = protected.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    let doc_json = match serde_json::to_string(&doc) {
        Ok(json) => json,
        Err(err) => {
            tracing::error!(error = %err, "could not serialise the OpenAPI document");
            "{}".to_owned()
        }
    };
    let config = state.config();
    let mut app = protected
        .merge(open)
        .merge(dashboard::routes())
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(Extension(openapi::OpenApiJson(Arc::from(doc_json))))
        .layer(DefaultBodyLimit::max(config.body_limit()))
        .layer(middleware::from_fn(telemetry::record_metrics));
    if let Some(cors) = cors_layer(config.cors()) {
        app = app.layer(cors);
    }
    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(
                telemetry::X_REQUEST_ID,
                MakeRequestUuid,
            ))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(telemetry::request_span)
                    .on_response(DefaultOnResponse::new().level(Level::INFO))
                    // A server error logs its own cause chain (see `ApiError`); the status is
                    // in the response line above.
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::new(telemetry::X_REQUEST_ID)),
    )
    .with_state(state)
}

/// The OpenAPI 3.1 document of every route [`router`] serves (what `/api/openapi.json`
/// answers).
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().2
}

/// Describes the API's metrics to the installed recorder (call once after installing it).
pub fn describe_metrics() {
    metrics::describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests answered, by method, route and status"
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request (to the response head), by method and route"
    );
}

/// The routes behind the token, the open ones, and the finished document of both.
fn parts() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (protected, mut doc) = OpenApiRouter::with_openapi(openapi::base())
        .merge(jobs::routes())
        .merge(events::routes())
        .merge(candles::routes())
        .merge(schedules::routes())
        .merge(actions::routes())
        .merge(quota::routes())
        .merge(dashboard::api_routes())
        .split_for_parts();
    let (open, open_doc) = health::routes().merge(openapi::routes()).split_for_parts();
    doc.merge(open_doc);
    openapi::finish(&mut doc);
    (protected, open, doc)
}

fn cors_layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow_origin = match origins {
        CorsOrigins::Off => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("last-event-id"),
                jobs::IDEMPOTENCY_KEY,
                telemetry::X_REQUEST_ID,
            ])
            .expose_headers([
                header::LOCATION,
                header::LINK,
                telemetry::X_REQUEST_ID,
                candles::X_NEXT_CURSOR,
                jobs::IDEMPOTENT_REPLAYED,
                HeaderName::from_static("www-authenticate"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
