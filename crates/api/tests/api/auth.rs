//! The bearer token, and secrets never leaving the process.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use backfill_api::{router, ApiConfig};
use backfill_domain::{JobStatus, TaskStatus};
use backfill_storage::{MockCandleStore, MockJobRepository};
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::*;

const TOKEN: &str = "s3cret-api-token-7f1c";
const POLYGON_KEY: &str = "pk_live_9d8c7b6a5f4e3d2c1b0a";

fn config() -> ApiConfig {
    ApiConfig::default()
        .with_api_token(Some(SecretString::from(TOKEN)))
        .unwrap()
        .with_redacted_secret(SecretString::from(POLYGON_KEY))
}

/// Every `/api/v1` route with a request that succeeds against the mocks below.
fn v1_requests() -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/api/v1/backfill".to_owned()),
        (Method::GET, format!("/api/v1/backfill/status/{JOB_ID}")),
        (Method::GET, "/api/v1/backfill/recent".to_owned()),
        (Method::POST, format!("/api/v1/backfill/{JOB_ID}/cancel")),
        (Method::POST, format!("/api/v1/backfill/{JOB_ID}/retry")),
        (Method::GET, format!("/api/v1/backfill/{JOB_ID}/events")),
        (Method::GET, "/api/v1/candles/AAPL?timeframe=1m".to_owned()),
        (
            Method::GET,
            "/api/v1/candles/AAPL/coverage?timeframe=1m".to_owned(),
        ),
        (
            Method::GET,
            "/api/v1/candles/AAPL/quality?timeframe=1m".to_owned(),
        ),
        (Method::GET, "/api/v1/info".to_owned()),
        (Method::GET, "/api/v1/quota".to_owned()),
        (Method::GET, "/api/v1/schedules".to_owned()),
        (Method::POST, "/api/v1/schedules".to_owned()),
        (Method::GET, "/api/v1/schedules/tech".to_owned()),
        (Method::POST, "/api/v1/schedules/tech/pause".to_owned()),
        (Method::POST, "/api/v1/schedules/tech/resume".to_owned()),
        (Method::DELETE, "/api/v1/schedules/tech".to_owned()),
        (Method::GET, "/api/v1/universes".to_owned()),
        (Method::PUT, "/api/v1/universes/tech".to_owned()),
        (Method::GET, "/api/v1/universes/tech".to_owned()),
        (Method::POST, "/api/v1/universes/tech/refresh".to_owned()),
        (Method::DELETE, "/api/v1/universes/tech".to_owned()),
    ]
}

fn request(method: Method, uri: &str, authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method.clone()).uri(uri);
    if let Some(value) = authorization {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    let body = match (method.as_str(), uri) {
        ("POST", "/api/v1/backfill") => Some(
            json!({"symbols": ["AAPL"], "timeframe": "1m", "from": "2024-01-02", "to": "2024-01-05"}),
        ),
        ("POST", "/api/v1/schedules") => Some(
            json!({"name": "tech", "symbols": ["AAPL"], "timeframes": ["1d"], "trigger": "after_close"}),
        ),
        ("PUT", "/api/v1/universes/tech") => Some(json!({"symbols": ["AAPL"]})),
        ("POST", "/api/v1/universes/tech/refresh") => Some(json!({})),
        _ => None,
    };
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// Repositories that answer every route, with the Polygon key hidden in error texts.
fn leaky_app() -> Router {
    let leaky = || {
        let mut d = details(JobStatus::Failed, TaskStatus::Failed, 3);
        d.job.error = Some(format!("polygon said no to apiKey={POLYGON_KEY}"));
        for task in &mut d.tasks {
            task.last_error = Some(format!("GET /v2/aggs?apiKey={POLYGON_KEY}: 403"));
        }
        d
    };
    let (jobs, candles) = answering(leaky);
    router(
        state(jobs, candles, config())
            .with_metrics_renderer(|| "up 1\n".to_owned())
            .with_schedules(std::sync::Arc::new(answering_schedules()))
            .with_reference_tickers(std::sync::Arc::new(FixedReference))
            .with_quota_view(std::sync::Arc::new(FixedQuota)),
    )
}

#[tokio::test]
async fn every_v1_route_requires_the_token() {
    let app = leaky_app();
    for (method, uri) in v1_requests() {
        for authorization in [
            None,
            Some("Bearer wrong-token"),
            Some(&*format!("Basic {TOKEN}")),
            Some(&*format!("Bearer {TOKEN}x")),
            Some("Bearer"),
        ] {
            let response = send(&app, request(method.clone(), &uri, authorization)).await;
            assert_eq!(
                response.headers()[header::WWW_AUTHENTICATE],
                "Bearer realm=\"backfill\"",
                "{method} {uri}"
            );
            expect_error(
                &app,
                request(method.clone(), &uri, authorization),
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            )
            .await;
        }
    }
}

#[tokio::test]
async fn the_right_token_opens_every_v1_route() {
    let app = leaky_app();
    for (method, uri) in v1_requests() {
        for authorization in [format!("Bearer {TOKEN}"), format!("bearer {TOKEN}")] {
            let response = send(&app, request(method.clone(), &uri, Some(&authorization))).await;
            assert!(
                response.status().is_success(),
                "{method} {uri}: {}",
                response.status()
            );
        }
    }
}

#[tokio::test]
async fn probes_metrics_and_the_document_stay_open() {
    let app = leaky_app();
    for uri in ["/healthz", "/readyz", "/metrics", "/api/openapi.json"] {
        let response = send(&app, get(uri)).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn cors_preflights_are_answered_without_the_token() {
    let config = config()
        .with_cors_origins(["https://dash.example"])
        .unwrap();
    let app = app_with(MockJobRepository::new(), MockCandleStore::new(), config);
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/backfill/recent")
        .header(header::ORIGIN, "https://dash.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .body(Body::empty())
        .unwrap();
    let response = send(&app, preflight).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://dash.example"
    );
}

#[tokio::test]
async fn no_response_or_debug_output_carries_the_token_or_the_polygon_key() {
    let app = leaky_app();
    let mut requests = Vec::new();
    for (method, uri) in v1_requests() {
        for authorization in [
            None,
            Some(format!("Bearer {TOKEN}")),
            Some("Bearer nope".to_owned()),
        ] {
            requests.push(request(method.clone(), &uri, authorization.as_deref()));
        }
    }
    for uri in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
        "/nope",
    ] {
        requests.push(get(uri));
    }
    let mut redactions = 0;
    for request in requests {
        let what = format!("{} {}", request.method(), request.uri());
        let response = send(&app, request).await;
        let headers = format!("{:?}", response.headers());
        let body = body_text(response).await;
        for secret in [TOKEN, POLYGON_KEY] {
            assert!(!headers.contains(secret), "{what}: {headers}");
            assert!(!body.contains(secret), "{what}: {body}");
        }
        redactions += body.matches("apiKey=[redacted]").count();
    }
    assert!(redactions > 0, "the error texts were served, redacted");

    let state = state(MockJobRepository::new(), MockCandleStore::new(), config());
    for debug in [
        format!("{state:?}"),
        format!("{:?}", config()),
        format!("{state:#?}"),
    ] {
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(!debug.contains(POLYGON_KEY), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}
