//! Corporate actions: the stored splits and dividends with the stale adjusted series, a
//! refresh from upstream, the fix (a `full` adjusted job per stale series), and raw candles
//! read adjusted for splits.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;
use backfill_api::{router, ActionsSource, ApiConfig, AppState, ReferenceError};
use backfill_domain::{BackfillMode, DateRange, Dividend, JobStatus, Split, Symbol, Timeframe};
use backfill_storage::{
    AdjustedSeries, CandlePage, CreatedJob, MockActionStore, MockCandleStore, MockJobRepository,
};
use chrono::{DateTime, Utc};

use crate::helpers::{body_json, body_text, candle, expect_error, get, job, post, send};

fn aapl() -> Symbol {
    Symbol::parse("AAPL").unwrap()
}

fn tf(s: &str) -> Timeframe {
    Timeframe::parse(s).unwrap()
}

fn split(date: &str, from: f64, to: f64) -> Split {
    Split::new(aapl(), date.parse().unwrap(), from, to).unwrap()
}

fn dividend() -> Dividend {
    Dividend {
        ticker: aapl(),
        ex_dividend_date: "2024-05-10".parse().unwrap(),
        cash_amount: 0.25,
        currency: Some("USD".to_owned()),
        declaration_date: None,
        record_date: None,
        pay_date: Some("2024-05-16".parse().unwrap()),
        frequency: Some(4),
        dividend_type: Some("CD".to_owned()),
    }
}

fn at(text: &str) -> Option<DateTime<Utc>> {
    Some(text.parse().unwrap())
}

/// A store of AAPL: a 4-for-1 split on 2024-06-10 and one dividend; its 1d series was fetched
/// before the split, its 1m series after it.
fn store() -> MockActionStore {
    let mut store = MockActionStore::new();
    store
        .expect_splits()
        .returning(|_| Ok(vec![split("2024-06-10", 1.0, 4.0)]));
    store.expect_dividends().returning(|_| Ok(vec![dividend()]));
    store.expect_adjusted_series().returning(|_| {
        Ok(vec![
            AdjustedSeries {
                timeframe: tf("1d"),
                fetched_at: at("2024-06-07T21:00:00Z"),
            },
            AdjustedSeries {
                timeframe: tf("1m"),
                fetched_at: at("2024-06-11T21:00:00Z"),
            },
        ])
    });
    store
}

struct Upstream(Result<(Vec<Split>, Vec<Dividend>), &'static str>);

#[async_trait::async_trait]
impl ActionsSource for Upstream {
    async fn actions(
        &self,
        symbol: &Symbol,
    ) -> Result<(Vec<Split>, Vec<Dividend>), ReferenceError> {
        assert_eq!(symbol.as_str(), "AAPL");
        self.0
            .clone()
            .map_err(|m| ReferenceError::Unavailable(m.to_owned()))
    }
}

fn actions_app(
    jobs: MockJobRepository,
    candles: MockCandleStore,
    store: Option<MockActionStore>,
    upstream: Option<Upstream>,
) -> Router {
    let mut state = AppState::new(Arc::new(jobs), Arc::new(candles), ApiConfig::default());
    if let Some(store) = store {
        state = state.with_actions(Arc::new(store));
    }
    if let Some(upstream) = upstream {
        state = state.with_actions_source(Arc::new(upstream));
    }
    router(state)
}

#[tokio::test]
async fn the_actions_of_a_symbol_name_its_stale_series() {
    let app = actions_app(
        MockJobRepository::new(),
        MockCandleStore::new(),
        Some(store()),
        None,
    );
    let response = send(&app, get("/api/v1/corporate-actions/aapl")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    assert_eq!(body["symbol"], "AAPL");
    assert_eq!(body["splits"][0]["execution_date"], "2024-06-10");
    assert_eq!(body["splits"][0]["split_to"], 4.0);
    assert_eq!(body["dividends"][0]["cash_amount"], 0.25);
    assert_eq!(body["dividends"][0]["pay_date"], "2024-05-16");
    assert_eq!(body["stale"], serde_json::json!(["1d"]));
    assert_eq!(
        body["series"][0]["stale_since"]["execution_date"],
        "2024-06-10"
    );
    assert!(body["series"][1].get("stale_since").is_none());
    assert!(body.get("changed").is_none());

    expect_error(
        &app,
        get("/api/v1/corporate-actions/BAD%20TICKER"),
        StatusCode::BAD_REQUEST,
        "invalid_symbol",
    )
    .await;
    let bare = crate::helpers::idle_app();
    expect_error(
        &bare,
        get("/api/v1/corporate-actions/AAPL"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_refresh_stores_what_upstream_lists_and_says_what_changed() {
    let mut store = store();
    store
        .expect_upsert_splits()
        .withf(|s| s.len() == 1 && s[0].execution_date.to_string() == "2024-06-10")
        .times(1)
        .returning(|_| Ok(1));
    store
        .expect_upsert_dividends()
        .withf(|d| d.len() == 1)
        .times(1)
        .returning(|_| Ok(0));
    let upstream = Upstream(Ok((vec![split("2024-06-10", 1.0, 4.0)], vec![dividend()])));
    let app = actions_app(
        MockJobRepository::new(),
        MockCandleStore::new(),
        Some(store),
        Some(upstream),
    );
    let response = send(&app, post("/api/v1/corporate-actions/AAPL/refresh")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    assert_eq!(body["changed"]["splits"], 1);
    assert_eq!(body["changed"]["dividends"], 0);
    assert_eq!(body["stale"], serde_json::json!(["1d"]));

    // Without an upstream, or when it fails.
    let app_without = without_upstream();
    expect_error(
        &app_without,
        post("/api/v1/corporate-actions/AAPL/refresh"),
        StatusCode::BAD_REQUEST,
        "source_unavailable",
    )
    .await;
    let failing = actions_app(
        MockJobRepository::new(),
        MockCandleStore::new(),
        Some(MockActionStore::new()),
        Some(Upstream(Err("polygon answered 503 five times"))),
    );
    expect_error(
        &failing,
        post("/api/v1/corporate-actions/AAPL/refresh"),
        StatusCode::BAD_GATEWAY,
        "upstream_unavailable",
    )
    .await;
}

fn without_upstream() -> Router {
    actions_app(
        MockJobRepository::new(),
        MockCandleStore::new(),
        Some(MockActionStore::new()),
        None,
    )
}

#[tokio::test]
async fn the_fix_is_a_full_adjusted_job_over_all_a_stale_series_covers() {
    let covered = |a: &str, b: &str| {
        DateRange::from_instants(a.parse().unwrap(), b.parse().unwrap()).unwrap()
    };
    let mut candles = MockCandleStore::new();
    candles
        .expect_coverage()
        .withf(|s, t, adjusted| s.as_str() == "AAPL" && *t == tf("1d") && *adjusted)
        .times(1)
        .returning(move |_, _, _| {
            Ok(vec![
                covered("2024-01-02T05:00:00Z", "2024-02-01T05:00:00Z"),
                covered("2024-03-01T05:00:00Z", "2024-06-07T04:00:00Z"),
            ])
        });
    let mut jobs = MockJobRepository::new();
    jobs.expect_create_job()
        .withf(move |spec, key| {
            spec.symbols() == [aapl()]
                && spec.timeframe() == tf("1d")
                && spec.adjusted()
                && spec.mode() == BackfillMode::Full
                && spec.range() == covered("2024-01-02T05:00:00Z", "2024-06-07T04:00:00Z")
                && key.is_none()
        })
        .times(1)
        .returning(|_, _| {
            Ok(CreatedJob {
                job: job(JobStatus::Queued),
                created: true,
            })
        });
    let app = actions_app(jobs, candles, Some(store()), None);
    let response = send(&app, post("/api/v1/corporate-actions/AAPL/fix")).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = body_json(response).await;
    assert_eq!(body["jobs"][0]["timeframe"], "1d");
    assert_eq!(body["jobs"][0]["job_id"], crate::helpers::JOB_ID);
    assert_eq!(body["jobs"].as_array().unwrap().len(), 1);

    // Nothing stale: nothing created.
    let mut fresh = MockActionStore::new();
    fresh.expect_splits().returning(|_| Ok(Vec::new()));
    fresh.expect_dividends().returning(|_| Ok(Vec::new()));
    fresh.expect_adjusted_series().returning(|_| {
        Ok(vec![AdjustedSeries {
            timeframe: tf("1d"),
            fetched_at: at("2024-06-07T21:00:00Z"),
        }])
    });
    let app = actions_app(
        MockJobRepository::new(),
        MockCandleStore::new(),
        Some(fresh),
        None,
    );
    let response = send(&app, post("/api/v1/corporate-actions/AAPL/fix")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["jobs"], serde_json::json!([]));
}

#[tokio::test]
async fn a_raw_series_is_read_adjusted_for_the_stored_splits() {
    // Bars on 2024-01-02; a 4-for-1 split after them, and one before them that does not apply.
    let mut store = MockActionStore::new();
    store.expect_splits().returning(|_| {
        Ok(vec![
            split("2024-06-10", 1.0, 4.0),
            split("2020-08-31", 1.0, 4.0),
        ])
    });
    let app = actions_app(MockJobRepository::new(), raw_bar(), Some(store), None);
    let response = send(
        &app,
        get("/api/v1/candles/AAPL?timeframe=1m&adjusted=false&adjust=splits"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    assert_eq!(body["adjusted"], true);
    let row = &body["candles"][0];
    assert_eq!(row["ts"], "2024-01-02T14:30:00Z");
    assert_eq!(row["open"], 187.15 / 4.0);
    assert_eq!(row["close"], 187.2 / 4.0);
    assert_eq!(row["volume"], 1_029_145.5 * 4.0);
    assert_eq!(row["vwap"], 187.1 / 4.0);
    assert_eq!(row["trades"], 4211);

    // An adjusted series is adjusted already; a server without actions cannot adjust.
    expect_error(
        &app,
        get("/api/v1/candles/AAPL?timeframe=1m&adjust=splits"),
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    expect_error(
        &crate::helpers::idle_app(),
        get("/api/v1/candles/AAPL?timeframe=1m&adjusted=false&adjust=splits"),
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/candles/AAPL?timeframe=1m&adjusted=false&adjust=dividends"),
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn an_export_of_a_raw_series_is_adjusted_for_the_stored_splits_too() {
    let mut store = MockActionStore::new();
    store
        .expect_splits()
        .returning(|_| Ok(vec![split("2024-06-10", 1.0, 4.0)]));
    let app = actions_app(MockJobRepository::new(), raw_bar(), Some(store), None);
    let response = send(
        &app,
        get("/api/v1/candles/AAPL?timeframe=1m&adjusted=false&adjust=splits&format=csv"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = body_text(response).await;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("a row").split(',').collect();
    assert_eq!(lines.next(), None);
    let field = |name: &str| -> f64 {
        let i = header.iter().position(|h| *h == name).expect(name);
        row[i].parse().expect("a number")
    };
    assert_eq!(field("open"), 187.15 / 4.0);
    assert_eq!(field("close"), 187.2 / 4.0);
    assert_eq!(field("volume"), 1_029_145.5 * 4.0);
    assert_eq!(field("vwap"), 187.1 / 4.0);
    assert_eq!(field("trades"), 4211.0);
}

/// A candle store holding one raw bar of 2024-01-02 (and no adjusted series).
fn raw_bar() -> MockCandleStore {
    let mut candles = MockCandleStore::new();
    candles
        .expect_candles()
        .withf(|q| !q.adjusted)
        .returning(|_| {
            Ok(CandlePage {
                candles: vec![candle(0, Some(187.1), Some(4211))],
                next_cursor: None,
            })
        });
    candles
}
