//! Submit, status, recent, cancel and retry.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use backfill_domain::{JobStatus, Symbol, TaskStatus};
use backfill_storage::{CreatedJob, JobSummary, MockCandleStore, MockJobRepository};
use serde_json::{json, Value};

use crate::helpers::*;

fn valid_request() -> Value {
    json!({
        "symbols": ["aapl", "MSFT", "AAPL"],
        "timeframe": "1m",
        "from": "2024-01-02",
        "to": "2024-01-05",
        "adjusted": true,
        "mode": "missing"
    })
}

fn expect_create(jobs: &mut MockJobRepository, key: Option<&'static str>, created: bool) {
    jobs.expect_create_job()
        .withf(move |spec, given| {
            let names: Vec<&str> = spec.symbols().iter().map(Symbol::as_str).collect();
            names == ["AAPL", "MSFT"]
                && spec.timeframe().to_string() == "1m"
                && spec.adjusted()
                && *given == key
        })
        .times(1)
        .returning(move |_, _| {
            Ok(CreatedJob {
                job: job(JobStatus::Queued),
                created,
            })
        });
}

#[tokio::test]
async fn submit_answers_202_with_location_and_the_status_body() {
    let mut jobs = MockJobRepository::new();
    expect_create(&mut jobs, None, true);
    jobs.expect_get_job()
        .withf(|id| *id == job_id())
        .times(1)
        .returning(|_| Ok(details(JobStatus::Queued, TaskStatus::Queued, 0)));
    let app = app(jobs, MockCandleStore::new());

    let response = send(&app, post_json("/api/v1/backfill", &valid_request())).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("/api/v1/backfill/status/{JOB_ID}")
    );
    assert!(response.headers().get("idempotent-replayed").is_none());
    let body = body_json(response).await;
    assert_eq!(body["job"]["id"], JOB_ID);
    assert_eq!(body["job"]["status"], "queued");
    assert_eq!(body["job"]["symbols"], json!(["AAPL", "MSFT"]));
    assert_eq!(body["progress"]["symbols_total"], 2);
    assert_eq!(body["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(body["tasks"][1]["symbol"], "MSFT");
}

#[tokio::test]
async fn submit_accepts_the_long_timeframe_and_defaults() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_create_job()
        .withf(|spec, _| {
            spec.timeframe().to_string() == "5m"
                && spec.adjusted()
                && spec.mode() == backfill_domain::BackfillMode::Missing
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
    let app = app(jobs, MockCandleStore::new());
    let request = json!({
        "symbols": ["AAPL"], "timeframe": {"multiplier": 5, "timespan": "minute"},
        "from": 1_704_205_800_000i64, "to": "2024-01-05T21:00:00Z"
    });
    let response = send(&app, post_json("/api/v1/backfill", &request)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn submit_with_an_idempotency_key_passes_it_and_marks_replays() {
    let mut jobs = MockJobRepository::new();
    expect_create(&mut jobs, Some("order-42"), false);
    jobs.expect_get_job()
        .returning(|_| Ok(details(JobStatus::Running, TaskStatus::Running, 10)));
    let app = app(jobs, MockCandleStore::new());
    let mut request = post_json("/api/v1/backfill", &valid_request());
    request
        .headers_mut()
        .insert("idempotency-key", "order-42".parse().unwrap());
    let response = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let body = body_json(response).await;
    assert_eq!(body["job"]["id"], JOB_ID);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_a_409() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_create_job().times(1).returning(|_, _| {
        Err(backfill_storage::Error::Conflict(
            "idempotency key order-42 was used for a different job".into(),
        ))
    });
    let app = app(jobs, MockCandleStore::new());
    let mut request = post_json("/api/v1/backfill", &valid_request());
    request
        .headers_mut()
        .insert("idempotency-key", "order-42".parse().unwrap());
    expect_error(
        &app,
        request,
        StatusCode::CONFLICT,
        "idempotency_key_conflict",
    )
    .await;
}

#[tokio::test]
async fn bad_idempotency_keys_are_rejected() {
    let app = idle_app();
    let long = "k".repeat(256);
    for key in ["", long.as_str(), "a\tb"] {
        let mut request = post_json("/api/v1/backfill", &valid_request());
        request
            .headers_mut()
            .insert("idempotency-key", key.parse().unwrap());
        expect_error(
            &app,
            request,
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
        )
        .await;
    }
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

#[tokio::test]
async fn bad_submissions_answer_4xx_in_the_error_shape_and_create_nothing() {
    // The mock has no expectations: any call to storage would fail the test.
    let app = idle_app();
    let too_many: Vec<String> = (0..1001).map(|i| format!("S{i}")).collect();
    let cases: Vec<(Value, &str)> = vec![
        (
            with(valid_request(), "symbols", json!(["AAPL", "A B"])),
            "invalid_symbol",
        ),
        (
            with(
                valid_request(),
                "symbols",
                json!(["<img src=x onerror=alert(1)>"]),
            ),
            "invalid_symbol",
        ),
        (with(valid_request(), "symbols", json!([])), "invalid_job"),
        (
            with(valid_request(), "symbols", json!(too_many)),
            "invalid_job",
        ),
        (
            with(valid_request(), "timeframe", json!("7x")),
            "invalid_timeframe",
        ),
        (
            with(
                valid_request(),
                "timeframe",
                json!({"multiplier": 0, "timespan": "minute"}),
            ),
            "invalid_timeframe",
        ),
        (
            with(
                valid_request(),
                "timeframe",
                json!({"multiplier": 1, "timespan": "fortnight"}),
            ),
            "invalid_timeframe",
        ),
        (
            with(valid_request(), "from", json!("2024-13-01")),
            "invalid_range",
        ),
        (
            with(valid_request(), "from", json!("yesterday")),
            "invalid_range",
        ),
        (
            with(valid_request(), "from", json!("2024-02-01")),
            "invalid_range",
        ),
        (
            with(valid_request(), "to", json!("2999-01-01")),
            "invalid_range",
        ),
        (
            with(valid_request(), "unexpected", json!(1)),
            "invalid_body",
        ),
        (
            with(valid_request(), "symbols", json!("AAPL")),
            "invalid_body",
        ),
        (
            with(valid_request(), "mode", json!("sometimes")),
            "invalid_body",
        ),
        (
            with(valid_request(), "adjusted", json!("yes")),
            "invalid_body",
        ),
        (json!({"symbols": ["AAPL"]}), "invalid_body"),
        (json!([1, 2, 3]), "invalid_body"),
    ];
    for (body, code) in cases {
        let error = expect_error(
            &app,
            post_json("/api/v1/backfill", &body),
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        if code == "invalid_symbol" {
            assert!(error["details"]["symbols"].is_array(), "{error}");
        }
    }
}

#[tokio::test]
async fn the_reason_for_a_bad_field_is_named() {
    let app = idle_app();
    let error = expect_error(
        &app,
        post_json(
            "/api/v1/backfill",
            &with(valid_request(), "unexpected", json!(1)),
        ),
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("unexpected"),
        "{error}"
    );
    let error = expect_error(
        &app,
        post_json(
            "/api/v1/backfill",
            &with(valid_request(), "symbols", json!(["A B"])),
        ),
        StatusCode::BAD_REQUEST,
        "invalid_symbol",
    )
    .await;
    assert_eq!(error["details"]["symbols"][0]["input"], "A B");
    assert_eq!(
        error["details"]["symbols"][0]["reason"],
        "must not contain whitespace"
    );
}

#[tokio::test]
async fn malformed_json_wrong_content_types_and_huge_bodies_are_rejected() {
    let app = idle_app();
    let raw = |content_type: Option<&str>, body: Body| {
        let mut builder = Request::post("/api/v1/backfill");
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        builder.body(body).unwrap()
    };
    for body in [
        "{\"symbols\": [",
        "",
        "not json",
        "{\"symbols\": [\"AAPL\"],}",
    ] {
        expect_error(
            &app,
            raw(Some("application/json"), Body::from(body)),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        )
        .await;
    }
    let valid = valid_request().to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        expect_error(
            &app,
            raw(content_type, Body::from(valid.clone())),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    // Just over 1 MiB of otherwise valid JSON.
    let padding = " ".repeat(1024 * 1024);
    let huge = format!("{}{padding}", &valid[..valid.len() - 1]) + "}";
    assert!(huge.len() > 1024 * 1024);
    expect_error(
        &app,
        raw(Some("application/json"), Body::from(huge)),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_accepted() {
    let mut jobs = MockJobRepository::new();
    expect_create(&mut jobs, None, true);
    jobs.expect_get_job()
        .returning(|_| Ok(details(JobStatus::Queued, TaskStatus::Queued, 0)));
    let app = app(jobs, MockCandleStore::new());
    let valid = valid_request().to_string();
    let padding = " ".repeat(1024 * 1024 - valid.len());
    let body = format!("{}{padding}", &valid[..valid.len() - 1]) + "}";
    assert_eq!(body.len(), 1024 * 1024);
    let request = Request::post("/api/v1/backfill")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&app, request).await.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn status_answers_the_job_its_progress_and_tasks() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_get_job()
        .withf(|id| *id == job_id())
        .times(1)
        .returning(|_| Ok(details(JobStatus::Running, TaskStatus::Running, 120)));
    let app = app(jobs, MockCandleStore::new());
    let response = send(&app, get(&format!("/api/v1/backfill/status/{JOB_ID}"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    assert_eq!(body["job"]["status"], "running");
    assert_eq!(body["job"]["timeframe"], "1m");
    assert_eq!(body["progress"]["candles_stored"], 240);
    assert_eq!(body["progress"]["symbols_running"], 2);
    let task = &body["tasks"][0];
    for field in [
        "status",
        "candles_stored",
        "attempts",
        "last_error",
        "checkpoint",
    ] {
        assert!(task.get(field).is_some(), "{field} missing: {task}");
    }
    assert_eq!(task["status"], "running");
}

#[tokio::test]
async fn status_of_an_unknown_job_is_a_404() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_get_job().times(1).returning(|id| {
        Err(backfill_storage::Error::NotFound {
            what: format!("job {id}"),
        })
    });
    let app = app(jobs, MockCandleStore::new());
    let error = expect_error(
        &app,
        get(&format!("/api/v1/backfill/status/{JOB_ID}")),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains(JOB_ID));
}

#[tokio::test]
async fn a_bad_job_id_is_a_400_on_every_job_route() {
    let app = idle_app();
    for request in [
        get("/api/v1/backfill/status/not-a-uuid"),
        get("/api/v1/backfill/status/0190a4c2-7d3e-7b41-9c55"),
        post("/api/v1/backfill/12345/cancel"),
        post("/api/v1/backfill/zzz/retry"),
        get("/api/v1/backfill/%E2%98%83/events"),
    ] {
        expect_error(&app, request, StatusCode::BAD_REQUEST, "invalid_job_id").await;
    }
}

#[tokio::test]
async fn recent_defaults_to_twenty_and_filters_by_status() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_list_jobs()
        .withf(|limit, status| *limit == 20 && status.is_none())
        .times(1)
        .returning(|_, _| {
            let d = details(JobStatus::Running, TaskStatus::Running, 5);
            Ok(vec![JobSummary {
                job: d.job,
                progress: d.progress,
            }])
        });
    jobs.expect_list_jobs()
        .withf(|limit, status| *limit == 100 && *status == Some(JobStatus::CompletedWithErrors))
        .times(1)
        .returning(|_, _| Ok(vec![]));
    let app = app(jobs, MockCandleStore::new());

    let response = send(&app, get("/api/v1/backfill/recent")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    assert_eq!(body["jobs"][0]["job"]["id"], JOB_ID);
    assert_eq!(body["jobs"][0]["progress"]["candles_stored"], 10);

    let response = send(
        &app,
        get("/api/v1/backfill/recent?limit=100&status=completed_with_errors"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await, json!({"jobs": []}));
}

#[tokio::test]
async fn recent_rejects_bad_limits_and_statuses() {
    let app = idle_app();
    for limit in ["0", "101", "100000"] {
        expect_error(
            &app,
            get(&format!("/api/v1/backfill/recent?limit={limit}")),
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        )
        .await;
    }
    for query in ["limit=abc", "limit=-1", "status=done", "status="] {
        expect_error(
            &app,
            get(&format!("/api/v1/backfill/recent?{query}")),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
    }
}

#[tokio::test]
async fn cancel_answers_the_cancelled_job() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_cancel_job()
        .withf(|id| *id == job_id())
        .times(1)
        .returning(|_| Ok(job(JobStatus::Cancelled)));
    jobs.expect_get_job()
        .returning(|_| Ok(details(JobStatus::Cancelled, TaskStatus::Cancelled, 3)));
    let app = app(jobs, MockCandleStore::new());
    let response = send(&app, post(&format!("/api/v1/backfill/{JOB_ID}/cancel"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    assert_eq!(body["job"]["status"], "cancelled");
    assert_eq!(body["tasks"][0]["status"], "cancelled");
}

#[tokio::test]
async fn retry_answers_the_queued_job() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_retry_job()
        .withf(|id| *id == job_id())
        .times(1)
        .returning(|_| Ok(job(JobStatus::Queued)));
    jobs.expect_get_job()
        .returning(|_| Ok(details(JobStatus::Queued, TaskStatus::Queued, 3)));
    let app = app(jobs, MockCandleStore::new());
    let response = send(&app, post(&format!("/api/v1/backfill/{JOB_ID}/retry"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["job"]["status"], "queued");
}

#[tokio::test]
async fn cancel_and_retry_answer_409_when_the_state_machine_forbids_them() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_cancel_job().times(1).returning(|_| {
        Err(backfill_storage::Error::Conflict(
            "illegal job transition from succeeded to cancelled".into(),
        ))
    });
    jobs.expect_retry_job().times(1).returning(|_| {
        Err(backfill_storage::Error::Conflict(
            "illegal job transition from running to queued".into(),
        ))
    });
    let app = app(jobs, MockCandleStore::new());
    let error = expect_error(
        &app,
        post(&format!("/api/v1/backfill/{JOB_ID}/cancel")),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("succeeded"));
    expect_error(
        &app,
        post(&format!("/api/v1/backfill/{JOB_ID}/retry")),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn cancel_and_retry_of_unknown_jobs_are_404s() {
    let mut jobs = MockJobRepository::new();
    let not_found = |_| Err(backfill_storage::Error::NotFound { what: "job".into() });
    jobs.expect_cancel_job().times(1).returning(not_found);
    jobs.expect_retry_job().times(1).returning(not_found);
    let app = app(jobs, MockCandleStore::new());
    for action in ["cancel", "retry"] {
        expect_error(
            &app,
            post(&format!("/api/v1/backfill/{JOB_ID}/{action}")),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn storage_failures_answer_generic_5xx_messages() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_get_job()
        .times(1)
        .returning(|_| Err(backfill_storage::Error::database("pool timed out", true)));
    jobs.expect_list_jobs().times(1).returning(|_, _| {
        Err(backfill_storage::Error::InvalidData(
            "status column holds 'bogus'".into(),
        ))
    });
    let app = app(jobs, MockCandleStore::new());
    let error = expect_error(
        &app,
        get(&format!("/api/v1/backfill/status/{JOB_ID}")),
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
    )
    .await;
    assert!(!error["message"].as_str().unwrap().contains("pool"));
    let error = expect_error(
        &app,
        get("/api/v1/backfill/recent"),
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
    )
    .await;
    assert_eq!(error["message"], "internal server error");
    assert!(error.get("details").is_none());
}

#[tokio::test]
async fn clients_polling_one_job_share_a_read_and_see_a_cancel_at_once() {
    let mut jobs = MockJobRepository::new();
    let mut seq = mockall::Sequence::new();
    // Twenty polls within the cache interval read storage once.
    jobs.expect_get_job()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(details(JobStatus::Running, TaskStatus::Running, 10)));
    jobs.expect_cancel_job()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(job(JobStatus::Cancelled)));
    // The cancel answer and the polls after it read the new state.
    jobs.expect_get_job()
        .times(2)
        .in_sequence(&mut seq)
        .returning(|_| Ok(details(JobStatus::Cancelled, TaskStatus::Cancelled, 10)));
    let app = app(jobs, MockCandleStore::new());
    let uri = format!("/api/v1/backfill/status/{JOB_ID}");
    let polls = futures::future::join_all((0..20).map(|_| send(&app, get(&uri)))).await;
    for response in polls {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_json(response).await["job"]["status"], "running");
    }
    let response = send(&app, post(&format!("/api/v1/backfill/{JOB_ID}/cancel"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let after = body_json(send(&app, get(&uri)).await).await;
    assert_eq!(after["job"]["status"], "cancelled");
}
