//! Schedules and universes: create, read, pause and resume, delete, and refresh from the
//! reference tickers; bad input answers 4xx in the one error shape and stores nothing.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use backfill_api::{
    router, ApiConfig, AppState, ReferenceError, ReferenceTickers, RefreshUniverseRequest,
    TickerStatus,
};
use backfill_domain::{Name, NamedUniverse, ScheduleSpec, Sources, Symbol, Tickers};
use backfill_storage::{
    MockCandleStore, MockJobRepository, MockScheduleStore, Schedule, ScheduleRun,
};
use serde_json::{json, Value};

use crate::helpers::*;

fn app_of(store: MockScheduleStore, config: ApiConfig) -> Router {
    router(
        AppState::new(
            Arc::new(MockJobRepository::new()),
            Arc::new(MockCandleStore::new()),
            config,
        )
        .with_schedules(Arc::new(store)),
    )
}

fn stored(spec: &ScheduleSpec, paused: bool) -> Schedule {
    Schedule {
        id: 1,
        spec: spec.clone(),
        paused,
        next_due_at: Some(t0()),
        last_run: Some(ScheduleRun {
            schedule: spec.name().clone(),
            due_at: t0(),
            fired_at: t0(),
            job_ids: vec![job_id()],
            error: None,
        }),
        runs: 3,
        created_at: t0(),
    }
}

fn nightly() -> Value {
    json!({
        "name": "Nightly",
        "symbols": ["aapl", "MSFT", "AAPL"],
        "timeframes": ["1m", "1d"],
        "trigger": "after_close+30m",
        "lookback_days": 3
    })
}

fn universe(name: &str, symbols: &[&str], origin: &str) -> NamedUniverse {
    NamedUniverse {
        name: Name::parse(name).unwrap(),
        symbols: symbols.iter().map(|s| Symbol::parse(s).unwrap()).collect(),
        origin: origin.to_owned(),
        updated_at: t0(),
    }
}

fn put_json(uri: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(Method::PUT)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn delete(uri: &str) -> Request<Body> {
    Request::delete(uri).body(Body::empty()).unwrap()
}

/// A store that must not be asked to create a schedule.
fn refusing() -> MockScheduleStore {
    let mut store = MockScheduleStore::new();
    store.expect_create_schedule().times(0);
    store
}

#[tokio::test]
async fn a_schedule_is_created_with_its_spec_and_answered_with_its_next_due_time() {
    let mut store = MockScheduleStore::new();
    store
        .expect_create_schedule()
        .withf(|spec: &ScheduleSpec| {
            spec.name().as_str() == "nightly"
                && spec.tickers()
                    == &Tickers::Symbols(vec![
                        Symbol::parse("AAPL").unwrap(),
                        Symbol::parse("MSFT").unwrap(),
                    ])
                && spec.timeframes().len() == 2
                && spec.lookback_days() == 3
                && spec.trigger().to_string() == "after_close+30m"
        })
        .times(1)
        .returning(|spec| Ok(stored(spec, false)));
    let app = app_of(store, ApiConfig::default());
    let response = send(&app, post_json("/api/v1/schedules", &nightly())).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/api/v1/schedules/nightly"
    );
    let body = body_json(response).await;
    assert_eq!(body["name"], "nightly");
    assert_eq!(body["tickers"], json!({"symbols": ["AAPL", "MSFT"]}));
    assert_eq!(body["timeframes"], json!(["1m", "1d"]));
    assert_eq!(body["trigger"], "after_close+30m");
    assert_eq!(body["paused"], false);
    assert_eq!(body["next_due_at"], "2024-01-02T14:30:00Z");
    assert_eq!(body["last_run"]["job_ids"], json!([JOB_ID]));
    assert_eq!(body["runs"], 3);
}

#[tokio::test]
async fn bad_schedules_are_400s_that_name_the_problem_and_store_nothing() {
    let app = app_of(
        refusing(),
        ApiConfig::default().with_sources(Sources { flat_files: false }),
    );
    let cases = [
        (
            json!({"trigger": "every tuesday"}),
            "invalid_schedule",
            "every tuesday",
        ),
        (json!({"trigger": "0 25 * * *"}), "invalid_schedule", "0 25"),
        (
            json!({"trigger": "after_close+13h"}),
            "invalid_schedule",
            "12h",
        ),
        (
            json!({"name": "no spaces"}),
            "invalid_schedule",
            "no spaces",
        ),
        (json!({"timeframes": []}), "invalid_schedule", "timeframes"),
        (json!({"lookback_days": 0}), "invalid_schedule", "look-back"),
        (json!({"symbols": ["A B"]}), "invalid_symbol", "A B"),
        (json!({"timeframes": ["7x"]}), "invalid_timeframe", "7x"),
        (json!({"universe": "sp500"}), "invalid_schedule", "not both"),
        (json!({"source": "ftp"}), "invalid_source", "ftp"),
        (
            json!({"source": "flatfiles", "adjusted": false}),
            "source_unavailable",
            "POLYGON_S3",
        ),
        (json!({"source": "grouped"}), "invalid_source", "1d"),
    ];
    for (change, code, needle) in cases {
        let mut body = nightly();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let error = expect_error(
            &app,
            post_json("/api/v1/schedules", &body),
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(needle), "{change}: {message}");
    }
    expect_error(
        &app,
        post_json("/api/v1/schedules", &json!({"name": "x"})),
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
}

#[tokio::test]
async fn a_schedule_naming_an_unknown_universe_is_a_400() {
    let mut store = refusing();
    store.expect_get_universe().returning(|name| {
        Err(backfill_storage::Error::NotFound {
            what: format!("universe {name}"),
        })
    });
    let app = app_of(store, ApiConfig::default());
    let body = json!({
        "name": "sp", "universe": "sp500", "timeframes": ["1d"], "trigger": "after_close"
    });
    let error = expect_error(
        &app,
        post_json("/api/v1/schedules", &body),
        StatusCode::BAD_REQUEST,
        "unknown_universe",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("sp500"));
}

#[tokio::test]
async fn a_schedule_over_a_universe_or_the_whole_market_checks_what_its_runs_will_need() {
    let mut store = MockScheduleStore::new();
    store
        .expect_get_universe()
        .returning(|_| Ok(universe("sp500", &["AAPL", "MSFT"], "manual")));
    store
        .expect_create_schedule()
        .times(2)
        .returning(|spec| Ok(stored(spec, false)));
    let app = app_of(
        store,
        ApiConfig::default().with_sources(Sources { flat_files: true }),
    );
    let over_universe = json!({
        "name": "sp", "universe": "sp500", "timeframes": ["1d"], "trigger": "0 18 * * 1-5"
    });
    let response = send(&app, post_json("/api/v1/schedules", &over_universe)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        body_json(response).await["tickers"],
        json!({"universe": "sp500"})
    );
    let market = json!({
        "name": "market", "universe": "all", "timeframes": ["1m"], "adjusted": false,
        "source": "flatfiles", "trigger": "after_close+8h"
    });
    let response = send(&app, post_json("/api/v1/schedules", &market)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(body_json(response).await["tickers"], "all");
    // The whole market from the rest source cannot be served.
    let rest_market = json!({
        "name": "bad", "universe": "all", "timeframes": ["1m"], "source": "rest",
        "trigger": "after_close"
    });
    expect_error(
        &app,
        post_json("/api/v1/schedules", &rest_market),
        StatusCode::BAD_REQUEST,
        "invalid_source",
    )
    .await;
}

#[tokio::test]
async fn overlapping_or_taken_schedules_are_409s_with_the_stores_reason() {
    let mut store = MockScheduleStore::new();
    store.expect_create_schedule().returning(|_| {
        Err(backfill_storage::Error::Conflict(
            "schedule nightly overlaps schedule daily on AAPL at 1d".into(),
        ))
    });
    let app = app_of(store, ApiConfig::default());
    let error = expect_error(
        &app,
        post_json("/api/v1/schedules", &nightly()),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("overlaps schedule daily"));
}

#[tokio::test]
async fn schedules_are_listed_read_paused_resumed_and_deleted() {
    let spec: ScheduleSpec = serde_json::from_value(json!({
        "name": "nightly", "tickers": {"symbols": ["AAPL"]}, "timeframes": ["1d"],
        "adjusted": true, "trigger": "after_close", "lookback_days": 5
    }))
    .unwrap();
    let paused = Arc::new(Mutex::new(false));
    let mut store = MockScheduleStore::new();
    let s = spec.clone();
    store
        .expect_list_schedules()
        .returning(move || Ok(vec![stored(&s, false)]));
    let s = spec.clone();
    store.expect_get_schedule().returning(move |name| {
        if name.as_str() == "nightly" {
            Ok(stored(&s, false))
        } else {
            Err(backfill_storage::Error::NotFound {
                what: format!("schedule {name}"),
            })
        }
    });
    let s = spec.clone();
    let p = Arc::clone(&paused);
    store.expect_set_paused().returning(move |_, pause| {
        *p.lock().unwrap() = pause;
        Ok(stored(&s, pause))
    });
    store
        .expect_delete_schedule()
        .withf(|name| name.as_str() == "nightly")
        .times(1)
        .returning(|_| Ok(()));
    let app = app_of(store, ApiConfig::default());

    let list = body_json(send(&app, get("/api/v1/schedules")).await).await;
    assert_eq!(list["schedules"][0]["name"], "nightly");
    let one = body_json(send(&app, get("/api/v1/schedules/NIGHTLY")).await).await;
    assert_eq!(one["last_run"]["due_at"], "2024-01-02T14:30:00Z");
    expect_error(
        &app,
        get("/api/v1/schedules/weekly"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let body = body_json(send(&app, post("/api/v1/schedules/nightly/pause")).await).await;
    assert_eq!(body["paused"], true);
    assert_eq!(
        body["next_due_at"],
        Value::Null,
        "a paused schedule is not due"
    );
    assert!(*paused.lock().unwrap());
    let body = body_json(send(&app, post("/api/v1/schedules/nightly/resume")).await).await;
    assert_eq!(body["paused"], false);
    assert!(!*paused.lock().unwrap());

    let response = send(&app, delete("/api/v1/schedules/nightly")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn universes_are_set_by_hand_de_duplicated_and_validated() {
    let mut store = MockScheduleStore::new();
    store
        .expect_put_universe()
        .withf(|name, symbols, origin| {
            name.as_str() == "tech"
                && symbols
                    .iter()
                    .map(Symbol::as_str)
                    .eq(["AAPL", "MSFT", "NVDA"])
                && origin == "manual"
        })
        .times(1)
        .returning(|name, symbols, origin| {
            Ok(NamedUniverse {
                name: name.clone(),
                symbols: symbols.to_vec(),
                origin: origin.to_owned(),
                updated_at: t0(),
            })
        });
    store
        .expect_list_universes()
        .returning(|| Ok(vec![universe("tech", &["AAPL", "MSFT", "NVDA"], "manual")]));
    store.expect_delete_universe().returning(|name| {
        Err(backfill_storage::Error::Conflict(format!(
            "universe {name} is named by schedule nightly"
        )))
    });
    let app = app_of(store, ApiConfig::default());
    let response = send(
        &app,
        put_json(
            "/api/v1/universes/Tech",
            &json!({"symbols": ["aapl", "MSFT", "AAPL", "nvda"]}),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_json(response).await["symbols"],
        json!(["AAPL", "MSFT", "NVDA"])
    );
    let list = body_json(send(&app, get("/api/v1/universes")).await).await;
    assert_eq!(list["universes"][0]["symbols"], 3);
    assert_eq!(list["universes"][0]["origin"], "manual");

    expect_error(
        &app,
        put_json(
            "/api/v1/universes/tech",
            &json!({"symbols": ["OK", "BAD SYMBOL"]}),
        ),
        StatusCode::BAD_REQUEST,
        "invalid_symbol",
    )
    .await;
    expect_error(
        &app,
        put_json("/api/v1/universes/all", &json!({"symbols": ["AAPL"]})),
        StatusCode::BAD_REQUEST,
        "invalid_schedule",
    )
    .await;
    let error = expect_error(
        &app,
        delete("/api/v1/universes/tech"),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("nightly"));
}

/// Reference tickers that answer what they were built with, and remember the query.
struct Reference {
    answer: fn() -> Result<Vec<Symbol>, ReferenceError>,
    seen: Mutex<Option<RefreshUniverseRequest>>,
}

#[async_trait::async_trait]
impl ReferenceTickers for Reference {
    async fn tickers(&self, query: &RefreshUniverseRequest) -> Result<Vec<Symbol>, ReferenceError> {
        *self.seen.lock().unwrap() = Some(query.clone());
        (self.answer)()
    }
}

fn refresh_app(
    answer: fn() -> Result<Vec<Symbol>, ReferenceError>,
    store: MockScheduleStore,
) -> (Router, Arc<Reference>) {
    let reference = Arc::new(Reference {
        answer,
        seen: Mutex::new(None),
    });
    let state = AppState::new(
        Arc::new(MockJobRepository::new()),
        Arc::new(MockCandleStore::new()),
        ApiConfig::default(),
    )
    .with_schedules(Arc::new(store))
    .with_reference_tickers(Arc::clone(&reference) as Arc<dyn ReferenceTickers>);
    (router(state), reference)
}

#[tokio::test]
async fn a_universe_is_refreshed_from_the_reference_tickers_with_its_query_as_origin() {
    let mut store = MockScheduleStore::new();
    store
        .expect_put_universe()
        .withf(|name, symbols, origin| {
            name.as_str() == "listed-2020"
                && symbols.len() == 2
                && origin == "reference: market=stocks, status=all, type=CS, date=2020-01-02"
        })
        .times(1)
        .returning(|name, symbols, origin| {
            Ok(NamedUniverse {
                name: name.clone(),
                symbols: symbols.to_vec(),
                origin: origin.to_owned(),
                updated_at: t0(),
            })
        });
    let (app, reference) = refresh_app(
        || {
            Ok(vec![
                Symbol::parse("AAPL").unwrap(),
                Symbol::parse("LEHMQ").unwrap(),
            ])
        },
        store,
    );
    let response = send(
        &app,
        post_json(
            "/api/v1/universes/listed-2020/refresh",
            &json!({"status": "all", "date": "2020-01-02", "type": "CS"}),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    assert_eq!(body["symbols"], json!(["AAPL", "LEHMQ"]));
    let seen = reference.seen.lock().unwrap().clone().unwrap();
    assert_eq!(seen.status, TickerStatus::All);
    assert_eq!(seen.kind.as_deref(), Some("CS"));
    assert_eq!(seen.date, Some("2020-01-02".parse().unwrap()));
}

#[tokio::test]
async fn refresh_failures_keep_the_universe_and_say_why() {
    let untouched = || {
        let mut store = MockScheduleStore::new();
        store.expect_put_universe().times(0);
        store
    };
    let (app, _) = refresh_app(|| Ok(Vec::new()), untouched());
    expect_error(
        &app,
        post_json("/api/v1/universes/x/refresh", &json!({})),
        StatusCode::BAD_REQUEST,
        "reference_rejected",
    )
    .await;
    let (app, _) = refresh_app(
        || {
            Err(ReferenceError::Rejected(
                "unknown ticker type \"XX\"".into(),
            ))
        },
        untouched(),
    );
    let error = expect_error(
        &app,
        post_json("/api/v1/universes/x/refresh", &json!({"type": "XX"})),
        StatusCode::BAD_REQUEST,
        "reference_rejected",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("XX"));
    let (app, _) = refresh_app(
        || Err(ReferenceError::Unavailable("polygon answered 503".into())),
        untouched(),
    );
    expect_error(
        &app,
        post_json("/api/v1/universes/x/refresh", &json!({})),
        StatusCode::BAD_GATEWAY,
        "upstream_unavailable",
    )
    .await;
    let (app, _) = refresh_app(|| Ok(Vec::new()), untouched());
    expect_error(
        &app,
        post_json("/api/v1/universes/x/refresh", &json!({"status": "gone"})),
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
    // Without reference data, refresh is refused.
    let app = app_of(untouched(), ApiConfig::default());
    expect_error(
        &app,
        post_json("/api/v1/universes/x/refresh", &json!({})),
        StatusCode::BAD_REQUEST,
        "source_unavailable",
    )
    .await;
}

#[tokio::test]
async fn without_a_schedule_store_the_routes_answer_404() {
    let app = idle_app();
    expect_error(
        &app,
        get("/api/v1/schedules"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

/// A quota that cannot be read.
struct BrokenQuota;

#[async_trait::async_trait]
impl backfill_api::QuotaView for BrokenQuota {
    async fn quota(&self) -> Result<backfill_api::QuotaBody, String> {
        Err("connection refused to 10.0.0.7".into())
    }
}

#[tokio::test]
async fn the_quota_is_answered_as_the_view_reads_it_and_its_failures_hide_the_cause() {
    let state = || {
        AppState::new(
            Arc::new(MockJobRepository::new()),
            Arc::new(MockCandleStore::new()),
            ApiConfig::default(),
        )
    };
    let app = router(state().with_quota_view(Arc::new(FixedQuota)));
    let body = body_json(send(&app, get("/api/v1/quota")).await).await;
    assert_eq!(
        body,
        json!({"scope": "fleet", "limit": 100, "window_seconds": 60.0, "in_use": 37,
               "paused_for_seconds": null})
    );
    let app = router(state().with_quota_view(Arc::new(BrokenQuota)));
    let error = expect_error(
        &app,
        get("/api/v1/quota"),
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
    )
    .await;
    assert!(!error["message"].as_str().unwrap().contains("10.0.0.7"));
    expect_error(
        &idle_app(),
        get("/api/v1/quota"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
