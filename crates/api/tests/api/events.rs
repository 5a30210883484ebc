//! The Server-Sent Events progress stream, driven by mock snapshots on tokio's paused clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::http::{header, Response, StatusCode};
use axum::Router;
use backfill_api::{router, ApiConfig};
use backfill_domain::ProgressEvent;
use backfill_domain::{JobId, JobStatus, Symbol, TaskStatus, TaskUnit};
use backfill_progress::ProgressBus;
use backfill_storage::{JobDetails, MockCandleStore, MockJobRepository};
use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use serde_json::Value;
use tokio::time::Instant;

use crate::helpers::*;

/// One item of an event stream.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Event { name: String, data: Value },
    Comment,
}

/// Reads an event stream frame by frame.
struct SseReader {
    body: BodyDataStream,
    buffer: String,
}

impl SseReader {
    fn new(response: Response<Body>) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        Self {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next event or comment; `None` once the stream has closed.
    async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&frame));
            }
            match self.body.next().await {
                Some(chunk) => self
                    .buffer
                    .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
                None => {
                    assert!(
                        self.buffer.trim().is_empty(),
                        "left over: {:?}",
                        self.buffer
                    );
                    return None;
                }
            }
        }
    }

    /// The next event, skipping keep-alive comments.
    async fn next_event(&mut self) -> Option<(String, Value)> {
        loop {
            match self.next().await? {
                Item::Event { name, data } => return Some((name, data)),
                Item::Comment => continue,
            }
        }
    }

    /// Every remaining event, until the stream closes.
    async fn rest(&mut self) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            events.push(event);
        }
        events
    }
}

fn parse(frame: &str) -> Item {
    let mut name = None;
    let mut data = String::new();
    for line in frame.lines() {
        if line.starts_with(':') {
            return Item::Comment;
        } else if let Some(value) = line.strip_prefix("event:") {
            name = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    Item::Event {
        name: name.expect("every event is named"),
        data: serde_json::from_str(&data).unwrap(),
    }
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

fn events_uri() -> String {
    format!("/api/v1/backfill/{JOB_ID}/events")
}

fn page_stored(job_id: JobId) -> ProgressEvent {
    ProgressEvent::PageStored {
        job_id,
        unit: TaskUnit::Symbol(Symbol::parse("AAPL").unwrap()),
        fetched: 10,
        stored: 10,
        checkpoint: Utc::now(),
    }
}

/// A router whose streams poll every `poll` and listen on a progress bus, over `snapshots`.
fn app_with_bus(snapshots: Vec<JobDetails>, poll: Duration) -> (Router, ProgressBus) {
    let bus = ProgressBus::new(8);
    let mut jobs = MockJobRepository::new();
    expect_snapshots(&mut jobs, snapshots);
    let config = ApiConfig::default().with_sse_poll_interval(poll);
    let app = router(state(jobs, MockCandleStore::new(), config).with_progress_bus(bus.clone()));
    (app, bus)
}

#[tokio::test(start_paused = true)]
async fn without_a_bus_the_stream_polls_storage_until_the_job_ends() {
    let mut jobs = MockJobRepository::new();
    let running = details(JobStatus::Running, TaskStatus::Running, 10);
    expect_snapshots(
        &mut jobs,
        vec![
            running.clone(),
            running.clone(),
            running,
            details(JobStatus::Running, TaskStatus::Running, 20),
            details(JobStatus::Succeeded, TaskStatus::Succeeded, 30),
        ],
    );
    let app = app(jobs, MockCandleStore::new());
    let mut reader = SseReader::new(send(&app, get(&events_uri())).await);
    let events = reader.rest().await;
    // Unchanged snapshots make no event.
    assert_eq!(names(&events), ["progress", "progress", "progress", "done"]);
    let stored: Vec<_> = events
        .iter()
        .map(|(_, data)| data["progress"]["candles_stored"].as_u64().unwrap())
        .collect();
    assert_eq!(stored, [20, 40, 60, 60]);
    let (_, done) = &events[3];
    assert_eq!(done["job"]["status"], "succeeded");
    // Every event carries the full status body.
    for (_, data) in &events {
        let keys: Vec<_> = data.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["job", "progress", "tasks"]);
    }
}

#[tokio::test(start_paused = true)]
async fn an_already_finished_job_sends_progress_and_done_at_once() {
    let mut jobs = MockJobRepository::new();
    expect_snapshots(
        &mut jobs,
        vec![details(JobStatus::Failed, TaskStatus::Failed, 0)],
    );
    let app = app(jobs, MockCandleStore::new());
    let start = Instant::now();
    let events = SseReader::new(send(&app, get(&events_uri())).await)
        .rest()
        .await;
    assert_eq!(names(&events), ["progress", "done"]);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no wait on the virtual clock"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bus_event_for_the_job_wakes_the_stream_before_its_poll() {
    let poll = Duration::from_secs(3600);
    let (app, bus) = app_with_bus(
        vec![
            details(JobStatus::Running, TaskStatus::Running, 10),
            details(JobStatus::Running, TaskStatus::Running, 20),
            details(JobStatus::Succeeded, TaskStatus::Succeeded, 30),
        ],
        poll,
    );
    let start = Instant::now();
    let mut reader = SseReader::new(send(&app, get(&events_uri())).await);
    let (name, first) = reader.next_event().await.unwrap();
    assert_eq!(
        (name.as_str(), first["progress"]["candles_stored"].as_u64()),
        ("progress", Some(20))
    );

    bus.publish(page_stored(job_id()));
    let (name, second) = reader.next_event().await.unwrap();
    assert_eq!(
        (name.as_str(), second["progress"]["candles_stored"].as_u64()),
        ("progress", Some(40))
    );
    assert!(start.elapsed() < poll, "woken by the bus, not the poll");

    bus.publish(ProgressEvent::JobFinished {
        job_id: job_id(),
        status: JobStatus::Succeeded,
    });
    assert_eq!(names(&reader.rest().await), ["progress", "done"]);
    assert!(start.elapsed() < poll, "woken by the bus, not the poll");
}

#[tokio::test(start_paused = true)]
async fn bus_events_of_other_jobs_do_not_wake_the_stream() {
    let poll = Duration::from_secs(60);
    let (app, bus) = app_with_bus(
        vec![
            details(JobStatus::Running, TaskStatus::Running, 10),
            details(JobStatus::Succeeded, TaskStatus::Succeeded, 20),
        ],
        poll,
    );
    let start = Instant::now();
    let mut reader = SseReader::new(send(&app, get(&events_uri())).await);
    reader.next_event().await.unwrap();
    bus.publish(page_stored(JobId::new()));
    assert_eq!(names(&reader.rest().await), ["progress", "done"]);
    assert!(start.elapsed() >= poll, "only the poll woke the stream");
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_bus_events_is_rate_limited() {
    let mut snapshots: Vec<_> = (1..=12)
        .map(|n| details(JobStatus::Running, TaskStatus::Running, n * 10))
        .collect();
    snapshots.push(details(JobStatus::Succeeded, TaskStatus::Succeeded, 130));
    let (app, bus) = app_with_bus(snapshots, ApiConfig::DEFAULT_SSE_POLL_INTERVAL);
    let mut reader = SseReader::new(send(&app, get(&events_uri())).await);
    reader.next_event().await.unwrap();
    let mut received = vec![Instant::now()];
    for _ in 0..200 {
        bus.publish(page_stored(job_id()));
    }
    while let Some((name, _)) = reader.next_event().await {
        if name == "progress" {
            received.push(Instant::now());
        }
    }
    assert_eq!(received.len(), 13, "every changed snapshot was sent");
    for pair in received.windows(2) {
        assert!(
            pair[1] - pair[0] >= ApiConfig::DEFAULT_SSE_MIN_INTERVAL,
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_job_is_done_only_when_no_task_still_runs() {
    let cancelled = job(JobStatus::Cancelled);
    let still_running = details_of(
        cancelled.clone(),
        vec![
            task(&cancelled, 0, TaskStatus::Running, 5),
            task(&cancelled, 1, TaskStatus::Cancelled, 0),
        ],
    );
    let stopped = details_of(
        cancelled.clone(),
        vec![
            task(&cancelled, 0, TaskStatus::Cancelled, 5),
            task(&cancelled, 1, TaskStatus::Cancelled, 0),
        ],
    );
    let mut jobs = MockJobRepository::new();
    expect_snapshots(&mut jobs, vec![still_running, stopped]);
    let app = app(jobs, MockCandleStore::new());
    let events = SseReader::new(send(&app, get(&events_uri())).await)
        .rest()
        .await;
    assert_eq!(names(&events), ["progress", "progress", "done"]);
    assert_eq!(events[0].1["tasks"][0]["status"], "running");
    assert_eq!(events[2].1["tasks"][0]["status"], "cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_running_task_with_an_expired_lease_does_not_hold_an_ended_job_open() {
    let failed = job(JobStatus::Failed);
    let mut orphan = task(&failed, 0, TaskStatus::Running, 5);
    orphan.lease_expires_at = Some(Utc::now() - TimeDelta::minutes(5));
    let mut jobs = MockJobRepository::new();
    expect_snapshots(
        &mut jobs,
        vec![details_of(
            failed.clone(),
            vec![orphan, task(&failed, 1, TaskStatus::Failed, 0)],
        )],
    );
    let app = app(jobs, MockCandleStore::new());
    let events = SseReader::new(send(&app, get(&events_uri())).await)
        .rest()
        .await;
    assert_eq!(names(&events), ["progress", "done"]);
}

#[tokio::test(start_paused = true)]
async fn an_idle_stream_sends_keep_alive_comments() {
    let mut jobs = MockJobRepository::new();
    let running = details(JobStatus::Running, TaskStatus::Running, 10);
    let mut snapshots = vec![running; 8];
    snapshots.push(details(JobStatus::Succeeded, TaskStatus::Succeeded, 20));
    expect_snapshots(&mut jobs, snapshots);
    let config = ApiConfig::default().with_sse_keep_alive(Duration::from_secs(1));
    let app = app_with(jobs, MockCandleStore::new(), config);
    let mut reader = SseReader::new(send(&app, get(&events_uri())).await);
    let mut items = Vec::new();
    while let Some(item) = reader.next().await {
        items.push(item);
    }
    let comments = items.iter().filter(|i| **i == Item::Comment).count();
    assert!(comments >= 2, "{items:?}");
    let events: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            Item::Event { name, .. } => Some(name.as_str()),
            Item::Comment => None,
        })
        .collect();
    assert_eq!(events, ["progress", "progress", "done"]);
}

#[tokio::test(start_paused = true)]
async fn a_job_that_vanishes_ends_the_stream_with_an_error_event() {
    let reads = Arc::new(AtomicUsize::new(0));
    let mut jobs = MockJobRepository::new();
    jobs.expect_get_job().returning(move |id| {
        if reads.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(details(JobStatus::Running, TaskStatus::Running, 10))
        } else {
            Err(backfill_storage::Error::NotFound {
                what: format!("job {id}"),
            })
        }
    });
    let app = app(jobs, MockCandleStore::new());
    let events = SseReader::new(send(&app, get(&events_uri())).await)
        .rest()
        .await;
    assert_eq!(names(&events), ["progress", "error"]);
    assert_eq!(events[1].1["error"]["code"], "not_found");
}

#[tokio::test]
async fn an_unknown_job_is_a_404_before_the_stream_starts() {
    let mut jobs = MockJobRepository::new();
    jobs.expect_get_job()
        .times(1)
        .returning(|_| Err(backfill_storage::Error::NotFound { what: "job".into() }));
    let app = app(jobs, MockCandleStore::new());
    expect_error(&app, get(&events_uri()), StatusCode::NOT_FOUND, "not_found").await;
}
