//! Reference tickers: the recorded pages, parsed and followed over HTTP, and round trips
//! against the simulator's listing history (active, delisted, both, past days, types), with the
//! retries, rate limits and loop guards of every request.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backfill_polygon::{
    decode_tickers, Error, Listing, PolygonClient, PolygonConfig, RateLimiter, ReferenceData,
    Ticker, TickerListing, TickersRequest,
};
use backfill_polygon_sim::{Fault, RunningSimulator, SimConfig, SimTicker};
use chrono::{DateTime, NaiveDate, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{client, fast_config, start, KEY};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/polygon-fixtures/"
);
const PAGE_1: &str = "client-python__v3_reference_tickers.json";
const PAGE_2: &str = "client-python__v3_reference_tickers__cursor_page2.json";
/// The cursor of the first recorded page's `next_url`.
const CURSOR: &str = "YWN0aXZlPXRydWUmZGF0ZT0yMDIyLTA0LTI3JmxpbWl0PTImb3JkZXI9YXNjJnBhZ2VfbWFya2VyPUFBJTdDZjEyMmJjYmY4YWQwNzRmZmJlMTZmNjkxOWQ0ZDc3NjZlMzA3MWNmNmU1Nzg3OGE0OGU1NjQ1YzQyM2U3NzJhOSZzb3J0PXRpY2tlcg";

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn utc(text: &str) -> Option<DateTime<Utc>> {
    Some(text.parse().unwrap())
}

/// (ticker, name, type, exchange, cik, composite FIGI) of the four recorded tickers.
type Recorded = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
);

const RECORDED: [Recorded; 4] = [
    (
        "A",
        "Agilent Technologies Inc.",
        "CS",
        "XNYS",
        Some("0001090872"),
        "BBG000C2V3D6",
    ),
    (
        "AA",
        "Alcoa Corporation",
        "CS",
        "XNYS",
        Some("0001675149"),
        "BBG00B3T3HD3",
    ),
    (
        "AAA",
        "AAF First Priority CLO Bond ETF",
        "ETF",
        "ARCX",
        None,
        "BBG00X5FSP48",
    ),
    (
        "AAAU",
        "Goldman Sachs Physical Gold ETF Shares",
        "ETF",
        "BATS",
        Some("0001708646"),
        "BBG00LPXX872",
    ),
];

fn assert_recorded(tickers: &[Ticker], recorded: &[Recorded]) {
    assert_eq!(tickers.len(), recorded.len());
    for (t, (symbol, name, kind, exchange, cik, figi)) in tickers.iter().zip(recorded) {
        assert_eq!(t.symbol.as_str(), *symbol);
        assert_eq!(t.name, *name, "{symbol}");
        assert_eq!(t.ticker_type.as_deref(), Some(*kind), "{symbol}");
        assert_eq!(t.primary_exchange.as_deref(), Some(*exchange), "{symbol}");
        assert_eq!(t.cik.as_deref(), *cik, "{symbol}");
        assert_eq!(t.composite_figi.as_deref(), Some(*figi), "{symbol}");
        assert!(t.active && t.delisted_utc.is_none(), "{symbol}");
        assert_eq!(t.last_updated_utc, utc("2022-04-27T00:00:00Z"), "{symbol}");
    }
}

#[test]
fn the_recorded_pages_parse_to_their_tickers() {
    let first = decode_tickers(200, None, &read(PAGE_1)).unwrap();
    assert!(first.skipped.is_empty());
    assert_recorded(&first.tickers, &RECORDED[..2]);
    assert_eq!(
        first.next_url,
        Some(format!(
            "https://api.massive.com/v3/reference/tickers?cursor={CURSOR}"
        ))
    );
    assert_eq!(first.status.as_deref(), Some("OK"));
    let second = decode_tickers(200, None, &read(PAGE_2)).unwrap();
    assert_recorded(&second.tickers, &RECORDED[2..]);
    assert_eq!(second.next_url, None);
}

/// A server that answers the requests whose target (path and query) it knows with a recorded
/// body, and 404 otherwise, and keeps every request's head.
struct Recording {
    base_url: String,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(routes: BTreeMap<String, Vec<u8>>) -> Recording {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    let task = tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request head ends");
                head.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8(head).unwrap();
            let target = head.split(' ').nth(1).unwrap_or("").to_owned();
            seen.lock().unwrap().push(head);
            let (status, body) = match routes.get(&target) {
                Some(body) => ("200 OK", body.clone()),
                None => ("404 Not Found", br#"{"status":"NOT_FOUND"}"#.to_vec()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.write_all(&body).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    Recording {
        base_url,
        heads,
        task,
    }
}

#[tokio::test]
async fn the_client_follows_the_recorded_next_url_on_its_own_base_with_the_key_in_a_header() {
    let first = "/v3/reference/tickers?market=stocks&active=true&sort=ticker&order=asc&limit=1000";
    let routes = BTreeMap::from([
        (first.to_owned(), read(PAGE_1)),
        (
            format!("/v3/reference/tickers?cursor={CURSOR}"),
            read(PAGE_2),
        ),
    ]);
    let server = serve(routes).await;
    let client = PolygonClient::new(fast_config(&server.base_url)).unwrap();
    let listing = client
        .list_tickers(&TickersRequest::new(Listing::Active))
        .await
        .unwrap();
    assert_recorded(&listing.tickers, &RECORDED);
    assert_eq!((listing.pages, listing.requests), (2, 2));
    assert_eq!((listing.duplicates, listing.skipped.len()), (0, 0));
    let heads = server.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2);
    assert!(heads[0].starts_with(&format!("GET {first} HTTP/1.1\r\n")));
    assert!(heads[1].starts_with(&format!(
        "GET /v3/reference/tickers?cursor={CURSOR} HTTP/1.1\r\n"
    )));
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains(&format!("authorization: bearer {KEY}")),
            "{head}"
        );
        assert!(!lower.contains("apikey"), "{head}");
    }
}

#[tokio::test]
async fn duplicates_and_tickers_that_are_not_symbols_across_pages_are_merged_and_reported() {
    let first = "/v3/reference/tickers?market=stocks&active=true&sort=ticker&order=asc&limit=2";
    let page = |results: &str, next: Option<&str>| {
        let next = next.map_or(String::new(), |n| format!(r#","next_url":"{n}""#));
        format!(r#"{{"status":"OK","results":[{results}]{next}}}"#).into_bytes()
    };
    let routes = BTreeMap::from([
        (
            first.to_owned(),
            page(
                r#"{"ticker":"CASY","name":"CASEYS GENERAL STORES INC","active":true,"last_updated_utc":"2011-05-10T00:00:00Z"},
                   {"ticker":"AMpB","name":"AM preferred B","active":true}"#,
                Some("https://api.polygon.io:443:443/v3/reference/tickers?cursor=Mg&apiKey=LEAKED"),
            ),
        ),
        (
            "/v3/reference/tickers?cursor=Mg".to_owned(),
            page(
                r#"{"ticker":"CASY","name":"Casey's General Stores Inc","type":"CS","active":true,"last_updated_utc":"2021-10-07T00:00:00Z"},
                   {"ticker":"AMpB","name":"AM preferred B","active":true}"#,
                Some("/v3/reference/tickers?cursor=Mw"),
            ),
        ),
        ("/v3/reference/tickers?cursor=Mw".to_owned(), page("", None)),
    ]);
    let server = serve(routes).await;
    let client = PolygonClient::new(fast_config(&server.base_url)).unwrap();
    let request = TickersRequest {
        page_size: 2,
        ..TickersRequest::new(Listing::Active)
    };
    let listing = client.list_tickers(&request).await.unwrap();
    let [casy] = listing.tickers.as_slice() else {
        panic!("one ticker: {listing:?}");
    };
    assert_eq!(casy.name, "Casey's General Stores Inc", "the latest record");
    assert_eq!(listing.duplicates, 1);
    assert_eq!(listing.skipped.len(), 1, "reported once");
    assert_eq!(listing.skipped[0].ticker, "AMpB");
    assert_eq!((listing.pages, listing.requests), (3, 3));
    assert!(server
        .heads
        .lock()
        .unwrap()
        .iter()
        .all(|h| !h.contains("LEAKED")));
}

#[tokio::test]
async fn a_next_url_off_the_endpoint_fails_without_following_it() {
    let first = "/v3/reference/tickers?market=stocks&active=false&sort=ticker&order=asc&limit=1000";
    let body = br#"{"status":"OK","results":[{"ticker":"OLD","active":false}],"next_url":"https://api.massive.com/v3/reference/tickers/OLD?cursor=x"}"#;
    let server = serve(BTreeMap::from([(first.to_owned(), body.to_vec())])).await;
    let client = PolygonClient::new(fast_config(&server.base_url)).unwrap();
    let err = client
        .list_tickers(&TickersRequest::new(Listing::Delisted))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("leaves the tickers endpoint"),
        "{err}"
    );
    assert_eq!(server.heads.lock().unwrap().len(), 1);
}

/// What a listing of the simulator must return: one record per ticker, the active one first,
/// then the one updated last, sorted by ticker.
fn merged(records: Vec<(SimTicker, bool)>) -> Vec<(SimTicker, bool)> {
    let mut by_ticker: BTreeMap<String, (SimTicker, bool)> = BTreeMap::new();
    for (record, active) in records {
        let better = by_ticker
            .get(&record.ticker)
            .is_none_or(|(kept, kept_active)| {
                (active, record.last_updated) > (*kept_active, kept.last_updated)
            });
        if better {
            by_ticker.insert(record.ticker.clone(), (record, active));
        }
    }
    by_ticker.into_values().collect()
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

/// Checks every field of a listing against the simulator's records.
fn assert_listed(listing: &TickerListing, records: Vec<(SimTicker, bool)>) {
    let total = records.len() as u64;
    let want = merged(records);
    assert_eq!(listing.duplicates, total - want.len() as u64);
    assert!(listing.skipped.is_empty());
    let got: Vec<&str> = listing.tickers.iter().map(|t| t.symbol.as_str()).collect();
    let wanted: Vec<&str> = want.iter().map(|(r, _)| r.ticker.as_str()).collect();
    assert_eq!(got, wanted);
    for (ticker, (record, active)) in listing.tickers.iter().zip(&want) {
        let context = &record.ticker;
        assert_eq!(ticker.name, record.name, "{context}");
        assert_eq!(ticker.ticker_type, record.ticker_type, "{context}");
        assert_eq!(
            ticker.primary_exchange.as_deref(),
            Some(record.primary_exchange.as_str()),
            "{context}"
        );
        assert_eq!(ticker.active, *active, "{context}");
        let delisted = record.delisted.filter(|_| !active).map(midnight);
        assert_eq!(ticker.delisted_utc, delisted, "{context}");
        assert_eq!(
            ticker.last_updated_utc,
            Some(midnight(record.last_updated)),
            "{context}"
        );
        assert_eq!(ticker.cik, record.cik, "{context}");
        assert_eq!(
            ticker.composite_figi.as_deref(),
            Some(record.composite_figi.as_str())
        );
    }
}

fn with_status(records: Vec<SimTicker>, active: bool) -> Vec<(SimTicker, bool)> {
    records.into_iter().map(|r| (r, active)).collect()
}

async fn sim_and_client(config: SimConfig) -> (RunningSimulator, PolygonClient) {
    let sim = start(config).await;
    let client = client(&sim);
    (sim, client)
}

#[tokio::test]
async fn lists_the_simulators_tickers_across_many_pages_exactly() {
    let (sim, client) = sim_and_client(SimConfig::new().market(60)).await;
    let request = TickersRequest {
        page_size: 7,
        ..TickersRequest::new(Listing::Active)
    };
    let listing = client.list_tickers(&request).await.unwrap();
    let records = sim.reference_tickers(true, None);
    let pages = records.len().div_ceil(7) as u32;
    assert!(pages >= 9, "{pages}");
    assert_eq!((listing.pages, listing.requests), (pages, pages));
    assert!(listing.duplicates > 0, "the universe has stale duplicates");
    assert_listed(&listing, with_status(records, true));
    // Today's tickers are the universe.
    let mut universe: Vec<&str> = sim.market_tickers().iter().map(String::as_str).collect();
    universe.sort_unstable();
    let got: Vec<&str> = listing.tickers.iter().map(|t| t.symbol.as_str()).collect();
    assert_eq!(got, universe);
    assert_eq!(sim.stats().with_status(200), u64::from(pages));
}

#[tokio::test]
async fn delisted_both_and_past_days_round_trip() {
    let (sim, client) = sim_and_client(SimConfig::new().market(40)).await;
    let ask = |listing, date| TickersRequest {
        date,
        page_size: 6,
        ..TickersRequest::new(listing)
    };
    let delisted = client
        .list_tickers(&ask(Listing::Delisted, None))
        .await
        .unwrap();
    assert!(!delisted.tickers.is_empty());
    assert!(delisted
        .tickers
        .iter()
        .all(|t| !t.active && t.delisted_utc.is_some()));
    assert_listed(
        &delisted,
        with_status(sim.reference_tickers(false, None), false),
    );

    // Both: a reused ticker is listed as its current, active company.
    let both = client
        .list_tickers(&ask(Listing::Both, None))
        .await
        .unwrap();
    let mut records = with_status(sim.reference_tickers(true, None), true);
    records.extend(with_status(sim.reference_tickers(false, None), false));
    assert_listed(&both, records);
    let reused = &sim.market_tickers()[7];
    let listed = both
        .tickers
        .iter()
        .find(|t| t.symbol.as_str() == reused)
        .unwrap();
    assert!(listed.active, "{reused}");
    assert!(delisted.tickers.iter().any(|t| t.symbol.as_str() == reused));
    assert_eq!(both.pages, both.requests);

    // A past day lists another set.
    let day = NaiveDate::from_ymd_opt(2006, 3, 1).unwrap();
    let past = client
        .list_tickers(&ask(Listing::Active, Some(day)))
        .await
        .unwrap();
    assert_listed(
        &past,
        with_status(sim.reference_tickers(true, Some(day)), true),
    );
    let today = client
        .list_tickers(&ask(Listing::Active, None))
        .await
        .unwrap();
    assert_ne!(past.tickers, today.tickers);
    let past_delisted = client
        .list_tickers(&ask(Listing::Delisted, Some(day)))
        .await
        .unwrap();
    assert_listed(
        &past_delisted,
        with_status(sim.reference_tickers(false, Some(day)), false),
    );
    assert!(past_delisted.tickers.len() < delisted.tickers.len());
}

#[tokio::test]
async fn a_type_keeps_only_tickers_of_that_type() {
    let (sim, client) = sim_and_client(SimConfig::new().market(50)).await;
    let request = TickersRequest {
        ticker_type: Some("ETF".to_owned()),
        page_size: 3,
        ..TickersRequest::new(Listing::Both)
    };
    let listing = client.list_tickers(&request).await.unwrap();
    let etf = |records: Vec<SimTicker>| -> Vec<SimTicker> {
        records
            .into_iter()
            .filter(|r| r.ticker_type.as_deref() == Some("ETF"))
            .collect()
    };
    let mut records = with_status(etf(sim.reference_tickers(true, None)), true);
    records.extend(with_status(etf(sim.reference_tickers(false, None)), false));
    assert!(records.len() > 3);
    assert_listed(&listing, records);
}

#[tokio::test]
async fn transient_failures_are_retried_and_the_listing_stays_exact() {
    let (sim, client) = sim_and_client(SimConfig::new()).await;
    sim.inject_on(
        "/v3/reference/tickers",
        [
            Fault::Status(503),
            Fault::RateLimited { retry_after: None },
            Fault::TruncatedJson,
            Fault::NullResults,
            Fault::AbortedBody,
        ],
    );
    let request = TickersRequest {
        page_size: 10,
        ..TickersRequest::new(Listing::Active)
    };
    let listing = client.list_tickers(&request).await.unwrap();
    assert_listed(
        &listing,
        with_status(sim.reference_tickers(true, None), true),
    );
    assert_eq!(listing.requests, listing.pages + 5);
    assert_eq!(client.stats().retries, 5);
}

#[tokio::test]
async fn the_shared_limiter_paces_ticker_pages_like_any_request() {
    let window = Duration::from_millis(150);
    let sim = start(SimConfig::new().rate_limit(2, window).retry_after(None)).await;
    let limiter = Arc::new(RateLimiter::new(NonZeroU32::new(2).unwrap(), window));
    let client = PolygonClient::with_quota(fast_config(sim.base_url()), limiter).unwrap();
    let request = TickersRequest {
        page_size: 6,
        ..TickersRequest::new(Listing::Active)
    };
    let listing = client.list_tickers(&request).await.unwrap();
    assert!(listing.pages >= 4, "{}", listing.pages);
    assert_eq!(listing.requests, listing.pages);
    let stats = sim.stats();
    assert_eq!(stats.with_status(429), 0, "the server never had to refuse");
    assert!(stats.max_in_window(window) <= 2);
    assert!(client.stats().rate_limiter_wait > Duration::ZERO);
}

#[tokio::test]
async fn a_cursor_that_brings_nothing_new_stops_the_listing() {
    let (sim, client) = sim_and_client(SimConfig::new()).await;
    sim.inject_on("/v3/reference/tickers", [Fault::RepeatCursor]);
    let request = TickersRequest {
        page_size: 5,
        ..TickersRequest::new(Listing::Active)
    };
    let err = client.list_tickers(&request).await.unwrap_err();
    assert!(matches!(err, Error::CursorLoop { .. }), "{err}");
    assert!(err.is_permanent());
    assert_eq!(sim.stats().total(), 2, "the repeated page, then no further");
}

#[tokio::test]
async fn a_wrong_key_fails_at_once() {
    let sim = start(SimConfig::new()).await;
    let client = PolygonClient::new(PolygonConfig {
        api_key: "not-the-key".into(),
        ..fast_config(sim.base_url())
    })
    .unwrap();
    let err = client
        .list_tickers(&TickersRequest::new(Listing::Both))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert_eq!(sim.stats().total(), 1);
}
