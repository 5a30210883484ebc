//! Universe refreshes and corporate actions: the API's `ReferenceTickers` over the Polygon
//! client's `ReferenceData`, and its `ActionsSource` over `ActionData`.

use async_trait::async_trait;
use backfill_api::{
    ActionsSource, ReferenceError, ReferenceTickers, RefreshUniverseRequest, TickerStatus,
};
use backfill_domain::{Dividend, Split, Symbol};
use backfill_polygon::{ActionData, Listing, ReferenceData, TickersRequest};

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
        let listing = self
            .0
            .list_tickers(&request)
            .await
            .map_err(|e| reference_error("ticker listing", &e))?;
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

/// A failed reference read: a permanent failure is a rejection, a transient one
/// unavailability. The client's errors never carry the key.
fn reference_error(what: &str, e: &backfill_polygon::Error) -> ReferenceError {
    if e.is_permanent() {
        ReferenceError::Rejected(format!("Polygon refused the {what}: {e}"))
    } else {
        ReferenceError::Unavailable(format!("Polygon's {what} failed: {e}"))
    }
}

#[async_trait]
impl<R: ActionData> ActionsSource for PolygonReference<R> {
    async fn actions(
        &self,
        symbol: &Symbol,
    ) -> Result<(Vec<Split>, Vec<Dividend>), ReferenceError> {
        let splits = self
            .0
            .list_splits(symbol)
            .await
            .map_err(|e| reference_error("splits listing", &e))?;
        let dividends = self
            .0
            .list_dividends(symbol)
            .await
            .map_err(|e| reference_error("dividends listing", &e))?;
        tracing::info!(
            %symbol,
            splits = splits.records.len(),
            dividends = dividends.records.len(),
            dropped = splits.dropped + dividends.dropped,
            requests = splits.requests + dividends.requests,
            "corporate actions listed"
        );
        Ok((splits.records, dividends.records))
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

    #[tokio::test]
    async fn actions_are_the_clients_splits_and_dividends_with_failures_typed() {
        use backfill_polygon::{ActionListing, MockActionData};
        let aapl = Symbol::parse("AAPL").unwrap();
        let split = Split::new(aapl.clone(), "2020-08-31".parse().unwrap(), 1.0, 4.0).unwrap();
        fn listing<T>(records: Vec<T>) -> ActionListing<T> {
            ActionListing {
                records,
                dropped: 0,
                pages: 1,
                requests: 1,
            }
        }
        let mut market = MockActionData::new();
        let answer = listing(vec![split.clone()]);
        market
            .expect_list_splits()
            .times(1)
            .returning(move |_| Ok(answer.clone()));
        market
            .expect_list_dividends()
            .times(1)
            .returning(|_| Ok(listing(Vec::new())));
        let (splits, dividends) = PolygonReference(market).actions(&aapl).await.unwrap();
        assert_eq!((splits, dividends), (vec![split], Vec::new()));

        let mut market = MockActionData::new();
        market.expect_list_splits().returning(|_| {
            Err(backfill_polygon::Error::Server {
                status: 503,
                message: "down".to_owned(),
            })
        });
        assert!(matches!(
            PolygonReference(market).actions(&aapl).await,
            Err(ReferenceError::Unavailable(m)) if m.contains("splits")
        ));
    }
}
