//! The upstream request quota as this server sees it: its limit, how much of it is used, and
//! whether it is shared by the fleet.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;
use crate::upstream::QuotaBody;

/// The quota route (under `/api/v1`).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_quota))
}

/// The upstream request quota.
///
/// The limit of the Polygon key's requests per window, and how much of it is used now, by
/// this process or, on PostgreSQL, by every process sharing the key.
#[utoipa::path(
    get,
    path = "/api/v1/quota",
    tag = "server",
    responses(
        (status = 200, description = "The quota and its use", body = QuotaBody),
        (status = 404, description = "not_found: this server sends no requests upstream", body = ErrorBody),
        (status = 503, description = "storage_unavailable: the shared quota cannot be read", body = ErrorBody),
    )
)]
pub(crate) async fn get_quota(State(state): State<AppState>) -> Result<Json<QuotaBody>, ApiError> {
    let view = state.quota_view().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this server sends no requests upstream (no Polygon client)",
        )
    })?;
    view.quota().await.map(Json).map_err(|message| {
        ApiError::new(
            ErrorCode::StorageUnavailable,
            "the shared quota cannot be read",
        )
        .with_source(QuotaError(message))
    })
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct QuotaError(String);
