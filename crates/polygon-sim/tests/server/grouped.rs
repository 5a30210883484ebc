//! The grouped daily endpoint: the universe's day bars on one date, equal to the aggregates
//! endpoint's, stamped at the close.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use backfill_polygon_sim::{Fault, SimConfig};
use chrono::NaiveDate;
use serde_json::Value;

use super::{get, get_with, sim, KEY};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/polygon-fixtures/"
);

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn grouped_bars_equal_each_tickers_day_bar_stamped_at_the_close() {
    let (sim, router) = sim(SimConfig::new());
    // 2010-03-15 (EDT): some universe tickers split later, so adjusted and raw prices differ.
    let date = "2010-03-15";
    let close_ms = 1_268_683_200_000i64; // 2010-03-15T20:00:00Z, 16:00 in New York
    let mut differs = false;
    let mut by_mode = Vec::new();
    for adjusted in [true, false] {
        let (status, body) = get(
            &router,
            &format!("/v2/aggs/grouped/locale/us/market/stocks/{date}?adjusted={adjusted}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "OK");
        assert_eq!(body["adjusted"], adjusted);
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), sim.market_tickers().len());
        for key in ["resultsCount", "queryCount", "count"] {
            assert_eq!(body[key].as_u64().unwrap() as usize, results.len(), "{key}");
        }
        let tickers: Vec<&str> = results.iter().map(|r| r["T"].as_str().unwrap()).collect();
        let mut universe: Vec<&str> = sim.market_tickers().iter().map(String::as_str).collect();
        universe.sort_unstable();
        assert_eq!(tickers, universe);
        for result in results {
            let ticker = result["T"].as_str().unwrap();
            let (_, rest) = get(
                &router,
                &format!("/v2/aggs/ticker/{ticker}/range/1/day/{date}/{date}?adjusted={adjusted}"),
            )
            .await;
            let mut day_bar = rest["results"][0].clone();
            assert_eq!(rest["resultsCount"], 1);
            assert_ne!(day_bar["t"], close_ms);
            day_bar["t"] = close_ms.into();
            day_bar["T"] = ticker.into();
            assert_eq!(result, &day_bar, "{ticker} adjusted={adjusted}");
        }
        by_mode.push(body);
    }
    for (a, r) in by_mode[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(by_mode[1]["results"].as_array().unwrap())
    {
        differs |= a["c"] != r["c"];
    }
    assert!(differs, "some universe ticker splits after {date}");
}

#[tokio::test]
async fn grouped_bodies_have_polygons_keys() {
    let (_, router) = sim(SimConfig::new());
    let fixture: Value = serde_json::from_slice(
        &std::fs::read(format!(
            "{FIXTURES}client-python__v2_aggs_grouped_locale_us_market_stocks_2005-04-04__q_adjusted-true.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let uri = "/v2/aggs/grouped/locale/us/market/stocks/2005-04-04?adjusted=true&include_otc=false";
    let (_, _, raw) = get_with(&router, uri, Some(KEY)).await;
    let body: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(keys(&body), keys(&fixture));
    assert_eq!(keys(&body["results"][0]), keys(&fixture["results"][0]));
    // The fields come in the fixture's order.
    let raw = String::from_utf8(raw).unwrap();
    let first = &raw[raw.find("[{").unwrap()..raw.find('}').unwrap()];
    let positions: Vec<usize> = [
        "\"T\"", "\"v\"", "\"vw\"", "\"o\"", "\"c\"", "\"h\"", "\"l\"", "\"t\"", "\"n\"",
    ]
    .iter()
    .map(|k| first.find(k).unwrap())
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{first}");
}

#[tokio::test]
async fn weekends_and_holidays_answer_ok_without_results() {
    let holiday = NaiveDate::from_ymd_opt(2024, 7, 4).unwrap();
    let (_, router) = sim(SimConfig::new().holiday(holiday));
    for date in ["2024-07-06", "2024-07-07", "2024-07-04"] {
        let (status, body) = get(
            &router,
            &format!("/v2/aggs/grouped/locale/us/market/stocks/{date}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "OK");
        assert_eq!(body["resultsCount"], 0);
        assert_eq!(body["queryCount"], 0);
        assert!(body.get("results").is_none(), "{date}: {body}");
    }
    let (_, body) = get(
        &router,
        "/v2/aggs/grouped/locale/us/market/stocks/2024-07-05",
    )
    .await;
    assert_eq!(body["resultsCount"], 25);
    let (status, body) = get(
        &router,
        "/v2/aggs/grouped/locale/us/market/stocks/07-05-2024",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "ERROR");
}

#[tokio::test(start_paused = true)]
async fn grouped_shares_auth_rate_limit_faults_and_stats() {
    let (sim, router) = sim(SimConfig::new().rate_limit(3, Duration::from_secs(60)));
    let uri = "/v2/aggs/grouped/locale/us/market/stocks/2024-05-06";
    let (status, _, _) = get_with(&router, uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    sim.inject_on("/grouped/", [Fault::Status(502), Fault::TruncatedJson]);
    assert_eq!(get(&router, uri).await.0, StatusCode::BAD_GATEWAY);
    let (status, _, body) = get_with(&router, uri, Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    assert!(body.starts_with(b"{\"queryCount\":25"));
    sim.inject_on("/grouped/", [Fault::NullResults]);
    let (_, body) = get(&router, uri).await;
    assert!(body["results"].is_null() && body["resultsCount"] == 25);
    // The aggregates endpoint and the grouped one draw on the same quota.
    let (status, _) = get(
        &router,
        "/v2/aggs/ticker/AAPL/range/1/day/2024-05-06/2024-05-06",
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let stats = sim.stats();
    assert_eq!(stats.matching("/grouped/"), 4);
    assert_eq!(stats.matching("/v2/aggs/ticker/"), 1);
    assert_eq!(stats.with_status(401), 1);
}

#[tokio::test]
async fn revisions_reach_the_grouped_answer() {
    let (sim, router) = sim(SimConfig::new());
    let uri = "/v2/aggs/grouped/locale/us/market/stocks/2024-05-06";
    let (_, before) = get(&router, uri).await;
    sim.revise_day(NaiveDate::from_ymd_opt(2024, 5, 6).unwrap());
    let (_, after) = get(&router, uri).await;
    for (b, a) in before["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["results"].as_array().unwrap())
    {
        assert_eq!(a["v"].as_f64().unwrap(), b["v"].as_f64().unwrap() + 1.0);
        assert_eq!(a["c"], b["c"]);
    }
}
