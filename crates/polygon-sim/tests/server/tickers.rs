//! The reference tickers endpoint: the universe's listing history, filters, Polygon's pages and
//! cursors, and the same gatekeeping as every other endpoint.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use backfill_polygon_sim::{Fault, SimConfig, SimTicker, Simulator};
use chrono::NaiveDate;
use serde_json::Value;

use super::{get, get_with, path_and_query, sim, KEY};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/polygon-fixtures/"
);

fn fixture(name: &str) -> Value {
    let bytes = std::fs::read(format!("{FIXTURES}{name}")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Unpadded URL-safe base64, decoded (the cursor), for reading what a cursor carries.
fn base64_decode(text: &str) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = alphabet.iter().position(|a| *a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Every page from `uri` on: the results in order, and the bodies.
pub(super) async fn all_pages(router: &Router, uri: &str) -> (Vec<Value>, Vec<Value>) {
    let mut uri = uri.to_owned();
    let mut results = Vec::new();
    let mut bodies = Vec::new();
    loop {
        let (status, body) = get(router, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        let page = body["results"].as_array().unwrap();
        assert_eq!(body["count"].as_u64().unwrap() as usize, page.len());
        results.extend(page.iter().cloned());
        let next = body["next_url"].as_str().map(str::to_owned);
        bodies.push(body);
        match next {
            Some(next) => uri = path_and_query(&next).to_owned(),
            None => return (results, bodies),
        }
    }
}

/// (ticker, name, active) of records as served.
fn served(results: &[Value]) -> Vec<(String, String, bool)> {
    results
        .iter()
        .map(|r| {
            (
                r["ticker"].as_str().unwrap().to_owned(),
                r["name"].as_str().unwrap().to_owned(),
                r["active"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn expected(records: &[SimTicker], active: bool) -> Vec<(String, String, bool)> {
    records
        .iter()
        .map(|r| (r.ticker.clone(), r.name.clone(), active))
        .collect()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test]
async fn pages_follow_next_url_with_polygons_cursor_and_list_todays_tickers() {
    let (sim, router) = sim(SimConfig::new());
    let (results, bodies) = all_pages(&router, "/v3/reference/tickers?market=stocks&limit=4").await;
    let want = sim.reference_tickers(true, None);
    assert_eq!(served(&results), expected(&want, true));
    // Today's tickers: the whole universe, some twice (stale duplicate records).
    let distinct: BTreeSet<&str> = want.iter().map(|r| r.ticker.as_str()).collect();
    let universe: BTreeSet<&str> = sim.market_tickers().iter().map(String::as_str).collect();
    assert_eq!(distinct, universe);
    assert!(want.len() > distinct.len(), "some tickers have two records");
    assert_eq!(bodies.len(), want.len().div_ceil(4));
    // `next_url` is the endpoint with only a cursor: base64 of the remaining query, with the
    // last record's ticker and hash as the page marker.
    let next = bodies[0]["next_url"].as_str().unwrap();
    let (head, cursor) = next.split_once("?cursor=").unwrap();
    assert_eq!(head, "http://127.0.0.1/v3/reference/tickers");
    let query = base64_decode(cursor);
    let last = &want[3];
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive();
    let marker = query
        .split('&')
        .find_map(|p| p.strip_prefix("page_marker="))
        .unwrap();
    let (ticker, hash) = marker.split_once("%7C").unwrap();
    assert_eq!(ticker, last.ticker);
    assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    // The dates of a cursor made just before midnight and read just after differ; either is
    // today's.
    let yesterday = today.pred_opt().unwrap();
    assert!(
        [today, yesterday].iter().any(|d| query
            == format!(
                "active=true&date={d}&limit=4&market=stocks&order=asc&page_marker={marker}&sort=ticker"
            )),
        "{query}"
    );
    assert_eq!(sim.stats().with_status(200), bodies.len() as u64);
}

#[tokio::test]
async fn bodies_and_records_have_the_fixtures_keys_in_order() {
    let (_, router) = sim(SimConfig::new());
    let page1 = fixture("client-python__v3_reference_tickers.json");
    let page2 = fixture("client-python__v3_reference_tickers__cursor_page2.json");
    let (_, _, raw) = get_with(&router, "/v3/reference/tickers?type=CS&limit=2", Some(KEY)).await;
    let body: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(keys(&body), keys(&page1));
    assert_eq!(keys(&body["results"][0]), keys(&page1["results"][0]));
    assert_eq!(body["results"][0]["market"], "stocks");
    assert_eq!(body["results"][0]["locale"], "us");
    assert_eq!(body["results"][0]["currency_name"], "usd");
    // The fields come in the fixture's order.
    let raw = String::from_utf8(raw).unwrap();
    let in_order = |text: &str, keys: &[&str]| {
        let at: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        at.windows(2).all(|w| w[0] < w[1])
    };
    assert!(in_order(
        &raw,
        &["results", "status", "request_id", "count", "next_url"]
    ));
    let first = &raw[..raw.find('}').unwrap()];
    assert!(in_order(
        first,
        &[
            "ticker",
            "name",
            "market",
            "locale",
            "primary_exchange",
            "type",
            "active",
            "currency_name",
            "cik",
            "composite_figi",
            "share_class_figi",
            "last_updated_utc",
        ]
    ));
    let (_, body) = get(
        &router,
        "/v3/reference/tickers?type=CS&limit=1000&order=desc&date=2024-06-03",
    )
    .await;
    assert_eq!(keys(&body), keys(&page2), "no next_url on the last page");
}

#[tokio::test]
async fn delisted_tickers_and_past_days_list_other_records() {
    let (sim, router) = sim(SimConfig::new());
    let (gone, _) = all_pages(&router, "/v3/reference/tickers?active=false&limit=3").await;
    let want = sim.reference_tickers(false, None);
    assert!(!want.is_empty());
    assert_eq!(served(&gone), expected(&want, false));
    for (record, result) in want.iter().zip(&gone) {
        let delisted = record.delisted.unwrap();
        assert_eq!(result["delisted_utc"], format!("{delisted}T00:00:00Z"));
    }
    // None of them trades today: they are not in the universe, or a former company's.
    let today: BTreeSet<String> = sim
        .reference_tickers(true, None)
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert!(want.iter().all(|r| !today.contains(&r.name)));

    let day = date(2005, 1, 3);
    let (past, _) = all_pages(&router, "/v3/reference/tickers?date=2005-01-03&limit=5").await;
    let want_past = sim.reference_tickers(true, Some(day));
    assert_eq!(served(&past), expected(&want_past, true));
    assert!(want_past.iter().all(|r| r.listed <= day));
    assert!(past.iter().all(|r| r.get("delisted_utc").is_none()));
    let now: BTreeSet<String> = served(&sim_results(&router, "").await)
        .into_iter()
        .map(|(t, ..)| t)
        .collect();
    let then: BTreeSet<String> = served(&past).into_iter().map(|(t, ..)| t).collect();
    assert!(then.difference(&now).count() > 0, "delisted since 2005");
    assert!(now.difference(&then).count() > 0, "listed since 2005");
    // Delisted by 2005: fewer than today.
    let (gone_then, _) = all_pages(
        &router,
        "/v3/reference/tickers?active=false&date=2005-01-03",
    )
    .await;
    assert_eq!(
        served(&gone_then),
        expected(&sim.reference_tickers(false, Some(day)), false)
    );
    assert!(gone_then.len() < gone.len());
    // Before any listing, nothing.
    let (none, _) = all_pages(&router, "/v3/reference/tickers?date=1980-01-02").await;
    assert!(none.is_empty());
}

async fn sim_results(router: &Router, query: &str) -> Vec<Value> {
    all_pages(router, &format!("/v3/reference/tickers?limit=1000{query}"))
        .await
        .0
}

#[tokio::test]
async fn type_market_and_order_filter_and_sort() {
    let (_, router) = sim(SimConfig::new());
    let etfs = sim_results(&router, "&type=ETF").await;
    assert!(!etfs.is_empty());
    assert!(etfs.iter().all(|r| r["type"] == "ETF"));
    let all = sim_results(&router, "").await;
    let ascending = served(&all);
    let (descending, bodies) = all_pages(&router, "/v3/reference/tickers?order=desc&limit=7").await;
    let mut reversed = served(&descending);
    reversed.reverse();
    assert_eq!(reversed, ascending);
    assert!(bodies.len() > 1);
    for market in ["crypto", "fx", "otc", "indices"] {
        let (status, body) = get(&router, &format!("/v3/reference/tickers?market={market}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["results"], Value::Array(vec![]));
        assert_eq!(body["count"], 0);
        assert!(body.get("next_url").is_none());
    }
}

#[tokio::test]
async fn bad_parameters_get_400_with_an_error_body() {
    let (_, router) = sim(SimConfig::new());
    for query in [
        "active=maybe",
        "date=2024-13-01",
        "limit=many",
        "sort=name",
        "order=up",
        "market=bonds",
        "page_marker=nobar",
    ] {
        let (status, body) = get(&router, &format!("/v3/reference/tickers?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["status"], "ERROR", "{query}");
        assert!(body["error"].as_str().is_some(), "{query}");
    }
}

#[tokio::test]
async fn unknown_tickers_have_no_records() {
    let plain = Simulator::new(SimConfig::new());
    let first = plain.market_tickers()[0].clone();
    let (sim, router) = sim(SimConfig::new().unknown_ticker(first.clone()));
    assert!(sim.ticker_records().iter().all(|r| r.ticker != first));
    let listed = served(&sim_results(&router, "").await);
    assert!(listed.iter().all(|(t, ..)| *t != first));
    let of_first = plain
        .ticker_records()
        .iter()
        .filter(|r| r.ticker == first)
        .count();
    assert!(of_first >= 1);
    assert_eq!(
        sim.ticker_records().len(),
        plain.ticker_records().len() - of_first
    );
}

#[tokio::test]
async fn keys_faults_and_glitches_apply_as_on_every_endpoint() {
    let (sim, router) = sim(SimConfig::new());
    let uri = "/v3/reference/tickers?limit=5";
    let (status, _, body) = get_with(&router, uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("API Key was not provided"));
    assert_eq!(
        get_with(&router, &format!("{uri}&apiKey={KEY}"), None)
            .await
            .0,
        StatusCode::OK
    );
    sim.inject_on(
        "/v3/reference/tickers",
        [Fault::Status(503), Fault::NullResults, Fault::RepeatCursor],
    );
    assert_eq!(get(&router, uri).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let (_, body) = get(&router, uri).await;
    assert!(body["results"].is_null());
    assert!(body["count"].as_u64().unwrap() > 0);
    // A repeated cursor points back at the page it came with.
    let (_, first) = get(&router, uri).await;
    let again = path_and_query(first["next_url"].as_str().unwrap()).to_owned();
    let (_, second) = get(&router, &again).await;
    assert_eq!(second["results"], first["results"]);
    sim.inject_on("/v3/reference/tickers", [Fault::TruncatedJson]);
    let (status, _, body) = get_with(&router, uri, Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_counts_ticker_requests_with_the_others() {
    let (sim, router) = sim(SimConfig::new().rate_limit(2, Duration::from_secs(60)));
    assert_eq!(
        get(
            &router,
            "/v2/aggs/ticker/AAPL/range/1/day/2024-05-06/2024-05-06"
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        get(&router, "/v3/reference/tickers").await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&router, "/v3/reference/tickers").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(
        get(&router, "/v3/reference/tickers").await.0,
        StatusCode::OK
    );
    assert_eq!(sim.stats().with_status(429), 1);
}
