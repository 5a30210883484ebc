//! Request ids on the response, and HTTP metrics.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use backfill_api::{HTTP_REQUESTS_TOTAL, HTTP_REQUEST_DURATION_SECONDS};
use backfill_domain::{JobStatus, TaskStatus};
use backfill_storage::{MockCandleStore, MockJobRepository};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_request_id_is_generated_when_absent() {
    let app = idle_app();
    for uri in ["/healthz", "/no/such/route"] {
        let response = send(&app, get(uri)).await;
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert!(Uuid::parse_str(id).is_ok(), "{uri}: {id}");
    }
    let first = send(&app, get("/healthz")).await.headers()["x-request-id"].clone();
    let second = send(&app, get("/healthz")).await.headers()["x-request-id"].clone();
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_kept() {
    let app = idle_app();
    for uri in ["/healthz", "/api/v1/backfill/status/bad-id", "/nope"] {
        let request = Request::get(uri)
            .header("x-request-id", "client-chosen-42")
            .body(Body::empty())
            .unwrap();
        let response = send(&app, request).await;
        assert_eq!(
            response.headers()["x-request-id"],
            "client-chosen-42",
            "{uri}"
        );
    }
}

type Samples = Arc<Mutex<Vec<(String, Vec<(String, String)>, f64)>>>;

/// A metrics recorder that keeps every increment and sample.
#[derive(Default)]
struct Capture(Samples);

struct Handle(Key, Samples);

impl Handle {
    fn push(&self, value: f64) {
        let labels = self
            .0
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        self.1
            .lock()
            .unwrap()
            .push((self.0.name().to_owned(), labels, value));
    }
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.push(value as f64);
    }

    fn absolute(&self, value: u64) {
        self.push(value as f64);
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.push(value);
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle(key.clone(), self.0.clone())))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Handle(key.clone(), self.0.clone())))
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn requests_are_counted_by_route_and_status_and_timed() {
    let capture = Capture::default();
    let samples = capture.0.clone();
    let _guard = metrics::set_default_local_recorder(&capture);

    let mut jobs = MockJobRepository::new();
    jobs.expect_get_job()
        .returning(|_| Ok(details(JobStatus::Running, TaskStatus::Running, 1)));
    let app = app(jobs, MockCandleStore::new());
    send(&app, get(&format!("/api/v1/backfill/status/{JOB_ID}"))).await;
    send(&app, get("/api/v1/backfill/status/nope")).await;
    send(&app, get(&format!("/random/{JOB_ID}"))).await;

    let samples = samples.lock().unwrap();
    let counted: Vec<_> = samples
        .iter()
        .filter(|(name, _, _)| name == HTTP_REQUESTS_TOTAL)
        .map(|(_, labels, value)| (labels.clone(), *value))
        .collect();
    let route = "/api/v1/backfill/status/{job_id}";
    assert_eq!(
        counted,
        [
            (
                labels(&[("method", "GET"), ("route", route), ("status", "200")]),
                1.0
            ),
            (
                labels(&[("method", "GET"), ("route", route), ("status", "400")]),
                1.0
            ),
            (
                labels(&[("method", "GET"), ("route", "unmatched"), ("status", "404")]),
                1.0
            ),
        ]
    );
    let timed: Vec<_> = samples
        .iter()
        .filter(|(name, _, _)| name == HTTP_REQUEST_DURATION_SECONDS)
        .collect();
    assert_eq!(timed.len(), 3);
    assert!(timed.iter().all(|(_, _, secs)| *secs >= 0.0));
    assert_eq!(timed[0].1, labels(&[("method", "GET"), ("route", route)]));
}
