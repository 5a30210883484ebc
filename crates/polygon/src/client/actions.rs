//! Listing a ticker's splits and dividends: every page of `/v3/reference/splits` or
//! `/v3/reference/dividends`, through the client's one request path (rate limit, retries,
//! redaction).

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use backfill_domain::{Dividend, Split, Symbol};
use chrono::NaiveDate;

use super::tickers::next_page;
use super::{Decoder, PolygonClient};
use crate::actions::{ActionData, ActionListing, MAX_ACTIONS_PAGE};
use crate::wire::{decode_dividends, decode_splits, ActionsPage};
use crate::Result;

const SPLITS_PATH: &str = "/v3/reference/splits";
const DIVIDENDS_PATH: &str = "/v3/reference/dividends";

impl PolygonClient {
    /// Every split of `symbol`: see [`ActionData::list_splits`].
    ///
    /// # Errors
    /// As [`ActionData::list_splits`].
    #[tracing::instrument(skip_all, fields(%symbol))]
    pub async fn splits(&self, symbol: &Symbol) -> Result<ActionListing<Split>> {
        let decoder: Decoder<ActionsPage<Split>> = Arc::new(decode_splits);
        let query = format!("ticker={}", encode(symbol.as_str()));
        let mut listing = self
            .list_actions(SPLITS_PATH, "execution_date", &query, &decoder, |s| {
                &s.ticker == symbol
            })
            .await?;
        listing.records.sort_by_key(|s| s.execution_date);
        Ok(listing)
    }

    /// Every split executed from `from` to `to`, of every ticker: see
    /// [`ActionData::list_splits_between`].
    ///
    /// # Errors
    /// As [`ActionData::list_splits`].
    #[tracing::instrument(skip_all, fields(%from, %to))]
    pub async fn splits_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<ActionListing<Split>> {
        let decoder: Decoder<ActionsPage<Split>> = Arc::new(decode_splits);
        let query = format!("execution_date.gte={from}&execution_date.lte={to}");
        let mut listing = self
            .list_actions(SPLITS_PATH, "execution_date", &query, &decoder, |s| {
                (from..=to).contains(&s.execution_date)
            })
            .await?;
        listing
            .records
            .sort_by(|a, b| (a.execution_date, &a.ticker).cmp(&(b.execution_date, &b.ticker)));
        Ok(listing)
    }

    /// Every cash dividend of `symbol`: see [`ActionData::list_dividends`].
    ///
    /// # Errors
    /// As [`ActionData::list_splits`].
    #[tracing::instrument(skip_all, fields(%symbol))]
    pub async fn dividends(&self, symbol: &Symbol) -> Result<ActionListing<Dividend>> {
        let decoder: Decoder<ActionsPage<Dividend>> = Arc::new(decode_dividends);
        let query = format!("ticker={}", encode(symbol.as_str()));
        let mut listing = self
            .list_actions(DIVIDENDS_PATH, "ex_dividend_date", &query, &decoder, |d| {
                &d.ticker == symbol
            })
            .await?;
        listing.records.sort_by_key(|d| d.ex_dividend_date);
        Ok(listing)
    }

    /// Every page of one endpoint for a `query` (a ticker, or a range of dates), records
    /// that are not `wanted` left out and one record kept per ticker and date; a page that
    /// brings nothing new yet points on is a [`Error::CursorLoop`](crate::Error::CursorLoop).
    async fn list_actions<T: Send + 'static + Action>(
        &self,
        endpoint: &str,
        sort: &str,
        query: &str,
        decoder: &Decoder<ActionsPage<T>>,
        wanted: impl Fn(&T) -> bool + Send,
    ) -> Result<ActionListing<T>> {
        let mut path = format!("{endpoint}?{query}&sort={sort}&order=asc&limit={MAX_ACTIONS_PAGE}");
        let mut asked = HashSet::new();
        let mut seen = HashSet::new();
        let mut listing = ActionListing {
            records: Vec::new(),
            dropped: 0,
            pages: 0,
            requests: 0,
        };
        loop {
            asked.insert(path.clone());
            let (page, made, _) = self.get_with_retries(&path, decoder).await?;
            listing.pages += 1;
            listing.requests += made;
            listing.dropped += page.dropped;
            let mut new_records = false;
            for record in page.records {
                // One record per ticker and date: a repeated one (a page served twice) is not
                // new.
                if wanted(&record) && seen.insert((record.ticker().clone(), record.date())) {
                    new_records = true;
                    listing.records.push(record);
                }
            }
            let Some(next_url) = page.next_url else {
                break;
            };
            let next = next_page(&next_url, endpoint, &asked, new_records, endpoint)?;
            path = next;
        }
        tracing::info!(
            records = listing.records.len(),
            dropped = listing.dropped,
            pages = listing.pages,
            endpoint,
            "listed corporate actions"
        );
        Ok(listing)
    }
}

/// A ticker as a query parameter.
fn encode(ticker: &str) -> String {
    url::form_urlencoded::byte_serialize(ticker.as_bytes()).collect()
}

/// A record of one ticker on one date.
trait Action {
    fn ticker(&self) -> &Symbol;
    fn date(&self) -> NaiveDate;
}

impl Action for Split {
    fn ticker(&self) -> &Symbol {
        &self.ticker
    }
    fn date(&self) -> NaiveDate {
        self.execution_date
    }
}

impl Action for Dividend {
    fn ticker(&self) -> &Symbol {
        &self.ticker
    }
    fn date(&self) -> NaiveDate {
        self.ex_dividend_date
    }
}

#[async_trait]
impl ActionData for PolygonClient {
    async fn list_splits(&self, symbol: &Symbol) -> Result<ActionListing<Split>> {
        self.splits(symbol).await
    }

    async fn list_dividends(&self, symbol: &Symbol) -> Result<ActionListing<Dividend>> {
        self.dividends(symbol).await
    }

    async fn list_splits_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<ActionListing<Split>> {
        self.splits_between(from, to).await
    }
}
