//! The OpenAPI document: served, valid 3.1, complete, and consistent with the router.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use backfill_api::{openapi, router, ApiConfig, ErrorCode};
use backfill_domain::{JobStatus, TaskStatus};
use serde_json::{json, Value};

use crate::helpers::*;

/// Every route and method the router serves (besides the dashboard page and its assets,
/// which are not API).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/backfill"),
    ("post", "/api/v1/backfill/plan"),
    ("get", "/api/v1/backfill/status/{job_id}"),
    ("get", "/api/v1/backfill/recent"),
    ("post", "/api/v1/backfill/{job_id}/cancel"),
    ("post", "/api/v1/backfill/{job_id}/retry"),
    ("get", "/api/v1/backfill/{job_id}/events"),
    ("get", "/api/v1/candles/{symbol}"),
    ("get", "/api/v1/candles/{symbol}/coverage"),
    ("get", "/api/v1/candles/{symbol}/quality"),
    ("get", "/api/v1/info"),
    ("get", "/api/v1/quota"),
    ("get", "/api/v1/schedules"),
    ("post", "/api/v1/schedules"),
    ("get", "/api/v1/schedules/{name}"),
    ("delete", "/api/v1/schedules/{name}"),
    ("post", "/api/v1/schedules/{name}/pause"),
    ("post", "/api/v1/schedules/{name}/resume"),
    ("get", "/api/v1/universes"),
    ("get", "/api/v1/universes/{name}"),
    ("put", "/api/v1/universes/{name}"),
    ("delete", "/api/v1/universes/{name}"),
    ("post", "/api/v1/universes/{name}/refresh"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("get", "/api/v1/corporate-actions/{symbol}"),
    ("post", "/api/v1/corporate-actions/{symbol}/refresh"),
    ("post", "/api/v1/corporate-actions/{symbol}/fix"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn served_document() -> Value {
    let response = send(&idle_app(), get("/api/openapi.json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    body_json(response).await
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                found.push(((*method).to_owned(), path.clone(), op));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_and_matches_the_library_one() {
    let doc = served_document().await;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(doc, serde_json::to_value(openapi()).unwrap());
    assert!(doc["info"]["title"].is_string());
}

#[tokio::test]
async fn the_document_lists_exactly_the_served_routes() {
    let doc = served_document().await;
    let listed: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn every_listed_route_is_served() {
    let (jobs, candles) = answering(|| details(JobStatus::Succeeded, TaskStatus::Succeeded, 1));
    let app = router(
        state(jobs, candles, ApiConfig::default())
            .with_metrics_renderer(|| "up 1\n".to_owned())
            .with_schedules(std::sync::Arc::new(answering_schedules()))
            .with_reference_tickers(std::sync::Arc::new(FixedReference))
            .with_quota_view(std::sync::Arc::new(FixedQuota))
            .with_actions(std::sync::Arc::new(answering_actions()))
            .with_actions_source(std::sync::Arc::new(NoActions)),
    );
    for (method, path) in ROUTES {
        let uri = path
            .replace("{job_id}", JOB_ID)
            .replace("{symbol}", "AAPL")
            .replace("{name}", "tech");
        let mut request = Request::builder()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
            .uri(format!("{uri}?timeframe=1m"));
        let body = match (*method, *path) {
            (_, "/api/v1/backfill" | "/api/v1/backfill/plan") => Some(
                r#"{"symbols":["AAPL"],"timeframe":"1m","from":"2024-01-02","to":"2024-01-03"}"#,
            ),
            ("post", "/api/v1/schedules") => Some(
                r#"{"name":"n","symbols":["AAPL"],"timeframes":["1d"],"trigger":"after_close"}"#,
            ),
            ("put", "/api/v1/universes/{name}") => Some(r#"{"symbols":["AAPL"]}"#),
            (_, "/api/v1/universes/{name}/refresh") => Some("{}"),
            _ => None,
        };
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, Body::from);
        let response = send(&app, request.body(body).unwrap()).await;
        let status = response.status();
        assert!(status.is_success(), "{method} {path}: {status}");
    }
}

fn schema_ref(response: &Value) -> Option<&str> {
    response["content"]["application/json"]["schema"]["$ref"].as_str()
}

#[tokio::test]
async fn every_error_response_uses_the_error_schema() {
    let doc = served_document().await;
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key("500"), "{method} {path}");
        let mut errors = 0;
        for (status, response) in responses {
            let code: u16 = status.parse().unwrap();
            if code >= 400 {
                errors += 1;
                assert_eq!(
                    schema_ref(response),
                    Some("#/components/schemas/ErrorBody"),
                    "{method} {path} {status}"
                );
            } else {
                assert!(response["description"].is_string());
            }
        }
        assert!(errors >= 1);
        if path.starts_with("/api/v1/") {
            assert!(responses.contains_key("401"), "{method} {path}");
            assert_eq!(
                op["security"][0]["bearer"],
                Value::Array(vec![]),
                "{method} {path}"
            );
        } else {
            assert!(op.get("security").is_none(), "{method} {path}");
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn parameters_and_bodies_are_described() {
    let doc = served_document().await;
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    let params = |op: &Value| -> BTreeSet<String> {
        op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        format!(
                            "{}:{}",
                            p["in"].as_str().unwrap(),
                            p["name"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        params(&op("get", "/api/v1/candles/{symbol}")),
        [
            "path:symbol",
            "query:timeframe",
            "query:from",
            "query:to",
            "query:adjusted",
            "query:format",
            "query:limit",
            "query:cursor",
            "query:resample_from",
            "query:hours",
            "query:adjust"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    );
    assert_eq!(
        params(&op("get", "/api/v1/backfill/recent")),
        ["query:limit", "query:status"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    assert_eq!(
        params(&op("post", "/api/v1/backfill")),
        ["header:Idempotency-Key"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    for path in [
        "/api/v1/backfill/status/{job_id}",
        "/api/v1/backfill/{job_id}/events",
    ] {
        assert!(params(&op("get", path)).contains("path:job_id"), "{path}");
    }
    let create = op("post", "/api/v1/backfill");
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateBackfillRequest"
    );
    assert_eq!(
        create["responses"]["202"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/JobStatusBody"
    );
    assert!(create["responses"]["202"]["headers"]["Location"].is_object());
    let candles = op("get", "/api/v1/candles/{symbol}");
    let content = &candles["responses"]["200"]["content"];
    assert!(content["application/json"].is_object() && content["text/csv"].is_object());
    assert_eq!(
        content["application/vnd.apache.parquet"]["schema"]["$ref"],
        "#/components/schemas/ParquetFile"
    );
    let file = &doc["components"]["schemas"]["ParquetFile"];
    assert_eq!(
        (&file["type"], &file["format"]),
        (&json!("string"), &json!("binary")),
        "{file}"
    );
    let events = op("get", "/api/v1/backfill/{job_id}/events");
    assert!(events["responses"]["200"]["content"]["text/event-stream"].is_object());

    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "CreateBackfillRequest",
        "JobStatusBody",
        "RecentJobsBody",
        "CandlesBody",
        "CoverageBody",
        "ErrorBody",
        "ErrorCode",
        "BackfillJob",
        "JobProgress",
        "Task",
        "HealthBody",
        "PlanBody",
        "SourceCost",
    ] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    let required = schemas["CreateBackfillRequest"]["required"]
        .as_array()
        .unwrap();
    for field in ["timeframe", "from", "to"] {
        assert!(required.contains(&Value::from(field)), "{field}");
    }
    // Symbols are left out for the whole market.
    assert!(!required.contains(&Value::from("symbols")));
}

#[tokio::test]
async fn the_error_code_schema_lists_every_code() {
    let doc = served_document().await;
    let listed: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let all: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, all);
}

#[test]
fn docs_api_md_documents_every_error_code_and_route() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API.md");
    let doc = std::fs::read_to_string(path).expect("docs/API.md exists");
    for code in ErrorCode::ALL {
        let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
        assert!(doc.contains(&row), "docs/API.md lacks the row {row:?}");
    }
    for (method, path) in ROUTES {
        let heading = format!("### {} {}", method.to_uppercase(), path);
        assert!(doc.contains(&heading), "docs/API.md lacks {heading:?}");
    }
}
