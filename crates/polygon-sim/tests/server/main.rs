//! The simulator's HTTP behaviour: in process through `oneshot` (so paused clocks work) and over
//! real sockets where the transport matters.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use backfill_domain::Timeframe;
use backfill_polygon_sim::{Fault, SimConfig, Simulator};
use serde_json::Value;
use tower::ServiceExt;

mod actions;
mod flat_files;
mod grouped;
mod market;
mod tickers;

const KEY: &str = "sim-test-key";

fn sim(config: SimConfig) -> (Simulator, Router) {
    let sim = Simulator::new(config.api_key(KEY));
    let router = sim.router();
    (sim, router)
}

async fn get_with(
    router: &Router,
    uri: &str,
    key: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(uri);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

async fn get(router: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = get_with(router, uri, Some(KEY)).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn path_and_query(next_url: &str) -> &str {
    let rest = next_url.strip_prefix("http://").unwrap();
    &rest[rest.find('/').unwrap()..]
}

// 2024-05-06 is a Monday; 13:00Z is 09:00 in New York.
const FROM: i64 = 1_715_000_400_000; // 2024-05-06T13:00:00Z
const TO: i64 = 1_715_029_199_999; // 2024-05-06T20:59:59.999Z

#[tokio::test]
async fn pages_follow_next_url_until_complete_with_exact_bars() {
    let (sim, router) = sim(SimConfig::new());
    let mut uri =
        format!("/v2/aggs/ticker/AAPL/range/1/minute/{FROM}/{TO}?adjusted=true&sort=asc&limit=120");
    let mut bars = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body) = get(&router, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        assert_eq!(body["status"], "OK");
        assert_eq!(body["ticker"], "AAPL");
        let results = body["results"].as_array().unwrap();
        assert_eq!(
            body["resultsCount"].as_u64().unwrap() as usize,
            results.len()
        );
        assert!(body["queryCount"].as_u64().unwrap() <= 120);
        bars.extend(results.iter().map(|b| b["t"].as_i64().unwrap()));
        match body["next_url"].as_str() {
            Some(next) => {
                assert!(next.starts_with("http://"), "{next}");
                assert!(next.contains("?cursor="), "{next}");
                // `from` is rewritten to the first bar not served, `to` is kept.
                assert!(next.contains(&format!("/{TO}?")), "{next}");
                uri = path_and_query(next).to_owned();
            }
            None => break,
        }
    }
    let expected: Vec<i64> = sim
        .generator()
        .bars("AAPL", Timeframe::parse("1m").unwrap(), FROM, TO, true)
        .iter()
        .map(|b| b.t)
        .collect();
    assert_eq!(bars, expected);
    assert_eq!(pages, 4); // 480 minutes, 120 a page
    assert_eq!(sim.stats().with_status(200), 4);
}

#[tokio::test]
async fn the_cursor_keeps_limit_and_sort_and_pages_descend() {
    let (_, router) = sim(SimConfig::new());
    let (_, first) = get(
        &router,
        &format!("/v2/aggs/ticker/AAPL/range/1/minute/{FROM}/{TO}?sort=desc&limit=100"),
    )
    .await;
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    let last_t = results[99]["t"].as_i64().unwrap();
    assert!(results[0]["t"].as_i64().unwrap() > last_t);
    let next = first["next_url"].as_str().unwrap();
    assert!(
        next.contains(&format!(
            "/{FROM}/{}?cursor=bGltaXQ9MTAwJnNvcnQ9ZGVzYw",
            last_t - 1
        )),
        "{next}"
    );
    let (_, second) = get(&router, path_and_query(next)).await;
    assert_eq!(second["results"][0]["t"].as_i64().unwrap(), last_t - 60_000);
    assert_eq!(second["results"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn a_page_cap_and_limit_count_base_aggregates() {
    let (_, router) = sim(SimConfig::new().max_page_size(90));
    let (_, body) = get(
        &router,
        &format!("/v2/aggs/ticker/AAPL/range/1/hour/{FROM}/{TO}?limit=50000"),
    )
    .await;
    // One whole hour (60 base minutes) fits under 90; two would not.
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert_eq!(body["queryCount"], 60);
    let (_, body) = get(
        &router,
        "/v2/aggs/ticker/AAPL/range/1/day/2024-05-06/2024-05-10",
    )
    .await;
    assert_eq!(body["results"].as_array().unwrap().len(), 5);
    assert_eq!(body["results"][0]["t"], 1_714_968_000_000i64); // 2024-05-06T04:00Z
}

#[tokio::test]
async fn missing_or_wrong_keys_get_401_with_an_error_body() {
    let (sim, router) = sim(SimConfig::new());
    let uri = format!("/v2/aggs/ticker/AAPL/range/1/minute/{FROM}/{TO}");
    let (status, _, body) = get_with(&router, &uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], "ERROR");
    assert_eq!(body["error"], "API Key was not provided");
    let (status, _, body) = get_with(&router, &uri, Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8(body).unwrap().contains("Unknown API Key"));
    let (status, _, _) = get_with(&router, &format!("{uri}?apiKey={KEY}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.stats().with_status(401), 2);
}

#[tokio::test]
async fn unknown_tickers_answer_ok_without_results() {
    let (_, router) = sim(SimConfig::new().unknown_ticker("DELISTED"));
    for ticker in ["ZZZQ", "DELISTED"] {
        let (status, body) = get(
            &router,
            &format!("/v2/aggs/ticker/{ticker}/range/1/minute/{FROM}/{TO}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "OK");
        assert_eq!(body["resultsCount"], 0);
        assert!(body.get("results").is_none());
        assert!(body.get("next_url").is_none());
    }
}

#[tokio::test]
async fn bad_parameters_get_400_like_polygon() {
    let (_, router) = sim(SimConfig::new());
    let (status, body) = get(
        &router,
        &format!("/v2/aggs/ticker/AAPL/range/1/minute/{TO}/{FROM}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "The parameter 'to' cannot be a time that occurs before 'from'"
    );
    let (status, body) = get(
        &router,
        &format!("/v2/aggs/ticker/AAPL/range/1/fortnight/{FROM}/{TO}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "ERROR");
    let (status, body) = get(&router, "/v3/reference/conditions").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "NOT_FOUND");
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_answers_429_with_polygons_body_and_retry_after() {
    let (sim, router) = sim(SimConfig::new()
        .rate_limit(2, Duration::from_secs(60))
        .retry_after(Some(7)));
    let uri = format!("/v2/aggs/ticker/AAPL/range/1/day/{FROM}/{TO}");
    assert_eq!(get(&router, &uri).await.0, StatusCode::OK);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(get(&router, &uri).await.0, StatusCode::OK);
    let (status, headers, body) = get_with(&router, &uri, Some(KEY)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "7");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], "ERROR");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("exceeded the maximum requests per minute"));
    // The first request leaves the window 60 s after it was admitted.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(get(&router, &uri).await.0, StatusCode::OK);
    assert_eq!(get(&router, &uri).await.0, StatusCode::TOO_MANY_REQUESTS);
    let stats = sim.stats();
    assert_eq!((stats.with_status(200), stats.with_status(429)), (3, 2));
}

#[tokio::test]
async fn scripted_faults_are_served_in_order_path_scripts_first() {
    let (sim, router) = sim(SimConfig::new());
    sim.inject([
        Fault::Status(503),
        Fault::GatewayTimeoutHtml,
        Fault::RateLimited {
            retry_after: Some(3),
        },
    ]);
    sim.inject_on("X:BTCUSD", [Fault::Status(500)]);
    let aapl = format!("/v2/aggs/ticker/AAPL/range/1/day/{FROM}/{TO}");
    let btc = format!("/v2/aggs/ticker/X:BTCUSD/range/1/day/{FROM}/{TO}");
    let (status, body) = get(&router, &btc).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["status"], "ERROR");
    assert_eq!(get(&router, &aapl).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let (status, headers, body) = get_with(&router, &aapl, Some(KEY)).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html");
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("<title>504 Gateway Time-out</title>"));
    let (status, headers, _) = get_with(&router, &btc, Some(KEY)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "3");
    assert_eq!(get(&router, &aapl).await.0, StatusCode::OK);
    let stats = sim.stats();
    assert_eq!(stats.total(), 5);
    assert_eq!(stats.matching("X:BTCUSD"), 2);
    assert_eq!(
        stats.with_status(503) + stats.with_status(504) + stats.with_status(500),
        3
    );
}

#[tokio::test]
async fn broken_bodies_are_broken_in_the_documented_ways() {
    let (sim, router) = sim(SimConfig::new());
    let uri = format!("/v2/aggs/ticker/AAPL/range/1/minute/{FROM}/{TO}");
    sim.inject([
        Fault::TruncatedJson,
        Fault::NullResults,
        Fault::RepeatCursor,
    ]);
    let (status, _, body) = get_with(&router, &uri, Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    assert!(body.starts_with(b"{\"ticker\":\"AAPL\""));
    let (status, body) = get(&router, &uri).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["results"].is_null());
    assert!(body["resultsCount"].as_u64().unwrap() > 0);
    let (_, body) = get(&router, &uri).await;
    let next = body["next_url"].as_str().unwrap();
    assert!(
        next.ends_with(&format!("{uri}?cursor=bGltaXQ9NTAwMCZzb3J0PWFzYw")),
        "{next}"
    );
}

#[tokio::test]
async fn random_faults_follow_the_fault_seed() {
    let statuses = |seed| async move {
        let (_, router) = sim(SimConfig::new()
            .fault_seed(seed)
            .random_faults(0.5, vec![Fault::Status(500), Fault::Status(502)]));
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(
                get(
                    &router,
                    &format!("/v2/aggs/ticker/AAPL/range/1/day/{FROM}/{TO}"),
                )
                .await
                .0
                .as_u16(),
            );
        }
        out
    };
    let a = statuses(1).await;
    assert_eq!(a, statuses(1).await);
    assert_ne!(a, statuses(2).await);
    let faults = a.iter().filter(|s| **s != 200).count();
    assert!((8..=32).contains(&faults), "{faults}");
    assert!(a.contains(&500) && a.contains(&502));
}

#[tokio::test(start_paused = true)]
async fn slow_responses_are_held_for_their_delay() {
    let (sim, router) = sim(SimConfig::new().status("DELAYED"));
    sim.inject([Fault::Slow(Duration::from_secs(30))]);
    let start = tokio::time::Instant::now();
    let (status, body) = get(
        &router,
        &format!("/v2/aggs/ticker/AAPL/range/1/day/{FROM}/{TO}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "DELAYED");
    assert!(start.elapsed() >= Duration::from_secs(30));
}

#[tokio::test]
async fn serves_real_sockets_drops_connections_and_shuts_down() {
    let sim = Simulator::new(SimConfig::new().api_key(KEY));
    let running = sim.spawn("127.0.0.1:0").await.unwrap();
    let client = reqwest::Client::new();
    let url = format!(
        "{}/v2/aggs/ticker/AAPL/range/1/minute/{FROM}/{TO}",
        running.base_url()
    );
    let ok = client.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["resultsCount"], 480);
    running.inject([Fault::AbortedBody]);
    let response = client.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "the body must end early");
    assert_eq!(running.stats().total(), 2);
    let addr = running.addr();
    running.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
