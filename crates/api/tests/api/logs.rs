//! What the API logs: every span and event of a request carries its request id, and a server
//! error logs its cause chain.

use std::collections::BTreeMap;
use std::sync::{Mutex, Once};
use std::thread::{self, ThreadId};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use backfill_domain::{JobStatus, TaskStatus};
use backfill_storage::{MockCandleStore, MockJobRepository};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::helpers::*;

type Fields = BTreeMap<String, String>;

/// A span or event seen by the capturing subscriber.
#[derive(Debug, Clone)]
struct Record {
    thread: ThreadId,
    /// `None` for a span.
    level: Option<Level>,
    name: String,
    fields: Fields,
    /// The fields of the enclosing spans (innermost first wins).
    scope: Fields,
}

static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());

/// Records every span and event of the process, tagged with its thread.
struct Capture;

/// The fields a span was created with, kept in its extensions.
struct SpanFields(Fields);

fn fields_of(record: impl FnOnce(&mut dyn Visit)) -> Fields {
    let mut fields = Fields::new();
    record(&mut FieldVisitor(&mut fields));
    fields
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let fields = fields_of(|v| attrs.record(v));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.clone()));
        }
        RECORDS.lock().unwrap().push(Record {
            thread: thread::current().id(),
            level: None,
            name: attrs.metadata().name().to_owned(),
            fields,
            scope: Fields::new(),
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut scope = Fields::new();
        for span in ctx.event_scope(event).into_iter().flatten() {
            if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                for (k, v) in fields {
                    scope.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        RECORDS.lock().unwrap().push(Record {
            thread: thread::current().id(),
            level: Some(*event.metadata().level()),
            name: event.metadata().name().to_owned(),
            fields: fields_of(|v| event.record(v)),
            scope,
        });
    }
}

struct FieldVisitor<'a>(&'a mut Fields);

impl Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Installs the capturing subscriber as the process's global default (once).
///
/// A global subscriber rather than a thread-local one: tracing caches per call site whether
/// anyone listens, and with thread-local subscribers a call site first reached on another
/// test's thread can be cached as silent for everyone. The tests' runtimes are single-threaded,
/// so a test's records are those of its own thread.
fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture))
            .expect("no other global subscriber in this test binary");
        tracing::callsite::rebuild_interest_cache();
    });
}

/// The records of the calling thread so far.
fn my_records() -> Vec<Record> {
    let me = thread::current().id();
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.thread == me)
        .cloned()
        .collect()
}

#[tokio::test]
async fn every_request_has_a_span_with_its_request_id_and_route() {
    capture();
    let mut jobs = MockJobRepository::new();
    jobs.expect_get_job()
        .returning(|_| Ok(details(JobStatus::Running, TaskStatus::Running, 1)));
    let app = app(jobs, MockCandleStore::new());
    let request = Request::get(format!("/api/v1/backfill/status/{JOB_ID}"))
        .header("x-request-id", "trace-me-7")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, request).await.status(), StatusCode::OK);
    let generated = send(&app, get("/healthz")).await.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let records = my_records();
    let spans: Vec<_> = records
        .iter()
        .filter(|r| r.level.is_none() && r.name == "request")
        .collect();
    assert_eq!(spans.len(), 2, "{records:#?}");
    assert_eq!(spans[0].fields["request_id"], "trace-me-7");
    assert_eq!(spans[0].fields["route"], "/api/v1/backfill/status/{job_id}");
    assert_eq!(spans[0].fields["method"], "GET");
    assert_eq!(spans[1].fields["request_id"], generated);

    // The response line is logged at INFO inside the span.
    let responses: Vec<_> = records
        .iter()
        .filter(|r| r.level == Some(Level::INFO) && r.fields.contains_key("status"))
        .collect();
    assert_eq!(responses.len(), 2, "{records:#?}");
    assert_eq!(responses[0].scope["request_id"], "trace-me-7");
    assert_eq!(responses[0].fields["status"], "200");
}

#[tokio::test]
async fn a_server_error_logs_its_cause_chain_under_the_request_id() {
    capture();
    let mut jobs = MockJobRepository::new();
    jobs.expect_get_job().returning(|_| {
        Err(backfill_storage::Error::InvalidData(
            "status column holds 'bogus'".into(),
        ))
    });
    let app = app(jobs, MockCandleStore::new());
    let request = Request::get(format!("/api/v1/backfill/status/{JOB_ID}"))
        .header("x-request-id", "five-hundred-1")
        .body(Body::empty())
        .unwrap();
    let response = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = body_text(response).await;
    assert!(!body.contains("bogus"), "{body}");

    let records = my_records();
    let errors: Vec<_> = records
        .iter()
        .filter(|r| r.level == Some(Level::ERROR))
        .collect();
    assert_eq!(errors.len(), 1, "{records:#?}");
    let error = errors[0];
    assert_eq!(error.fields["code"], "internal_error");
    assert_eq!(
        error.fields["cause"],
        "invalid stored data: status column holds 'bogus'"
    );
    assert_eq!(error.scope["request_id"], "five-hundred-1");
}
