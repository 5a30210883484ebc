//! Orchestration tests of one task against mockall mocks of storage and market data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backfill_domain::{
    BackfillJob, BackfillMode, Candle, DateRange, JobId, JobSpec, JobStatus, Ohlcv, ProgressEvent,
    Symbol, Task, TaskId, TaskStatus, TaskUnit, Timeframe,
};
use backfill_polygon::{AggregatesRequest, MockMarketData, Page, PageCursor};
use backfill_progress::ProgressBus;
use backfill_storage::{
    ClaimedTask, HeartbeatReport, IngestOutcome, Lease, MockCandleStore, MockTaskQueue, Recorded,
};
use chrono::{DateTime, TimeDelta, Utc};
use mockall::predicate::eq;
use tokio::sync::broadcast::error::TryRecvError;

use crate::running::{Ctx, Running, StopReason};
use crate::{task, Backoff, Worker, WorkerConfig, WorkerDeps, WorkerId};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

const DAY: i64 = 86_400_000;
const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

fn range() -> DateRange {
    DateRange::from_millis(T0, T0 + 10 * DAY - 1).unwrap()
}

fn job(mode: BackfillMode, status: JobStatus) -> BackfillJob {
    BackfillJob {
        id: JobId::from_uuid(uuid::Uuid::from_u128(7)),
        spec: JobSpec::new(
            vec![Symbol::parse("AAPL").unwrap()],
            Timeframe::parse("1d").unwrap(),
            range(),
            true,
            mode,
        )
        .unwrap(),
        status,
        created_at: at(T0),
        started_at: Some(at(T0)),
        finished_at: None,
        error: None,
        simulated: false,
    }
}

fn claimed(mode: BackfillMode, attempts: u32, checkpoint: Option<DateTime<Utc>>) -> ClaimedTask {
    let job = job(mode, JobStatus::Running);
    ClaimedTask {
        lease: lease(),
        task: Task {
            status: TaskStatus::Running,
            attempts,
            checkpoint,
            worker_id: Some("w".to_owned()),
            ..Task::queued(
                TaskId(1),
                job.id,
                TaskUnit::Symbol(Symbol::parse("AAPL").unwrap()),
                at(T0),
            )
        },
        job,
    }
}

fn lease() -> Lease {
    Lease {
        task_id: TaskId(1),
        worker_id: "w".to_owned(),
        token: 3,
    }
}

fn candle(day: i64) -> Candle {
    Candle::new(
        Symbol::parse("AAPL").unwrap(),
        Timeframe::parse("1d").unwrap(),
        at(T0 + day * DAY),
        Ohlcv {
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 10.0,
            vwap: None,
            trades: None,
        },
    )
    .unwrap()
}

fn page(days: std::ops::Range<i64>, covered_through: i64, next: Option<PageCursor>) -> Page {
    Page {
        candles: days.map(candle).collect(),
        covered_through: at(covered_through),
        next,
        dropped: 0,
        requests: 1,
        bytes: 100,
    }
}

fn recorded(task: TaskStatus, job_ended: Option<JobStatus>) -> Recorded {
    Recorded { task, job_ended }
}

fn stored(n: u64) -> IngestOutcome {
    IngestOutcome {
        inserted: n,
        ..IngestOutcome::default()
    }
}

struct Harness {
    queue: MockTaskQueue,
    candles: MockCandleStore,
    market: MockMarketData,
    config: WorkerConfig,
}

impl Harness {
    fn new() -> Self {
        let mut config = WorkerConfig::new(WorkerId::generate("test"));
        config.max_attempts = 4;
        config.retry_backoff = Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(100),
            min: Duration::from_secs(1),
        };
        Self {
            queue: MockTaskQueue::new(),
            candles: MockCandleStore::new(),
            market: MockMarketData::new(),
            config,
        }
    }

    /// Runs one task to its end (optionally told to stop first) and returns the events.
    async fn run(self, claimed: ClaimedTask, stop: Option<StopReason>) -> Vec<ProgressEvent> {
        let bus = ProgressBus::new(64);
        let mut rx = bus.subscribe();
        let ctx = Arc::new(Ctx {
            deps: WorkerDeps {
                queue: Arc::new(self.queue),
                candles: Arc::new(self.candles),
                market: Arc::new(self.market),
                files: None,
            },
            bus,
            config: self.config,
        });
        let running = Arc::new(Running::new(claimed.lease.clone(), claimed.job.id));
        if let Some(reason) = stop {
            running.trigger(reason);
        }
        task::run(ctx, claimed, running).await;
        let mut events = vec![];
        loop {
            match rx.try_recv() {
                Ok(e) => events.push(e),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                Err(TryRecvError::Lagged(_)) => {}
            }
        }
        events
    }
}

fn finished_status(events: &[ProgressEvent]) -> Option<(TaskStatus, Option<String>)> {
    events.iter().find_map(|e| match e {
        ProgressEvent::TaskFinished { status, error, .. } => Some((*status, error.clone())),
        _ => None,
    })
}

#[tokio::test]
async fn stores_every_page_then_completes_with_the_range_covered() {
    let mut h = Harness::new();
    let req_range = range();
    let cursor = PageCursor::start(&AggregatesRequest {
        symbol: Symbol::parse("AAPL").unwrap(),
        timeframe: Timeframe::parse("1d").unwrap(),
        range: req_range,
        adjusted: true,
    });
    let second = cursor.clone();
    h.market
        .expect_fetch_page()
        .withf(move |r, c| r.range == req_range && c.is_none())
        .times(1)
        .returning(move |_, _| Ok(page(0..2, T0 + 2 * DAY - 1, Some(second.clone()))));
    h.market
        .expect_fetch_page()
        .withf(move |_, c| c.as_ref() == Some(&cursor))
        .times(1)
        .returning(|_, _| Ok(page(2..3, T0 + 10 * DAY - 1, None)));
    let seen = Arc::new(Mutex::new(vec![]));
    let log = Arc::clone(&seen);
    h.candles
        .expect_ingest_page()
        .times(2)
        .returning(move |l, c, cp, _| {
            assert_eq!(l, &lease());
            log.lock().unwrap().push((c.len(), cp));
            Ok(stored(c.len() as u64))
        });
    h.queue
        .expect_complete_task()
        .withf(|l, covered| l == &lease() && covered == [range()])
        .times(1)
        .returning(|_, _| Ok(recorded(TaskStatus::Succeeded, Some(JobStatus::Succeeded))));
    let events = h.run(claimed(BackfillMode::Full, 1, None), None).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [(2, at(T0 + 2 * DAY - 1)), (1, at(T0 + 10 * DAY - 1))]
    );
    assert!(matches!(
        events[0],
        ProgressEvent::TaskStarted { attempt: 1, .. }
    ));
    let pages: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::PageStored { stored, .. } => Some(*stored),
            _ => None,
        })
        .collect();
    assert_eq!(pages, [2, 1]);
    assert_eq!(
        finished_status(&events),
        Some((TaskStatus::Succeeded, None))
    );
    assert!(matches!(
        events.last(),
        Some(ProgressEvent::JobFinished {
            status: JobStatus::Succeeded,
            ..
        })
    ));
}

#[tokio::test]
async fn zero_candles_is_a_success() {
    let mut h = Harness::new();
    h.market
        .expect_fetch_page()
        .times(1)
        .returning(|_, _| Ok(page(0..0, T0 + 10 * DAY - 1, None)));
    h.candles
        .expect_ingest_page()
        .withf(|_, c, _, _| c.is_empty())
        .times(1)
        .returning(|_, _, _, _| Ok(IngestOutcome::default()));
    h.queue
        .expect_complete_task()
        .times(1)
        .returning(|_, _| Ok(recorded(TaskStatus::Succeeded, Some(JobStatus::Succeeded))));
    let events = h.run(claimed(BackfillMode::Full, 1, None), None).await;
    assert_eq!(
        finished_status(&events),
        Some((TaskStatus::Succeeded, None))
    );
}

#[tokio::test]
async fn missing_mode_fetches_only_what_is_not_covered_after_the_checkpoint() {
    let mut h = Harness::new();
    // Days 0-3 are stored already; the task had checkpointed through day 5.
    h.candles
        .expect_coverage()
        .times(1)
        .returning(|_, _, _| Ok(vec![DateRange::from_millis(T0, T0 + 4 * DAY - 1).unwrap()]));
    let expected = DateRange::from_millis(T0 + 6 * DAY, T0 + 10 * DAY - 1).unwrap();
    h.market
        .expect_fetch_page()
        .withf(move |r, _| r.range == expected)
        .times(1)
        .returning(|_, _| Ok(page(6..10, T0 + 10 * DAY - 1, None)));
    h.candles
        .expect_ingest_page()
        .times(1)
        .returning(|_, c, _, _| Ok(stored(c.len() as u64)));
    h.queue
        .expect_complete_task()
        .withf(|_, covered| covered == [range()])
        .times(1)
        .returning(|_, _| Ok(recorded(TaskStatus::Succeeded, None)));
    let events = h
        .run(
            claimed(BackfillMode::Missing, 2, Some(at(T0 + 6 * DAY - 1))),
            None,
        )
        .await;
    assert_eq!(
        finished_status(&events),
        Some((TaskStatus::Succeeded, None))
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ProgressEvent::JobFinished { .. })),
        "the job is still running"
    );
}

#[tokio::test]
async fn a_permanent_failure_fails_the_task_at_once() {
    let mut h = Harness::new();
    h.market.expect_fetch_page().times(1).returning(|_, _| {
        Err(backfill_polygon::Error::Unauthorized {
            message: "Unknown API Key".to_owned(),
        })
    });
    h.candles.expect_ingest_page().times(0);
    h.queue
        .expect_fail_task()
        .withf(|l, msg, retry_at, max| {
            l == &lease() && msg.contains("Unknown API Key") && retry_at.is_none() && *max == 4
        })
        .times(1)
        .returning(|_, _, _, _| Ok(recorded(TaskStatus::Failed, Some(JobStatus::Failed))));
    let events = h.run(claimed(BackfillMode::Full, 1, None), None).await;
    let (status, error) = finished_status(&events).unwrap();
    assert_eq!(status, TaskStatus::Failed);
    assert!(error.unwrap().contains("api key"));
    assert!(matches!(
        events.last(),
        Some(ProgressEvent::JobFinished {
            status: JobStatus::Failed,
            ..
        })
    ));
}

#[tokio::test]
async fn a_transient_failure_reschedules_with_backoff() {
    let mut h = Harness::new();
    h.market.expect_fetch_page().times(1).returning(|_, _| {
        Err(backfill_polygon::Error::Server {
            status: 503,
            message: "Service Unavailable".to_owned(),
        })
    });
    let before = Utc::now();
    let retry = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&retry);
    h.queue
        .expect_fail_task()
        .withf(|_, msg, _, max| msg.contains("503") && *max == 4)
        .times(1)
        .returning(move |_, _, retry_at, _| {
            *seen.lock().unwrap() = retry_at;
            Ok(recorded(TaskStatus::Queued, None))
        });
    let events = h.run(claimed(BackfillMode::Full, 3, None), None).await;
    let retry_at = retry.lock().unwrap().expect("a retry time");
    // Attempt 3: full jitter up to min(100 s, 10 s * 2^2) = 40 s, at least 1 s.
    let wait = retry_at - before;
    assert!(wait >= TimeDelta::milliseconds(900), "{wait}");
    assert!(wait <= TimeDelta::seconds(41), "{wait}");
    assert_eq!(finished_status(&events).unwrap().0, TaskStatus::Queued);
}

#[tokio::test]
async fn a_rate_limit_waits_at_least_as_long_as_polygon_asks() {
    let mut h = Harness::new();
    h.market.expect_fetch_page().times(1).returning(|_, _| {
        Err(backfill_polygon::Error::RateLimited {
            retry_after: Some(Duration::from_secs(600)),
            message: "You've exceeded the maximum requests per minute".to_owned(),
        })
    });
    let before = Utc::now();
    h.queue
        .expect_fail_task()
        .withf(move |_, _, retry_at, _| {
            retry_at.is_some_and(|t| t - before >= TimeDelta::seconds(600))
        })
        .times(1)
        .returning(|_, _, _, _| Ok(recorded(TaskStatus::Queued, None)));
    h.run(claimed(BackfillMode::Full, 1, None), None).await;
}

#[tokio::test]
async fn the_last_transient_failure_fails_the_task_with_its_error() {
    let mut h = Harness::new();
    h.market.expect_fetch_page().times(1).returning(|_, _| {
        Err(backfill_polygon::Error::Timeout {
            message: "request timed out".to_owned(),
        })
    });
    // Storage decides, from the attempts and the maximum the worker passes, that this was the
    // last attempt.
    h.queue
        .expect_fail_task()
        .withf(|_, msg, retry_at, max| msg.contains("timed out") && retry_at.is_some() && *max == 4)
        .times(1)
        .returning(|_, _, _, _| {
            Ok(recorded(
                TaskStatus::Failed,
                Some(JobStatus::CompletedWithErrors),
            ))
        });
    let events = h.run(claimed(BackfillMode::Full, 4, None), None).await;
    let (status, error) = finished_status(&events).unwrap();
    assert_eq!(status, TaskStatus::Failed);
    assert!(error.unwrap().contains("timed out"));
    assert!(matches!(
        events.last(),
        Some(ProgressEvent::JobFinished {
            status: JobStatus::CompletedWithErrors,
            ..
        })
    ));
}

#[tokio::test]
async fn a_storage_failure_reschedules_the_task() {
    let mut h = Harness::new();
    h.market
        .expect_fetch_page()
        .times(1)
        .returning(|_, _| Ok(page(0..3, T0 + 3 * DAY - 1, None)));
    h.candles
        .expect_ingest_page()
        .times(1)
        .returning(|_, _, _, _| Err(backfill_storage::Error::InvalidData("boom".to_owned())));
    h.queue
        .expect_fail_task()
        .withf(|_, msg, retry_at, _| msg.contains("storage failed") && retry_at.is_some())
        .times(1)
        .returning(|_, _, _, _| Ok(recorded(TaskStatus::Queued, None)));
    h.queue.expect_complete_task().times(0);
    let events = h.run(claimed(BackfillMode::Full, 1, None), None).await;
    assert_eq!(finished_status(&events).unwrap().0, TaskStatus::Queued);
}

#[tokio::test]
async fn a_lost_lease_stops_the_task_and_records_nothing() {
    let mut h = Harness::new();
    let cursor = PageCursor::start(&AggregatesRequest {
        symbol: Symbol::parse("AAPL").unwrap(),
        timeframe: Timeframe::parse("1d").unwrap(),
        range: range(),
        adjusted: true,
    });
    h.market
        .expect_fetch_page()
        .times(1)
        .returning(move |_, _| Ok(page(0..2, T0 + 2 * DAY - 1, Some(cursor.clone()))));
    h.candles
        .expect_ingest_page()
        .times(1)
        .returning(|l, _, _, _| Err(backfill_storage::Error::LeaseLost { task_id: l.task_id }));
    h.queue.expect_complete_task().times(0);
    h.queue.expect_fail_task().times(0);
    h.queue.expect_cancel_task().times(0);
    let events = h.run(claimed(BackfillMode::Full, 1, None), None).await;
    assert_eq!(finished_status(&events), None);
}

#[tokio::test]
async fn a_cancelled_job_stops_after_the_page_being_stored() {
    let mut h = Harness::new();
    let cursor = PageCursor::start(&AggregatesRequest {
        symbol: Symbol::parse("AAPL").unwrap(),
        timeframe: Timeframe::parse("1d").unwrap(),
        range: range(),
        adjusted: true,
    });
    h.market
        .expect_fetch_page()
        .times(1)
        .returning(move |_, _| Ok(page(0..2, T0 + 2 * DAY - 1, Some(cursor.clone()))));
    h.candles
        .expect_ingest_page()
        .times(1)
        .returning(|_, _, _, _| {
            Ok(IngestOutcome {
                inserted: 2,
                job_cancelled: true,
                ..IngestOutcome::default()
            })
        });
    h.queue
        .expect_cancel_task()
        .with(eq(lease()), eq("the job was cancelled"))
        .times(1)
        .returning(|_, _| Ok(recorded(TaskStatus::Cancelled, Some(JobStatus::Cancelled))));
    let events = h.run(claimed(BackfillMode::Full, 1, None), None).await;
    assert!(events
        .iter()
        .any(|e| matches!(e, ProgressEvent::PageStored { stored: 2, .. })));
    assert_eq!(finished_status(&events).unwrap().0, TaskStatus::Cancelled);
    // Storage said the job ended with this task: that is announced without reading the job.
    assert!(matches!(
        events.last(),
        Some(ProgressEvent::JobFinished {
            status: JobStatus::Cancelled,
            ..
        })
    ));
}

#[tokio::test]
async fn a_stop_request_interrupts_a_fetch_in_progress() {
    let mut h = Harness::new();
    h.market.expect_fetch_page().times(0);
    h.candles.expect_ingest_page().times(0);
    h.queue
        .expect_cancel_task()
        .times(1)
        .returning(|_, _| Ok(recorded(TaskStatus::Cancelled, Some(JobStatus::Cancelled))));
    let events = h
        .run(
            claimed(BackfillMode::Full, 1, None),
            Some(StopReason::Cancelled),
        )
        .await;
    assert_eq!(finished_status(&events).unwrap().0, TaskStatus::Cancelled);
}

#[tokio::test]
async fn shutdown_leaves_the_task_for_release_without_recording_an_outcome() {
    let mut h = Harness::new();
    h.queue.expect_complete_task().times(0);
    h.queue.expect_fail_task().times(0);
    h.queue.expect_cancel_task().times(0);
    let events = h
        .run(
            claimed(BackfillMode::Full, 1, None),
            Some(StopReason::Shutdown),
        )
        .await;
    assert_eq!(finished_status(&events).unwrap().0, TaskStatus::Queued);
}

#[tokio::test]
async fn heartbeats_leave_out_a_task_that_is_recording_its_outcome() {
    let mut h = Harness::new();
    let lease_of = |id| Lease {
        task_id: TaskId(id),
        ..lease()
    };
    // Task 1 has finished fetching and is completing, which ends its lease; task 2 is still
    // working but lost its lease to another worker.
    h.queue
        .expect_heartbeat()
        .withf(move |_, leases, _| leases == [lease_of(2)])
        .times(1)
        .returning(|_, _, _| {
            Ok(HeartbeatReport {
                lost: vec![TaskId(1), TaskId(2)],
                cancelled: vec![],
            })
        });
    let worker = Worker::new(
        WorkerDeps {
            queue: Arc::new(h.queue),
            candles: Arc::new(h.candles),
            market: Arc::new(h.market),
            files: None,
        },
        ProgressBus::new(8),
        h.config,
    );
    let finishing = Arc::new(Running::new(lease_of(1), JobId::new()));
    finishing.finish();
    let working = Arc::new(Running::new(lease_of(2), JobId::new()));
    let running = HashMap::from([
        (TaskId(1), Arc::clone(&finishing)),
        (TaskId(2), Arc::clone(&working)),
    ]);
    worker.heartbeat(&running).await;
    assert!(
        !finishing.stop.is_cancelled(),
        "a finishing task is not stopped"
    );
    assert!(working.stop.is_cancelled());
    assert_eq!(working.reason(), StopReason::LeaseLost);
}
