//! What the API reads upstream through the binary (the API knows no Polygon): corporate
//! actions, and why a reference read failed.

use backfill_domain::{Dividend, Split, Symbol};

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
