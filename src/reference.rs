//! Universe refreshes: the API's `ReferenceTickers` over the Polygon client's `ReferenceData`.

use async_trait::async_trait;
use backfill_api::{ReferenceError, ReferenceTickers, RefreshUniverseRequest, TickerStatus};
use backfill_domain::Symbol;
use backfill_polygon::{Listing, ReferenceData, TickersRequest};

/// Lists US stock tickers from Polygon (or the simulator) for `POST /api/v1/universes/{name}/refresh`.
pub(crate) struct PolygonReference<R>(pub(crate) R);

#[async_trait]
impl<R: ReferenceData> ReferenceTickers for PolygonReference<R> {
    async fn tickers(&self, query: &RefreshUniverseRequest) -> Result<Vec<Symbol>, ReferenceError> {
        let mut request = TickersRequest::new(match query.status {
            TickerStatus::Active => Listing::Active,
            TickerStatus::Delisted => Listing::Delisted,
            TickerStatus::All => Listing::Both,
        });
        request.date = query.date;
        request.ticker_type = query.kind.clone();
        let listing = self.0.list_tickers(&request).await.map_err(|e| {
            // The client's errors never carry the key.
            if e.is_permanent() {
                ReferenceError::Rejected(format!("Polygon refused the ticker listing: {e}"))
            } else {
                ReferenceError::Unavailable(format!("Polygon's ticker listing failed: {e}"))
            }
        })?;
        if !listing.skipped.is_empty() || listing.duplicates > 0 {
            tracing::info!(
                skipped = listing.skipped.len(),
                duplicates = listing.duplicates,
                first_skipped = ?listing.skipped.first().map(|s| format!("{}: {}", s.ticker, s.reason)),
                "reference tickers that are not symbols were left out"
            );
        }
        tracing::info!(
            tickers = listing.tickers.len(),
            pages = listing.pages,
            requests = listing.requests,
            "reference tickers listed"
        );
        Ok(listing.tickers.into_iter().map(|t| t.symbol).collect())
    }
}

#[cfg(test)]
mod tests {
    use backfill_polygon::{MockReferenceData, Ticker, TickerListing};

    use super::*;

    fn ticker(symbol: &str) -> Ticker {
        Ticker {
            symbol: Symbol::parse(symbol).unwrap(),
            name: symbol.to_owned(),
            ticker_type: Some("CS".to_owned()),
            primary_exchange: None,
            active: true,
            delisted_utc: None,
            last_updated_utc: None,
            cik: None,
            composite_figi: None,
        }
    }

    #[tokio::test]
    async fn the_query_becomes_a_listing_request_and_its_tickers_the_symbols() {
        let mut market = MockReferenceData::new();
        market
            .expect_list_tickers()
            .withf(|r| {
                r.listing == Listing::Both
                    && r.date == Some("2020-01-02".parse().unwrap())
                    && r.ticker_type.as_deref() == Some("ETF")
            })
            .returning(|_| {
                Ok(TickerListing {
                    tickers: vec![ticker("SPY"), ticker("QQQ")],
                    skipped: Vec::new(),
                    duplicates: 0,
                    pages: 1,
                    requests: 1,
                })
            });
        let query = RefreshUniverseRequest {
            status: TickerStatus::All,
            date: Some("2020-01-02".parse().unwrap()),
            kind: Some("ETF".to_owned()),
        };
        let symbols = PolygonReference(market).tickers(&query).await.unwrap();
        assert_eq!(
            symbols.iter().map(Symbol::as_str).collect::<Vec<_>>(),
            ["SPY", "QQQ"]
        );
    }

    #[tokio::test]
    async fn permanent_failures_are_rejections_and_transient_ones_unavailability() {
        let mut market = MockReferenceData::new();
        let mut calls = 0;
        market.expect_list_tickers().returning(move |_| {
            calls += 1;
            Err(if calls == 1 {
                backfill_polygon::Error::BadRequest {
                    message: "bad type".to_owned(),
                }
            } else {
                backfill_polygon::Error::Server {
                    status: 503,
                    message: "down".to_owned(),
                }
            })
        });
        let reference = PolygonReference(market);
        let query = RefreshUniverseRequest::default();
        assert!(matches!(
            reference.tickers(&query).await,
            Err(ReferenceError::Rejected(_))
        ));
        assert!(matches!(
            reference.tickers(&query).await,
            Err(ReferenceError::Unavailable(_))
        ));
    }
}
