//! Corporate actions of one ticker: its splits (`GET /v3/reference/splits`) and its cash
//! dividends (`GET /v3/reference/dividends`), every `next_url` page followed.

use async_trait::async_trait;
use backfill_domain::{Dividend, Split, Symbol};
use chrono::NaiveDate;

use crate::Result;

/// Polygon's largest page of splits or dividends (`limit`).
pub const MAX_ACTIONS_PAGE: u32 = 1_000;

/// Every split or dividend of a ticker, with what it took.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionListing<T> {
    /// The records, oldest first (by execution or ex-dividend date).
    pub records: Vec<T>,
    /// Records dropped as incomplete or invalid.
    pub dropped: u64,
    /// Pages fetched.
    pub pages: u32,
    /// HTTP requests made, retries included.
    pub requests: u32,
}

/// A source of corporate actions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ActionData: Send + Sync {
    /// Every split of `symbol`, following every page, oldest first.
    ///
    /// Rate limited and retried as [`MarketData::fetch_page`]; an error (the first permanent
    /// one, a transient one that outlasted the retries, or [`Error::CursorLoop`]) fails the
    /// whole listing.
    ///
    /// [`MarketData::fetch_page`]: crate::MarketData::fetch_page
    /// [`Error::CursorLoop`]: crate::Error::CursorLoop
    async fn list_splits(&self, symbol: &Symbol) -> Result<ActionListing<Split>>;

    /// Every cash dividend of `symbol`, following every page, oldest first; errors as
    /// [`ActionData::list_splits`].
    async fn list_dividends(&self, symbol: &Symbol) -> Result<ActionListing<Dividend>>;

    /// Every split of every ticker executed from `from` to `to` (both included), following
    /// every page, oldest first (ties by ticker): what a scheduler asks to learn which stored
    /// adjusted series a split has made stale, in a few requests for the whole market.
    /// Errors as [`ActionData::list_splits`].
    async fn list_splits_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<ActionListing<Split>>;
}
