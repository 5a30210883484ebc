//! Unknown routes, wrong methods, and CORS.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use backfill_api::ApiConfig;
use backfill_storage::{MockCandleStore, MockJobRepository};

use crate::helpers::*;

#[tokio::test]
async fn unknown_routes_are_404s_in_the_error_shape() {
    let app = idle_app();
    for uri in [
        "/index.html",
        "/api",
        "/api/v1",
        "/api/v1/nothing",
        "/api/v2/backfill",
        "/api/v1/backfill/status",
        "/healthz/extra",
    ] {
        expect_error(&app, get(uri), StatusCode::NOT_FOUND, "route_not_found").await;
    }
}

#[tokio::test]
async fn unreadable_path_parameters_are_400s() {
    let app = idle_app();
    for request in [
        get("/api/v1/backfill/status/%FF"),
        post("/api/v1/backfill/%C3%28/cancel"),
        get("/api/v1/candles/%FF?timeframe=1m"),
    ] {
        expect_error(&app, request, StatusCode::BAD_REQUEST, "invalid_path").await;
    }
}

#[tokio::test]
async fn wrong_methods_are_405s_with_allow() {
    let app = idle_app();
    for (method, uri, allow) in [
        (Method::GET, "/api/v1/backfill".to_owned(), "POST"),
        (
            Method::DELETE,
            format!("/api/v1/backfill/status/{JOB_ID}"),
            "GET,HEAD",
        ),
        (
            Method::POST,
            "/api/v1/backfill/recent".to_owned(),
            "GET,HEAD",
        ),
        (
            Method::GET,
            format!("/api/v1/backfill/{JOB_ID}/cancel"),
            "POST",
        ),
        (
            Method::PUT,
            format!("/api/v1/backfill/{JOB_ID}/retry"),
            "POST",
        ),
        (Method::POST, "/api/v1/candles/AAPL".to_owned(), "GET,HEAD"),
        (Method::POST, "/healthz".to_owned(), "GET,HEAD"),
        (Method::POST, "/api/openapi.json".to_owned(), "GET,HEAD"),
    ] {
        let request = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let response = send(&app, request).await;
        assert_eq!(
            response
                .headers()
                .get(header::ALLOW)
                .map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {uri}"
        );
        let request = Request::builder()
            .method(method)
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        expect_error(
            &app,
            request,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
}

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/backfill")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type,idempotency-key",
        )
        .body(Body::empty())
        .unwrap()
}

fn from_origin(origin: &str) -> Request<Body> {
    Request::get("/healthz")
        .header(header::ORIGIN, origin)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = idle_app();
    let response = send(&app, from_origin("http://localhost:3000")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    let response = send(&app, preflight("http://localhost:3000")).await;
    assert!(response
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn configured_origins_are_allowed_and_others_are_not() {
    let config = ApiConfig::default()
        .with_cors_origins(["http://localhost:3000"])
        .unwrap();
    let app = app_with(MockJobRepository::new(), MockCandleStore::new(), config);

    let response = send(&app, preflight("http://localhost:3000")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:3000"
    );
    let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    for name in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(name), "{allowed}");
    }

    let response = send(&app, from_origin("http://localhost:3000")).await;
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:3000"
    );
    let exposed = response.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-request-id"), "{exposed}");

    let response = send(&app, from_origin("http://evil.example")).await;
    assert!(response
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
}
