//! Listing reference tickers: every page of `/v3/reference/tickers`, through the client's one
//! request path (rate limit, retries, redaction).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;

use super::{Decoder, PolygonClient};
use crate::paging::next_url_on_base;
use crate::reference::Merge;
use crate::wire::{decode_tickers, TickersPage};
use crate::{Error, ReferenceData, Result, TickerListing, TickersRequest, MAX_TICKERS_PAGE};

/// The endpoint's path.
const TICKERS_PATH: &str = "/v3/reference/tickers";

impl PolygonClient {
    /// Every ticker `request` selects: see [`ReferenceData::list_tickers`].
    ///
    /// # Errors
    /// As [`ReferenceData::list_tickers`].
    #[tracing::instrument(skip_all, fields(listing = ?request.listing, date = ?request.date))]
    pub async fn tickers(&self, request: &TickersRequest) -> Result<TickerListing> {
        let decoder: Decoder<TickersPage> = Arc::new(decode_tickers);
        let mut merge = Merge::default();
        let (mut pages, mut requests) = (0, 0);
        for &active in request.listing.active_flags() {
            let mut path = first_tickers_path(request, active);
            // What this listing has asked and received, so that pagination that repeats itself
            // stops with an error instead of going round for ever.
            let mut asked = HashSet::new();
            let mut seen = HashSet::new();
            loop {
                asked.insert(path.clone());
                let (page, made, _) = self.get_with_retries(&path, &decoder).await?;
                pages += 1;
                requests += made;
                let mut new_records = false;
                for ticker in page.tickers {
                    new_records |= seen.insert(fingerprint(&ticker));
                    merge.add(ticker);
                }
                for skipped in page.skipped {
                    new_records |= seen.insert(fingerprint(&skipped));
                    merge.skip(skipped);
                }
                let Some(next_url) = page.next_url else {
                    break;
                };
                let next = next_page(&next_url, TICKERS_PATH, &asked, new_records, "tickers")?;
                path = next;
            }
        }
        let listing = merge.finish(pages, requests);
        tracing::info!(
            tickers = listing.tickers.len(),
            skipped = listing.skipped.len(),
            duplicates = listing.duplicates,
            pages,
            "listed reference tickers"
        );
        Ok(listing)
    }
}

#[async_trait]
impl ReferenceData for PolygonClient {
    async fn list_tickers(&self, request: &TickersRequest) -> Result<TickerListing> {
        self.tickers(request).await
    }
}

/// The first page of one listing: US stocks, sorted by ticker, `active` as given.
fn first_tickers_path(request: &TickersRequest, active: bool) -> String {
    let limit = request.page_size.clamp(1, MAX_TICKERS_PAGE);
    let mut path =
        format!("{TICKERS_PATH}?market=stocks&active={active}&sort=ticker&order=asc&limit={limit}");
    if let Some(date) = request.date {
        path.push_str(&format!("&date={date}"));
    }
    if let Some(kind) = &request.ticker_type {
        path.push_str("&type=");
        path.extend(url::form_urlencoded::byte_serialize(kind.as_bytes()));
    }
    path
}

/// `next_url` as a path and query on the configured base URL, which must stay on `endpoint`.
fn rebuild_on_endpoint(next_url: &str, endpoint: &str, what: &str) -> Result<String> {
    let (path, params) = next_url_on_base(next_url, endpoint)?;
    if path != endpoint {
        return Err(Error::Decode {
            message: format!("next_url leaves the {what} endpoint: {path}"),
        });
    }
    Ok(format!("{path}?{}", params.join("&")))
}

/// The page `next_url` points to, as a path on the configured base URL: an error when it
/// leaves `endpoint`, repeats a page already `asked`, or follows a page of `what` that brought
/// no new record (pagination going round for ever).
pub(super) fn next_page(
    next_url: &str,
    endpoint: &str,
    asked: &HashSet<String>,
    new_records: bool,
    what: &str,
) -> Result<String> {
    let next = rebuild_on_endpoint(next_url, endpoint, what)?;
    if asked.contains(&next) {
        return Err(Error::CursorLoop {
            message: format!("next_url repeats a page already fetched ({next})"),
        });
    }
    if !new_records {
        return Err(Error::CursorLoop {
            message: format!(
                "a page of {what} brought no record not seen before, yet points on to {next}"
            ),
        });
    }
    Ok(next)
}

/// A record's identity within one listing.
fn fingerprint(record: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    record.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::Listing;

    #[test]
    fn the_first_page_asks_for_us_stocks_sorted_with_the_filters_encoded() {
        let request = TickersRequest {
            date: NaiveDate::from_ymd_opt(2022, 4, 27),
            ticker_type: Some("C&S".to_owned()),
            page_size: 5_000,
            ..TickersRequest::new(Listing::Both)
        };
        assert_eq!(
            first_tickers_path(&request, false),
            "/v3/reference/tickers?market=stocks&active=false&sort=ticker&order=asc&limit=1000&date=2022-04-27&type=C%26S"
        );
        let request = TickersRequest {
            page_size: 0,
            ..TickersRequest::new(Listing::Active)
        };
        assert_eq!(
            first_tickers_path(&request, true),
            "/v3/reference/tickers?market=stocks&active=true&sort=ticker&order=asc&limit=1"
        );
    }

    #[test]
    fn next_url_is_rebuilt_on_our_base_without_keys_and_stays_on_the_endpoint() {
        for host in ["https://api.massive.com", "https://api.polygon.io:443:443"] {
            assert_eq!(
                rebuild_on_endpoint(
                    &format!("{host}/v3/reference/tickers?cursor=YWN0aXZl&apiKey=SECRET"),
                    TICKERS_PATH,
                    "tickers"
                )
                .unwrap(),
                "/v3/reference/tickers?cursor=YWN0aXZl"
            );
        }
        for bad in [
            "https://api.massive.com/v3/reference/tickers/AAPL?cursor=x",
            "https://api.massive.com/v2/aggs/ticker/A/range/1/day/1/2",
            "no url at all",
        ] {
            let err = rebuild_on_endpoint(bad, TICKERS_PATH, "tickers").unwrap_err();
            assert!(matches!(err, Error::Decode { .. }), "{bad}: {err}");
        }
    }
}
