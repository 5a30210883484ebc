//! The market universe, holidays and revisions, as the aggregates endpoint serves them.

use axum::http::StatusCode;
use backfill_domain::{DateRange, Symbol, Timeframe};
use backfill_polygon_sim::{SimConfig, DEFAULT_MARKET_SIZE};
use chrono::NaiveDate;

use super::{get, sim};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test]
async fn universe_tickers_serve_sparse_minutes_that_expected_candles_predict() {
    let (sim, router) = sim(SimConfig::new());
    let tickers = sim.market_tickers();
    assert_eq!(tickers.len(), DEFAULT_MARKET_SIZE);
    let ticker = &tickers[3];
    let (status, body) = get(
        &router,
        &format!("/v2/aggs/ticker/{ticker}/range/1/minute/2024-05-06/2024-05-06?limit=50000"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let results = body["results"].as_array().unwrap();
    assert!(results.len() < 960, "a universe ticker misses minutes");
    let symbol = Symbol::parse(ticker).unwrap();
    let range =
        DateRange::new("2024-05-06".parse().unwrap(), "2024-05-06".parse().unwrap()).unwrap();
    let expected = sim.expected_candles(&symbol, Timeframe::parse("1m").unwrap(), &range, true);
    assert_eq!(expected.len(), results.len());
    for (candle, bar) in expected.iter().zip(results) {
        assert_eq!(candle.ts().timestamp_millis(), bar["t"].as_i64().unwrap());
        assert_eq!(candle.volume(), bar["v"].as_f64().unwrap());
        assert_eq!(candle.close(), bar["c"].as_f64().unwrap());
    }
    // A larger universe starts with the same tickers, which keep their data.
    let (big, _) = super::sim(SimConfig::new().market(500));
    assert_eq!(&big.market_tickers()[..DEFAULT_MARKET_SIZE], tickers);
    assert_eq!(
        big.expected_candles(&symbol, Timeframe::parse("1m").unwrap(), &range, true),
        expected
    );
}

#[tokio::test]
async fn holidays_empty_stock_days_and_revisions_change_volumes() {
    let holiday = date(2024, 5, 27);
    let (sim, router) = sim(SimConfig::new().holiday(holiday));
    let uri = "/v2/aggs/ticker/AAPL/range/1/day/2024-05-24/2024-05-28";
    let (_, body) = get(&router, uri).await;
    let days: Vec<i64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["t"].as_i64().unwrap())
        .collect();
    // Friday 24th and Tuesday 28th; Memorial Day and the weekend have no bar.
    assert_eq!(days, [1_716_523_200_000, 1_716_868_800_000]);
    let (_, body) = get(
        &router,
        "/v2/aggs/ticker/AAPL/range/1/minute/2024-05-27/2024-05-27",
    )
    .await;
    assert_eq!(body["resultsCount"], 0);
    let (_, crypto) = get(
        &router,
        "/v2/aggs/ticker/X:BTCUSD/range/1/day/2024-05-27/2024-05-27",
    )
    .await;
    assert_eq!(crypto["resultsCount"], 1);

    let before = body_volume(&get(&router, uri).await.1, 1);
    assert_eq!(sim.revise_day(date(2024, 5, 28)), 1);
    assert_eq!(sim.revision(date(2024, 5, 28)), 1);
    let (_, after) = get(&router, uri).await;
    assert_eq!(body_volume(&after, 1), before + 1.0);
    assert_eq!(sim.revision(date(2024, 5, 24)), 0);
}

fn body_volume(body: &serde_json::Value, index: usize) -> f64 {
    body["results"][index]["v"].as_f64().unwrap()
}
