//! Probes and metrics.

use axum::http::{header, StatusCode};
use backfill_api::{router, ApiConfig};
use backfill_storage::{MockCandleStore, MockJobRepository};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn healthz_answers_ok_without_touching_storage() {
    let response = send(&idle_app(), get("/healthz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_answers_ready_when_the_database_answers() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_ping().times(1).returning(|| Ok(()));
    let response = send(&app(jobs, MockCandleStore::new()), get("/readyz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await, json!({"status": "ready"}));
}

#[tokio::test]
async fn readyz_answers_503_when_the_database_does_not() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_ping()
        .times(1)
        .returning(|| Err(backfill_storage::Error::database("pool timed out", true)));
    let app = app(jobs, MockCandleStore::new());
    let error = expect_error(
        &app,
        get("/readyz"),
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
    )
    .await;
    assert!(!error["message"].as_str().unwrap().contains("pool"));
}

#[tokio::test]
async fn metrics_answers_the_renderer_output_as_prometheus_text() {
    let state = state(
        MockJobRepository::new(),
        MockCandleStore::new(),
        ApiConfig::default(),
    )
    .with_metrics_renderer(|| {
        "# TYPE candles_stored_total counter\ncandles_stored_total 42\n".to_owned()
    });
    let response = send(&router(state), get("/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(
        body_text(response).await,
        "# TYPE candles_stored_total counter\ncandles_stored_total 42\n"
    );
}

#[tokio::test]
async fn metrics_without_a_renderer_is_a_404_in_the_error_shape() {
    expect_error(
        &idle_app(),
        get("/metrics"),
        StatusCode::NOT_FOUND,
        "metrics_disabled",
    )
    .await;
}

#[tokio::test]
async fn serve_answers_on_a_listener_until_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(backfill_api::serve(
        listener,
        state(
            MockJobRepository::new(),
            MockCandleStore::new(),
            ApiConfig::default(),
        ),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
