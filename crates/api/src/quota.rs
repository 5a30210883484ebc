//! The upstream request quota as this server sees it: its limit, how much of it is used, and
//! whether it is shared by the fleet.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;

/// The quota route (under `/api/v1`).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_quota))
}

/// Who holds the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaScope {
    /// Every process sharing this database and key (PostgreSQL).
    Fleet,
    /// This process alone.
    Process,
}

/// How much of the upstream request quota is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"scope": "fleet", "limit": 100, "window_seconds": 60.0, "in_use": 37, "paused_for_seconds": null}))]
pub struct QuotaBody {
    pub scope: QuotaScope,
    /// The most requests in any window; `null`: no limit.
    pub limit: Option<u32>,
    pub window_seconds: f64,
    /// Requests that count now: in flight, or answered less than a window ago.
    pub in_use: u32,
    /// How long every request is still held back after a 429, if it is.
    pub paused_for_seconds: Option<f64>,
}

/// Reads the quota: the binary implements it over the Polygon client's quota.
#[async_trait::async_trait]
pub trait QuotaView: Send + Sync {
    /// The quota now.
    ///
    /// # Errors
    /// A message for people (no secrets) when a shared quota cannot be read.
    async fn quota(&self) -> Result<QuotaBody, String>;
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
