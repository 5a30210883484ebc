//! The market data client: the `MarketData` trait that yields candles page by page, and
//! `PolygonClient`, its implementation for Polygon.io (Massive) aggregates, with range chunking under the
//! 50,000 base-bar limit, `next_url` pagination, retries with backoff and a shared rate limit.
//! The same client lists reference tickers ([`ReferenceData`]). This is the only crate that uses
//! reqwest or knows Polygon's JSON.
//!
//! Every request waits on a [`RequestQuota`]: a [`RateLimiter`] of the process by default, or a
//! quota that several processes share (the binary builds one over PostgreSQL), so that a fleet
//! of workers using one key stays under the key's limit together.
//!
//! A request for a range is split into chunks of at most 50,000 base aggregates of the ticker's
//! [`Session`] (stocks and options: weekdays 04:00-20:00 New York time; crypto, forex and
//! indices: round the clock), so a year of a stock's minutes takes 6 requests rather than 11;
//! each chunk is one request
//! `/v2/aggs/ticker/{T}/range/{m}/{span}/{from_ms}/{to_ms}?adjusted=..&sort=asc&limit=50000`, and
//! any `next_url` is followed on the configured base URL. One call of
//! [`MarketData::fetch_page`] makes one such request (plus retries) and returns its candles with a
//! cursor for the next call, so memory stays bounded whatever the range.
//!
//! Flat Files ([`FlatFiles`], implemented by [`FlatFilesClient`] over S3 with `object_store`)
//! give a whole market's minute or day bars of a day in one gzipped CSV: the client looks a day's
//! file up with a HEAD, downloads it with one streamed GET conditional on its ETag, inflates and
//! parses it on a blocking thread into pages, and resumes a cut download from its last byte.
//!
//! Reference tickers ([`ReferenceData::list_tickers`]) come from
//! `/v3/reference/tickers?market=stocks&active=..&sort=ticker&order=asc&limit=..[&date=..][&type=..]`,
//! every `next_url` page followed on the configured base URL through the same rate limit,
//! retries and redaction as the aggregates: active or delisted tickers, or both, today or as of
//! a past day, one record per symbol, with the tickers that cannot be symbols skipped and
//! reported (see [`TickerListing`]).
//!
//! Corporate actions ([`ActionData`]) of one ticker come from
//! `/v3/reference/splits?ticker=..&sort=execution_date&order=asc&limit=1000` and
//! `/v3/reference/dividends?ticker=..&sort=ex_dividend_date&order=asc&limit=1000`, every
//! `next_url` page followed the same way.

mod actions;
mod backoff;
mod client;
mod config;
mod error;
mod files;
mod flatfiles;
mod limiter;
mod paging;
mod quota;
mod reference;
mod stats;
mod wire;

use async_trait::async_trait;
use backfill_domain::{Candle, DateRange, Symbol, Timeframe};
use chrono::{DateTime, NaiveDate, Utc};
use futures::Stream;

#[cfg(any(test, feature = "mocks"))]
pub use actions::MockActionData;
pub use actions::{ActionData, ActionListing, MAX_ACTIONS_PAGE};
pub use backfill_domain::{requests_needed, Session};
pub use client::PolygonClient;
pub use config::PolygonConfig;
pub use error::{Error, Result};
#[cfg(any(test, feature = "mocks"))]
pub use files::MockFlatFiles;
pub use files::{Dataset, DayFile, FilePage, FilePages, FlatFiles};
pub use flatfiles::{decode_day_file, FlatFilesClient, FlatFilesConfig};
pub use limiter::RateLimiter;
pub use paging::PageCursor;
#[cfg(any(test, feature = "mocks"))]
pub use quota::MockRequestQuota;
pub use quota::{Permit, QuotaUse, RequestQuota, Slot};
#[cfg(any(test, feature = "mocks"))]
pub use reference::MockReferenceData;
pub use reference::{
    Listing, ReferenceData, SkipReason, SkippedTicker, Ticker, TickerListing, TickersRequest,
    MAX_TICKERS_PAGE,
};
pub use stats::{ClientStats, FlatFilesStats};
pub use wire::{
    decode_aggregates, decode_dividends, decode_grouped, decode_splits, decode_tickers,
    ActionsPage, DecodedPage, TickersPage,
};

/// What to fetch: the bars of one symbol at one timeframe over an inclusive range.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggregatesRequest {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    pub range: DateRange,
    /// Split-adjusted prices (Polygon's default) or the prices as traded.
    pub adjusted: bool,
}

/// One page of candles.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// New candles in ascending time order, all inside the request range, none seen before.
    pub candles: Vec<Candle>,
    /// Every bar of the request range that starts at or before this instant has been delivered
    /// (in this page or an earlier one). Before the range start when nothing is covered yet.
    pub covered_through: DateTime<Utc>,
    /// Where to continue; `None` when the range is complete.
    pub next: Option<PageCursor>,
    /// Bars dropped from this page: duplicated, out of order, outside the range, or invalid
    /// (missing fields, non-finite numbers, negative volume).
    pub dropped: u64,
    /// HTTP requests made for this page, retries included.
    pub requests: u32,
    /// Bytes of the body this page came in (as decoded JSON).
    pub bytes: u64,
}

/// Every ticker's day bar of one date, from the grouped daily endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedDay {
    /// Day bars of many symbols, each stamped with New York midnight of the date.
    pub candles: Vec<Candle>,
    /// HTTP requests made, retries included.
    pub requests: u32,
    /// Bytes of the body (as decoded JSON).
    pub bytes: u64,
    /// Bars dropped: without a valid ticker, or with invalid values.
    pub dropped: u64,
}

/// A source of historical candles, fetched page by page.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MarketData: Send + Sync {
    /// Fetches one page; `cursor` `None` starts at `request.range.from()`, otherwise pass the
    /// previous page's `next`. Memory stays bounded (one page).
    ///
    /// Transient failures (429, 5xx, timeouts, broken connections or bodies) are retried within
    /// the client's budget before an error is returned; [`Error::is_permanent`] tells whether a
    /// later retry can help. After an error the same cursor can be passed again.
    async fn fetch_page(
        &self,
        request: &AggregatesRequest,
        cursor: Option<PageCursor>,
    ) -> Result<Page>;

    /// Every US stock ticker's day bar of `day` (a New York date), in one request, with
    /// `adjusted` prices or raw ones; none for a weekend or a market holiday. Retried and
    /// rate limited like [`MarketData::fetch_page`].
    async fn fetch_grouped(&self, day: NaiveDate, adjusted: bool) -> Result<GroupedDay>;
}

/// Every page of a request, in order, as a stream; it ends after the last page or the first
/// error.
pub fn pages<'a, M>(
    market: &'a M,
    request: &'a AggregatesRequest,
) -> impl Stream<Item = Result<Page>> + Send + 'a
where
    M: MarketData + ?Sized,
{
    futures::stream::unfold(
        Some(None),
        move |state: Option<Option<PageCursor>>| async move {
            let cursor = state?;
            match market.fetch_page(request, cursor).await {
                Ok(page) => {
                    let next = page.next.clone().map(Some);
                    Some((Ok(page), next))
                }
                Err(error) => Some((Err(error), None)),
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn request() -> AggregatesRequest {
        AggregatesRequest {
            symbol: Symbol::parse("AAPL").unwrap(),
            timeframe: Timeframe::parse("1d").unwrap(),
            range: DateRange::from_millis(0, 10).unwrap(),
            adjusted: true,
        }
    }

    fn page(next: Option<PageCursor>) -> Page {
        Page {
            candles: vec![],
            covered_through: DateTime::UNIX_EPOCH,
            next,
            dropped: 0,
            requests: 1,
            bytes: 0,
        }
    }

    #[tokio::test]
    async fn pages_streams_until_the_cursor_runs_out() {
        let req = request();
        let cursor = PageCursor(paging::CursorState::start(&req));
        let mut mock = MockMarketData::new();
        let second = cursor.clone();
        mock.expect_fetch_page()
            .withf(|_, c| c.is_none())
            .times(1)
            .returning(move |_, _| Ok(page(Some(second.clone()))));
        mock.expect_fetch_page()
            .withf(move |_, c| c.as_ref() == Some(&cursor))
            .times(1)
            .returning(|_, _| Ok(page(None)));
        let all: Vec<_> = pages(&mock, &req).collect().await;
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn pages_stops_at_the_first_error() {
        let req = request();
        let mut mock = MockMarketData::new();
        mock.expect_fetch_page().times(1).returning(|_, _| {
            Err(Error::Unauthorized {
                message: "Unknown API Key".to_owned(),
            })
        });
        let all: Vec<_> = pages(&mock, &req).collect().await;
        assert_eq!(all.len(), 1);
        assert!(all[0].as_ref().is_err_and(Error::is_permanent));
    }
}
