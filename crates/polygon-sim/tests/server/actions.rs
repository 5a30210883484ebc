//! Splits and dividends: the endpoints page like Polygon's, agree with the simulator's own
//! records, and an added split changes the adjusted bars before it (not the unadjusted ones),
//! so that the unadjusted bars divided by the listed splits' ratios are the adjusted ones.

use axum::http::StatusCode;
use backfill_domain::{DateRange, RangeBound, Symbol, Timeframe};
use backfill_polygon_sim::{SimConfig, Simulator};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::America::New_York;
use serde_json::Value;

use super::tickers::all_pages;
use super::{get, sim};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Every record of a listing, following `next_url`, and the number of pages.
async fn listed(router: &axum::Router, uri: &str) -> (Vec<Value>, usize) {
    let (records, bodies) = all_pages(router, uri).await;
    assert!(bodies.iter().all(|b| b["status"] == "OK"));
    (records, bodies.len())
}

#[tokio::test]
async fn splits_and_dividends_are_listed_in_pages_with_the_simulators_records() {
    let (sim, router) = sim(SimConfig::new());
    sim.add_split("AAPL", day("2025-03-03"), 1.0, 3.0);
    let (splits, _) = listed(&router, "/v3/reference/splits?ticker=AAPL").await;
    let expected: Vec<(String, f64, f64)> = sim
        .splits("AAPL")
        .iter()
        .map(|s| (s.execution_date().to_string(), s.split_from, s.split_to))
        .collect();
    let got: Vec<(String, f64, f64)> = splits
        .iter()
        .map(|s| {
            assert_eq!(s["ticker"], "AAPL");
            (
                s["execution_date"].as_str().unwrap().to_owned(),
                s["split_from"].as_f64().unwrap(),
                s["split_to"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 2);

    let payer = sim
        .market_tickers()
        .iter()
        .find(|t| !sim.dividends(t).is_empty())
        .unwrap()
        .clone();
    let all = sim.dividends(&payer);
    assert_eq!(all.len(), 64, "quarterly from 2010 through 2025");
    let (dividends, pages) = listed(
        &router,
        &format!("/v3/reference/dividends?ticker={payer}&limit=7"),
    )
    .await;
    assert_eq!(pages, all.len().div_ceil(7));
    let dates: Vec<&str> = dividends
        .iter()
        .map(|d| d["ex_dividend_date"].as_str().unwrap())
        .collect();
    let want: Vec<String> = all.iter().map(|d| d.ex_dividend_date.to_string()).collect();
    assert_eq!(dates, want);
    assert_eq!(
        dividends[0]["cash_amount"].as_f64(),
        Some(all[0].cash_amount)
    );
    // Descending order, and the default page of ten.
    let (status, body) = get(
        &router,
        &format!("/v3/reference/dividends?ticker={payer}&order=desc"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    assert_eq!(results[0]["ex_dividend_date"], want[want.len() - 1]);
    // Sorted by date only; dividends of one ticker at a time; dates that parse.
    for bad in [
        "/v3/reference/dividends",
        "/v3/reference/splits?execution_date.gte=2024-13-01",
        "/v3/reference/splits?ticker=AAPL&sort=ticker",
        "/v3/reference/dividends?ticker=AAPL&limit=x",
    ] {
        let (status, body) = get(&router, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn without_a_ticker_every_tickers_splits_are_listed_within_the_dates() {
    let (sim, router) = sim(SimConfig::new().market(8));
    sim.add_split("AAPL", day("2025-03-03"), 1.0, 3.0);
    sim.add_split("OUTSIDE", day("2025-03-04"), 5.0, 1.0);
    // Every split of every ticker the simulator knows, by date then ticker.
    let mut tickers: Vec<String> = sim
        .ticker_records()
        .iter()
        .map(|r| r.ticker.clone())
        .chain(["AAPL".to_owned(), "OUTSIDE".to_owned()])
        .collect();
    tickers.sort_unstable();
    tickers.dedup();
    let mut all: Vec<(String, String)> = tickers
        .iter()
        .flat_map(|t| {
            sim.splits(t)
                .into_iter()
                .map(move |s| (s.execution_date().to_string(), t.clone()))
        })
        .collect();
    all.sort();
    let pairs = |records: &[Value]| -> Vec<(String, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r["execution_date"].as_str().unwrap().to_owned(),
                    r["ticker"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (records, pages) = listed(&router, "/v3/reference/splits?limit=3").await;
    assert_eq!(pairs(&records), all);
    assert_eq!(pages, all.len().div_ceil(3));
    // Bounds hold across pages: .gte/.lte include their day, .gt/.lt leave it out.
    let within = |from: &str, to: &str| -> Vec<(String, String)> {
        all.iter()
            .filter(|(d, _)| d.as_str() >= from && d.as_str() <= to)
            .cloned()
            .collect()
    };
    let (records, _) = listed(
        &router,
        "/v3/reference/splits?execution_date.gte=2025-03-03&execution_date.lte=2025-03-04&limit=1",
    )
    .await;
    assert_eq!(pairs(&records), within("2025-03-03", "2025-03-04"));
    assert!(pairs(&records).contains(&("2025-03-04".to_owned(), "OUTSIDE".to_owned())));
    let (records, _) = listed(
        &router,
        "/v3/reference/splits?execution_date.gt=2025-03-03&execution_date.lt=2025-03-05",
    )
    .await;
    assert_eq!(pairs(&records), within("2025-03-04", "2025-03-04"));
}

#[test]
fn an_added_split_changes_the_adjusted_bars_before_it_only() {
    let sim = Simulator::new(SimConfig::new());
    let aapl = Symbol::parse("AAPL").unwrap();
    let range = DateRange::new(
        RangeBound::parse("2024-03-04").unwrap(),
        RangeBound::parse("2024-03-15").unwrap(),
    )
    .unwrap();
    let daily = Timeframe::parse("1d").unwrap();
    let minutes = Timeframe::parse("1m").unwrap();
    let before_adjusted = sim.expected_candles(&aapl, daily, &range, true);
    let before_raw = sim.expected_candles(&aapl, minutes, &range, false);
    // Executed on Monday 2024-03-11: the week before is divided by 4.
    sim.add_split("AAPL", day("2024-03-11"), 1.0, 4.0);
    assert_eq!(
        sim.expected_candles(&aapl, minutes, &range, false),
        before_raw
    );
    let after = sim.expected_candles(&aapl, daily, &range, true);
    assert_eq!(after.len(), before_adjusted.len());
    let split_at = New_York
        .from_local_datetime(&day("2024-03-11").and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .to_utc();
    for (old, new) in before_adjusted.iter().zip(&after) {
        if old.ts() < split_at {
            assert!(
                (old.close() / 4.0 - new.close()).abs() <= 1e-4,
                "{old:?} {new:?}"
            );
            assert!(
                (old.volume() * 4.0 - new.volume()).abs() <= 2.0,
                "{old:?} {new:?}"
            );
            assert_eq!(old.trades(), new.trades());
        } else {
            assert_eq!(old, new);
        }
    }
}
