//! Sources: naming one, `auto`, the whole market, and the errors that name the fix.

use axum::http::StatusCode;
use backfill_api::ApiConfig;
use backfill_domain::{JobStatus, Source, Sources, TaskStatus, Universe};
use backfill_storage::{CreatedJob, MockCandleStore, MockJobRepository};
use serde_json::{json, Value};

use crate::helpers::*;

fn request(extra: Value) -> Value {
    let mut body = json!({
        "timeframe": "1d",
        "from": "2024-01-01",
        "to": "2024-01-31",
        "adjusted": false,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn with_files() -> ApiConfig {
    ApiConfig::default().with_sources(Sources { flat_files: true })
}

/// A router whose repository must not be asked to create anything.
fn refusing(config: ApiConfig) -> axum::Router {
    let mut jobs = MockJobRepository::new();
    jobs.expect_create_job().times(0);
    app_with(jobs, MockCandleStore::new(), config)
}

async fn error_of(config: ApiConfig, body: Value) -> (StatusCode, Value) {
    let app = refusing(config);
    let response = send(&app, post_json("/api/v1/backfill", &body)).await;
    let status = response.status();
    (status, body_json(response).await["error"].clone())
}

#[tokio::test]
async fn an_unknown_source_is_a_400_naming_the_sources() {
    let (status, error) = error_of(
        with_files(),
        request(json!({"symbols": ["AAPL"], "source": "ftp"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "invalid_source");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("ftp") && message.contains("flatfiles"),
        "{message}"
    );
}

#[tokio::test]
async fn a_source_that_cannot_serve_the_job_says_what_to_change() {
    let cases = [
        (
            json!({"symbols": ["AAPL"], "source": "flatfiles", "timeframe": "5m"}),
            "1m or 1d",
        ),
        (
            json!({"symbols": ["AAPL"], "source": "flatfiles", "adjusted": true}),
            "\"adjusted\": false",
        ),
        (
            json!({"symbols": ["AAPL"], "source": "grouped", "timeframe": "1h"}),
            "1d",
        ),
        (
            json!({"symbols": ["X:BTCUSD"], "source": "grouped"}),
            "X:BTCUSD",
        ),
        (json!({"universe": "all", "source": "rest"}), "whole market"),
    ];
    for (extra, hint) in cases {
        let (status, error) = error_of(with_files(), request(extra.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}");
        assert_eq!(error["code"], "invalid_source", "{extra}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(hint), "{extra}: {message}");
    }
}

#[tokio::test]
async fn flat_files_without_s3_credentials_are_refused_naming_them() {
    for body in [
        request(json!({"symbols": ["AAPL"], "source": "flatfiles", "timeframe": "1m"})),
        request(json!({"universe": "all", "timeframe": "1m"})),
    ] {
        let (status, error) = error_of(ApiConfig::default(), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["code"], "source_unavailable");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("POLYGON_S3_ACCESS_KEY_ID"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn the_whole_market_takes_no_symbols() {
    let (status, error) = error_of(
        with_files(),
        request(json!({"universe": "all", "symbols": ["AAPL"]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "invalid_job");
}

#[tokio::test]
async fn auto_picks_grouped_for_many_symbols_of_day_bars_and_says_why() {
    let symbols: Vec<String> = (0..300).map(|i| format!("S{i}")).collect();
    let mut jobs = MockJobRepository::new();
    jobs.expect_create_job()
        .withf(|spec, _| {
            spec.source() == Source::Grouped
                && spec.universe() == Universe::Symbols
                && spec.symbols().len() == 300
                && spec.units().len() == 23
                && spec
                    .source_reason()
                    .is_some_and(|r| r.contains("23") && r.contains("300"))
        })
        .times(1)
        .returning(|_, _| {
            Ok(CreatedJob {
                job: job(JobStatus::Queued),
                created: true,
            })
        });
    jobs.expect_get_job()
        .returning(|_| Ok(details(JobStatus::Queued, TaskStatus::Queued, 0)));
    let app = app_with(jobs, MockCandleStore::new(), ApiConfig::default());
    let body = request(json!({"symbols": symbols, "source": "auto", "adjusted": true}));
    let response = send(&app, post_json("/api/v1/backfill", &body)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn the_whole_market_defaults_to_auto_and_gets_flat_files_for_raw_minutes() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_create_job()
        .withf(|spec, _| {
            spec.source() == Source::FlatFiles
                && spec.universe() == Universe::All
                && spec.symbols().is_empty()
        })
        .times(1)
        .returning(|_, _| {
            Ok(CreatedJob {
                job: job(JobStatus::Queued),
                created: true,
            })
        });
    jobs.expect_get_job()
        .returning(|_| Ok(details(JobStatus::Queued, TaskStatus::Queued, 0)));
    let app = app_with(jobs, MockCandleStore::new(), with_files());
    let body = request(json!({"universe": "all", "timeframe": "1m"}));
    let response = send(&app, post_json("/api/v1/backfill", &body)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn plan_answers_the_job_and_every_sources_cost_without_creating_it() {
    let app = refusing(with_files());
    let body = request(json!({"universe": "all", "timeframe": "1d", "source": "auto"}));
    let response = send(&app, post_json("/api/v1/backfill/plan", &body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let plan = body_json(response).await;
    assert_eq!(plan["tasks"], 23);
    assert_eq!(plan["spec"]["universe"], "all");
    let costs = plan["costs"].as_array().unwrap();
    let of = |name: &str| costs.iter().find(|c| c["source"] == name).unwrap().clone();
    assert!(of("rest")["unavailable"]
        .as_str()
        .unwrap()
        .contains("whole market"));
    assert_eq!(of("grouped")["calls"], 23);
    assert_eq!(of("flatfiles")["calls"], 23);
    assert!(of("flatfiles")["estimated_bytes"].as_u64().unwrap() > 0);
    // Raw day bars: flat files and grouped both take 23 calls; the spec says which and why.
    let source = plan["spec"]["source"].as_str().unwrap();
    assert!(source == "grouped" || source == "flatfiles", "{source}");
    assert!(plan["spec"]["source_reason"]
        .as_str()
        .unwrap()
        .starts_with("auto: "));
    // A request that cannot be served is the same error as when submitted.
    let response = send(
        &app,
        post_json(
            "/api/v1/backfill/plan",
            &request(json!({"source": "ftp", "symbols": ["A"]})),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
