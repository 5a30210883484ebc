//! What the embedding binary plugs into the server: the reference tickers a universe is
//! refreshed from and the view of the upstream request quota. The API knows no Polygon; these
//! traits (and the types they speak) are its ports, implemented over the Polygon client.

use backfill_domain::Symbol;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// Why the reference tickers could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The request was refused (a bad `type`, a date the plan does not cover).
    #[error("{0}")]
    Rejected(String),
    /// Upstream failed (after its retries); trying later may help.
    #[error("{0}")]
    Unavailable(String),
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
