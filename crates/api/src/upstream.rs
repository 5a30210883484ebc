//! What the API reads through the binary (the API knows no Polygon): reference tickers,
//! corporate actions, why a reference read failed, and the upstream request quota. A module
//! that refers to no other handler module, so that the state can hold these traits without a
//! module cycle.

use backfill_domain::{Dividend, Split, Symbol};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorCode};

/// Lists a symbol's splits and dividends upstream: the binary implements it over the Polygon
/// client.
#[async_trait::async_trait]
pub trait ActionsSource: Send + Sync {
    /// Every split and every cash dividend of `symbol`, oldest first.
    ///
    /// # Errors
    /// A message for people (no secrets) when upstream cannot be read.
    async fn actions(&self, symbol: &Symbol)
        -> Result<(Vec<Split>, Vec<Dividend>), ReferenceError>;
}

/// Why reference data (tickers, corporate actions) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The request was refused (a bad `type`, a date the plan does not cover).
    #[error("{0}")]
    Rejected(String),
    /// Upstream failed (after its retries); trying later may help.
    #[error("{0}")]
    Unavailable(String),
}

/// The answer to a failed reference read: `reference_rejected` or `upstream_unavailable`.
pub(crate) fn reference_error(error: ReferenceError) -> ApiError {
    match error {
        ReferenceError::Rejected(m) => ApiError::new(ErrorCode::ReferenceRejected, m),
        err @ ReferenceError::Unavailable(_) => {
            ApiError::new(ErrorCode::UpstreamUnavailable, err.to_string()).with_source(err)
        }
    }
}

/// Which reference tickers a universe is refreshed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TickerStatus {
    /// Tickers trading (on `date`, when given).
    #[default]
    Active,
    /// Delisted tickers.
    Delisted,
    /// Both.
    All,
}

/// Refresh a universe from the reference tickers (US stocks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "active", "type": "CS"}))]
pub struct RefreshUniverseRequest {
    /// `active` (default), `delisted` or `all`.
    #[serde(default)]
    pub status: TickerStatus,
    /// The tickers as they stood on this day (`YYYY-MM-DD`), for a universe without
    /// survivorship bias; default: today.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "2020-01-02")]
    pub date: Option<NaiveDate>,
    /// Only tickers of this type (`CS` common stock, `ETF`, `ADRC`, ...).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// Lists the reference tickers for a universe refresh: the binary implements it over the
/// Polygon client (the API knows no Polygon).
#[async_trait::async_trait]
pub trait ReferenceTickers: Send + Sync {
    /// The symbols that match `query`, de-duplicated.
    ///
    /// # Errors
    /// A message for people (no secrets) when the reference data cannot be read.
    async fn tickers(&self, query: &RefreshUniverseRequest) -> Result<Vec<Symbol>, ReferenceError>;
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
