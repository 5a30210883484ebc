//! Corporate actions: Polygon's splits and dividends records parsed, and round trips against
//! the simulator across many pages, with retries and the loop guard of every listing.
//!
//! `/work/shared/polygon-fixtures` holds no splits or dividends body, so the records below are
//! written in the shape of Polygon's reference records (the field names and types of the
//! official Python client's test mocks for `/v3/reference/dividends` and of the SPEC's splits
//! schema), not copied from a recording.

use backfill_domain::Symbol;
use backfill_polygon::{decode_dividends, decode_splits, ActionData, Error};
use backfill_polygon_sim::{Fault, SimConfig};
use chrono::NaiveDate;

use crate::helpers::{client, start};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn dividends_parse_field_by_field() {
    let body = br#"{
        "results": [
            {"cash_amount": 0.59375, "declaration_date": "2020-09-09", "dividend_type": "CD",
             "ex_dividend_date": "2025-06-12", "frequency": 4, "pay_date": "2025-06-30",
             "record_date": "2025-06-15", "ticker": "CSSEN"},
            {"cash_amount": 0.5, "currency": "USD", "dividend_type": "SC",
             "ex_dividend_date": "2023-11-13", "frequency": 0, "ticker": "AIRTP"},
            {"cash_amount": -1, "ex_dividend_date": "2023-11-13", "ticker": "BAD"},
            {"cash_amount": 0.1, "ticker": "NODATE"}
        ],
        "status": "OK",
        "request_id": "0326f1f88a2867a7184c116f5b1edd00"
    }"#;
    let page = decode_dividends(200, None, body).unwrap();
    assert_eq!(page.dropped, 2);
    let [cssen, airtp] = page.records.as_slice() else {
        panic!("two dividends: {:?}", page.records);
    };
    assert_eq!(cssen.ticker.as_str(), "CSSEN");
    assert_eq!(cssen.cash_amount, 0.59375);
    assert_eq!(cssen.declaration_date, Some(day("2020-09-09")));
    assert_eq!(cssen.ex_dividend_date, day("2025-06-12"));
    assert_eq!(cssen.record_date, Some(day("2025-06-15")));
    assert_eq!(cssen.pay_date, Some(day("2025-06-30")));
    assert_eq!(cssen.frequency, Some(4));
    assert_eq!(cssen.dividend_type.as_deref(), Some("CD"));
    assert_eq!(cssen.currency, None);
    assert_eq!(airtp.currency.as_deref(), Some("USD"));
    assert_eq!((airtp.frequency, airtp.pay_date), (Some(0), None));
    assert_eq!(page.next_url, None);
}

#[test]
fn splits_parse_field_by_field() {
    let body = br#"{"results":[
        {"execution_date":"2020-08-31","id":"E36416cce743c3964c5da63e1ef1626c0aece30fb47302eea5a49c0055c04e8d0","split_from":1,"split_to":4,"ticker":"AAPL"},
        {"execution_date":"2023-05-01","split_from":10,"split_to":1,"ticker":"XYZ"}
    ],"status":"OK","request_id":"6a7e466e6c0d6e5c8e5c1b8b7c1f3b1e",
      "next_url":"https://api.polygon.io/v3/reference/splits?cursor=YXA9MSZhcz0mbGltaXQ9Mg"}"#;
    let page = decode_splits(200, None, body).unwrap();
    let got: Vec<(&str, NaiveDate, f64, f64)> = page
        .records
        .iter()
        .map(|s| {
            (
                s.ticker.as_str(),
                s.execution_date,
                s.split_from,
                s.split_to,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("AAPL", day("2020-08-31"), 1.0, 4.0),
            ("XYZ", day("2023-05-01"), 10.0, 1.0)
        ]
    );
    assert_eq!(page.records[1].ratio(), 0.1);
    assert!(page.next_url.unwrap().contains("cursor="));
}

#[tokio::test]
async fn splits_and_dividends_equal_the_simulators_across_pages() {
    let sim = start(SimConfig::new().max_page_size(3)).await;
    let client = client(&sim);
    let aapl = Symbol::parse("AAPL").unwrap();
    // A split added later is listed with the simulated one, in date order.
    sim.add_split("AAPL", day("2025-03-03"), 1.0, 3.0);
    sim.add_split("AAPL", day("2024-01-02"), 5.0, 1.0);
    let splits = client.list_splits(&aapl).await.unwrap();
    let expected: Vec<(NaiveDate, f64, f64)> = sim
        .splits("AAPL")
        .iter()
        .map(|s| (s.execution_date(), s.split_from, s.split_to))
        .collect();
    assert_eq!(expected.len(), 3);
    let got: Vec<(NaiveDate, f64, f64)> = splits
        .records
        .iter()
        .map(|s| (s.execution_date, s.split_from, s.split_to))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got[2], (day("2025-03-03"), 1.0, 3.0));
    assert!(splits.records.iter().all(|s| s.ticker == aapl));
    assert_eq!((splits.pages, splits.requests), (1, 1));

    // A ticker that pays: many pages of three.
    let payer = ["AAPL", "MSFT", "IBM", "KO", "PG", "XOM"]
        .into_iter()
        .find(|t| sim.dividends(t).len() > 10)
        .expect("some ticker pays dividends");
    let symbol = Symbol::parse(payer).unwrap();
    let dividends = client.list_dividends(&symbol).await.unwrap();
    let expected = sim.dividends(payer);
    assert_eq!(dividends.records.len(), expected.len());
    assert_eq!(dividends.pages as usize, expected.len().div_ceil(3));
    for (got, want) in dividends.records.iter().zip(&expected) {
        assert_eq!(got.ticker, symbol);
        assert_eq!(got.ex_dividend_date, want.ex_dividend_date);
        assert_eq!(got.cash_amount, want.cash_amount);
        assert_eq!(got.pay_date, Some(want.pay_date));
        assert_eq!(got.record_date, Some(want.record_date));
        assert_eq!(got.declaration_date, Some(want.declaration_date));
        assert_eq!(got.frequency, Some(4));
        assert_eq!(got.dividend_type.as_deref(), Some("CD"));
    }
    // Crypto has neither.
    let btc = Symbol::parse("X:BTCUSD").unwrap();
    assert!(client.list_splits(&btc).await.unwrap().records.is_empty());
    assert!(client
        .list_dividends(&btc)
        .await
        .unwrap()
        .records
        .is_empty());
}

#[tokio::test]
async fn failures_are_retried_and_a_repeated_cursor_is_an_error() {
    let sim = start(SimConfig::new().max_page_size(2)).await;
    let client = client(&sim);
    let aapl = Symbol::parse("AAPL").unwrap();
    sim.inject_on(
        "/v3/reference/splits",
        [Fault::Status(503), Fault::TruncatedJson],
    );
    let splits = client.list_splits(&aapl).await.unwrap();
    assert_eq!(splits.records.len(), 1);
    assert_eq!(splits.requests, 3);

    sim.add_split("AAPL", day("2025-03-03"), 1.0, 3.0);
    sim.add_split("AAPL", day("2025-06-02"), 1.0, 2.0);
    sim.inject_on("/v3/reference/splits", [Fault::RepeatCursor]);
    let err = client.list_splits(&aapl).await.unwrap_err();
    assert!(matches!(err, Error::CursorLoop { .. }), "{err}");
    // A wrong key is permanent, and the key stays out of the error.
    let other = backfill_polygon::PolygonClient::new(
        backfill_polygon::PolygonConfig::new("wrong-key-123".into()).with_base_url(sim.base_url()),
    )
    .unwrap();
    let err = other.list_dividends(&aapl).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(!err.to_string().contains("wrong-key-123"));
}

/// Every split of the simulated market from `from` to `to`, by date then ticker, from the
/// simulator's own records of each ticker.
fn market_splits(
    sim: &backfill_polygon_sim::RunningSimulator,
    extra: &[&str],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(NaiveDate, String, f64, f64)> {
    let mut tickers: Vec<String> = sim
        .ticker_records()
        .iter()
        .map(|r| r.ticker.clone())
        .chain(extra.iter().map(|t| (*t).to_owned()))
        .collect();
    tickers.sort_unstable();
    tickers.dedup();
    let mut all: Vec<(NaiveDate, String, f64, f64)> = tickers
        .iter()
        .flat_map(|t| {
            sim.splits(t)
                .into_iter()
                .map(move |s| (s.execution_date(), t.clone(), s.split_from, s.split_to))
        })
        .filter(|(d, ..)| (from..=to).contains(d))
        .collect();
    all.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    all
}

#[tokio::test]
async fn splits_between_two_dates_list_every_tickers_across_pages() {
    let sim = start(SimConfig::new().max_page_size(3)).await;
    let client = client(&sim);
    // Splits added today-ish: one to a market ticker, one to a ticker outside the market.
    sim.add_split("AAPL", day("2025-03-03"), 1.0, 3.0);
    sim.add_split("NEWCO", day("2025-03-05"), 10.0, 1.0);
    let (from, to) = (day("1990-01-01"), day("2030-12-31"));
    let listing = client.list_splits_between(from, to).await.unwrap();
    let got: Vec<(NaiveDate, String, f64, f64)> = listing
        .records
        .iter()
        .map(|s| {
            (
                s.execution_date,
                s.ticker.as_str().to_owned(),
                s.split_from,
                s.split_to,
            )
        })
        .collect();
    let expected = market_splits(&sim, &["AAPL", "NEWCO"], from, to);
    // Every stock of the simulated market splits once, and the two added splits are there.
    assert!(expected.len() > 20, "{}", expected.len());
    assert_eq!(got, expected);
    assert_eq!(listing.pages as usize, expected.len().div_ceil(3));

    // A window of a few days holds only what executed in it.
    let (from, to) = (day("2025-03-01"), day("2025-03-05"));
    let listing = client.list_splits_between(from, to).await.unwrap();
    let got: Vec<(NaiveDate, &str)> = listing
        .records
        .iter()
        .map(|s| (s.execution_date, s.ticker.as_str()))
        .collect();
    let expected = market_splits(&sim, &["AAPL", "NEWCO"], from, to);
    assert_eq!(got.len(), expected.len());
    assert!(got.contains(&(day("2025-03-03"), "AAPL")), "{got:?}");
    assert!(got.contains(&(day("2025-03-05"), "NEWCO")), "{got:?}");
    assert!(got.iter().all(|(d, _)| (from..=to).contains(d)));
    // An empty window lists nothing, in one request.
    let listing = client
        .list_splits_between(day("2025-03-06"), day("2025-03-06"))
        .await
        .unwrap();
    assert_eq!(
        listing.records.len(),
        market_splits(
            &sim,
            &["AAPL", "NEWCO"],
            day("2025-03-06"),
            day("2025-03-06")
        )
        .len()
    );
    assert_eq!(listing.requests, 1);
}
