//! Day tasks against mockall mocks of storage, the REST API and Flat Files.

use std::sync::{Arc, Mutex};

use backfill_domain::{
    BackfillJob, BackfillMode, Candle, Chosen, DateRange, JobId, JobSpec, JobStatus, Ohlcv,
    ProgressEvent, RangeBound, Source, Symbol, Task, TaskId, TaskStatus, TaskUnit, Timeframe,
};
use backfill_polygon::{Dataset, DayFile, FilePage, GroupedDay, MockFlatFiles, MockMarketData};
use backfill_progress::ProgressBus;
use backfill_storage::{
    ClaimedTask, DayCompletion, DaySeries, IngestOutcome, Lease, MockCandleStore, MockTaskQueue,
    Recorded, SourceFile, StoredFile,
};
use chrono::{NaiveDate, TimeDelta, Utc};

use crate::running::{Ctx, Running};
use crate::{task, WorkerConfig, WorkerDeps, WorkerId};

const DAY: &str = "2024-01-02";

fn day() -> NaiveDate {
    DAY.parse().unwrap()
}

fn job(source: Source, symbols: Option<&[&str]>, timeframe: &str, adjusted: bool) -> BackfillJob {
    let spec = JobSpec::with_source(
        symbols.map(|l| l.iter().map(|s| Symbol::parse(s).unwrap()).collect()),
        Timeframe::parse(timeframe).unwrap(),
        DateRange::new(
            RangeBound::parse("2024-01-02").unwrap(),
            RangeBound::parse("2024-01-03").unwrap(),
        )
        .unwrap(),
        adjusted,
        BackfillMode::Missing,
        Chosen {
            source,
            reason: "asked for".to_owned(),
        },
    )
    .unwrap();
    BackfillJob {
        id: JobId::new(),
        spec,
        status: JobStatus::Running,
        created_at: Utc::now(),
        started_at: Some(Utc::now()),
        finished_at: None,
        error: None,
        simulated: false,
    }
}

fn lease() -> Lease {
    Lease {
        task_id: TaskId(9),
        worker_id: "w".to_owned(),
        token: 1,
    }
}

fn claimed(job: BackfillJob, rows_done: u64, file_etag: Option<&str>) -> ClaimedTask {
    ClaimedTask {
        lease: lease(),
        task: Task {
            status: TaskStatus::Running,
            attempts: 1,
            rows_done,
            file_etag: file_etag.map(str::to_owned),
            ..Task::queued(TaskId(9), job.id, TaskUnit::Day(day()), Utc::now())
        },
        job,
    }
}

fn bar(symbol: &str, timeframe: &str, minute: i64) -> Candle {
    Candle::new(
        Symbol::parse(symbol).unwrap(),
        Timeframe::parse(timeframe).unwrap(),
        DateRange::ny_day(day()).from() + TimeDelta::minutes(minute),
        Ohlcv {
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 10.0,
            vwap: None,
            trades: Some(3),
        },
    )
    .unwrap()
}

fn stored(n: u64) -> IngestOutcome {
    IngestOutcome {
        inserted: n,
        ..IngestOutcome::default()
    }
}

fn file() -> DayFile {
    DayFile {
        dataset: Dataset::MinuteAggs,
        day: day(),
        key: Dataset::MinuteAggs.key(day()),
        etag: "\"v1\"".to_owned(),
        size: 4_000,
    }
}

/// The completion recorded, captured.
type Captured = Arc<Mutex<Option<DayCompletion>>>;

struct Harness {
    queue: MockTaskQueue,
    candles: MockCandleStore,
    market: MockMarketData,
    files: Option<MockFlatFiles>,
}

impl Harness {
    fn new(files: bool) -> Self {
        Self {
            queue: MockTaskQueue::new(),
            candles: MockCandleStore::new(),
            market: MockMarketData::new(),
            files: files.then(MockFlatFiles::new),
        }
    }

    /// Expects one `complete_day` and captures what it recorded.
    fn complete(&mut self, job_ended: Option<JobStatus>) -> Captured {
        let seen: Captured = Arc::default();
        let log = Arc::clone(&seen);
        self.queue
            .expect_complete_day()
            .times(1)
            .returning(move |_, c| {
                *log.lock().unwrap() = Some(c.clone());
                Ok(Recorded {
                    task: TaskStatus::Succeeded,
                    job_ended,
                })
            });
        seen
    }

    async fn run(self, claimed: ClaimedTask) -> Vec<ProgressEvent> {
        let bus = ProgressBus::new(64);
        let mut rx = bus.subscribe();
        let ctx = Arc::new(Ctx {
            deps: WorkerDeps {
                queue: Arc::new(self.queue),
                candles: Arc::new(self.candles),
                market: Arc::new(self.market),
                files: self
                    .files
                    .map(|f| Arc::new(f) as Arc<dyn backfill_polygon::FlatFiles>),
            },
            bus,
            config: WorkerConfig::new(WorkerId::generate("test")),
        });
        let running = Arc::new(Running::new(claimed.lease.clone(), claimed.job.id));
        task::run(ctx, claimed, running).await;
        let mut events = vec![];
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        events
    }
}

fn covered_day() -> DateRange {
    DateRange::ny_day(day())
}

#[tokio::test]
async fn a_grouped_day_keeps_the_listed_symbols_and_covers_them() {
    let mut h = Harness::new(false);
    h.market
        .expect_fetch_grouped()
        .withf(|d, adjusted| *d == day() && *adjusted)
        .times(1)
        .returning(|_, _| {
            Ok(GroupedDay {
                candles: vec![
                    bar("AAPL", "1d", 0),
                    bar("IBM", "1d", 0),
                    bar("MSFT", "1d", 0),
                ],
                requests: 2,
                bytes: 1_234,
                dropped: 0,
            })
        });
    h.candles
        .expect_ingest_rows()
        .withf(|l, candles, p| {
            let symbols: Vec<&str> = candles.iter().map(|c| c.symbol().as_str()).collect();
            l == &lease()
                && symbols == ["AAPL", "MSFT"]
                && p.rows_done == 3
                && p.fetched.requests == 2
                && p.fetched.bytes == 1_234
        })
        .times(1)
        .returning(|_, c, _| Ok(stored(c.len() as u64)));
    let done = h.complete(None);
    let job = job(Source::Grouped, Some(&["AAPL", "MSFT"]), "1d", true);
    let events = h.run(claimed(job, 0, None)).await;
    let done = done.lock().unwrap().clone().unwrap();
    assert_eq!(
        done.covered,
        Some((
            covered_day(),
            DaySeries::Listed(vec![
                Symbol::parse("AAPL").unwrap(),
                Symbol::parse("MSFT").unwrap()
            ])
        ))
    );
    assert_eq!(done.note, None);
    assert!(events.iter().any(|e| matches!(
        e,
        ProgressEvent::PageStored { unit: TaskUnit::Day(d), fetched: 3, stored: 2, .. } if *d == day()
    )));
}

#[tokio::test]
async fn a_grouped_holiday_is_a_note_not_a_failure() {
    let mut h = Harness::new(false);
    h.market.expect_fetch_grouped().times(1).returning(|_, _| {
        Ok(GroupedDay {
            candles: vec![],
            requests: 1,
            bytes: 80,
            dropped: 0,
        })
    });
    h.candles
        .expect_ingest_rows()
        .times(1)
        .returning(|_, _, _| Ok(IngestOutcome::default()));
    let done = h.complete(Some(JobStatus::Succeeded));
    let events = h
        .run(claimed(job(Source::Grouped, None, "1d", true), 0, None))
        .await;
    let done = done.lock().unwrap().clone().unwrap();
    assert!(done.note.unwrap().contains("not a trading day"));
    assert_eq!(done.covered, Some((covered_day(), DaySeries::Stored)));
    assert!(matches!(
        events.last(),
        Some(ProgressEvent::JobFinished {
            status: JobStatus::Succeeded,
            ..
        })
    ));
}

#[tokio::test]
async fn a_day_without_a_file_ends_with_a_note_and_covers_nothing() {
    let mut h = Harness::new(true);
    let files = h.files.as_mut().unwrap();
    files
        .expect_day_file()
        .withf(|d, day_| *d == Dataset::MinuteAggs && *day_ == day())
        .times(1)
        .returning(|_, _| Ok(None));
    files.expect_pages().times(0);
    h.candles.expect_ingest_rows().times(0);
    let done = h.complete(None);
    h.run(claimed(job(Source::FlatFiles, None, "1m", false), 0, None))
        .await;
    let done = done.lock().unwrap().clone().unwrap();
    assert_eq!(done.covered, None);
    let note = done.note.unwrap();
    assert!(note.contains("us_stocks_sip/minute_aggs_v1/2024/01/2024-01-02.csv.gz"));
    assert!(note.contains("not published yet"), "{note}");
    assert_eq!(done.fetched.requests, 1);
}

#[tokio::test]
async fn an_unchanged_file_is_never_downloaded_twice() {
    let mut h = Harness::new(true);
    let files = h.files.as_mut().unwrap();
    files
        .expect_day_file()
        .times(1)
        .returning(|_, _| Ok(Some(file())));
    files.expect_pages().times(0);
    h.candles
        .expect_stored_file()
        .withf(|key| key == file().key)
        .times(1)
        .returning(|_| {
            Ok(Some(StoredFile {
                file: SourceFile {
                    key: file().key,
                    etag: file().etag,
                    size: 4_000,
                    rows: 10,
                },
                stored_at: Utc::now(),
            }))
        });
    h.candles.expect_ingest_rows().times(0);
    let done = h.complete(None);
    h.run(claimed(job(Source::FlatFiles, None, "1m", false), 0, None))
        .await;
    let done = done.lock().unwrap().clone().unwrap();
    assert!(done.note.unwrap().contains("unchanged"));
    assert_eq!(done.covered, Some((covered_day(), DaySeries::Stored)));
    assert_eq!(done.file, None);
}

fn pages(pages: Vec<FilePage>) -> backfill_polygon::FilePages {
    Box::pin(futures::stream::iter(pages.into_iter().map(Ok)))
}

fn page(candles: Vec<Candle>, rows_done: u64, offset: u64) -> FilePage {
    FilePage {
        candles,
        rows_done,
        offset,
        bytes: offset,
        requests: 1,
        dropped: 0,
    }
}

#[tokio::test]
async fn a_file_is_streamed_page_by_page_and_recorded_whole() {
    let mut h = Harness::new(true);
    let files = h.files.as_mut().unwrap();
    files
        .expect_day_file()
        .times(1)
        .returning(|_, _| Ok(Some(file())));
    // A replaced file (another ETag) is stored again.
    h.candles.expect_stored_file().times(1).returning(|_| {
        Ok(Some(StoredFile {
            file: SourceFile {
                key: file().key,
                etag: "\"v0\"".to_owned(),
                size: 3_000,
                rows: 9,
            },
            stored_at: Utc::now(),
        }))
    });
    files
        .expect_pages()
        .withf(|f, skip| f == &file() && *skip == 0)
        .times(1)
        .returning(|_, _| {
            Ok(pages(vec![
                page(vec![bar("AAPL", "1m", 0), bar("AAPL", "1m", 1)], 2, 1_500),
                page(vec![bar("MSFT", "1m", 0)], 3, 4_000),
            ]))
        });
    let progress = Arc::new(Mutex::new(vec![]));
    let log = Arc::clone(&progress);
    h.candles
        .expect_ingest_rows()
        .times(2)
        .returning(move |_, c, p| {
            log.lock()
                .unwrap()
                .push((c.len(), p.rows_done, p.file_offset, p.file_size));
            Ok(stored(c.len() as u64))
        });
    let done = h.complete(None);
    h.run(claimed(job(Source::FlatFiles, None, "1m", false), 0, None))
        .await;
    assert_eq!(
        *progress.lock().unwrap(),
        [(2, 2, 1_500, Some(4_000)), (1, 3, 4_000, Some(4_000))]
    );
    let done = done.lock().unwrap().clone().unwrap();
    assert_eq!(
        done.file,
        Some(SourceFile {
            key: file().key,
            etag: file().etag,
            size: 4_000,
            rows: 3
        })
    );
    assert_eq!(done.covered, Some((covered_day(), DaySeries::Stored)));
}

#[tokio::test]
async fn a_restart_skips_the_rows_stored_unless_the_file_changed() {
    for (etag_before, skip) in [(Some("\"v1\""), 700), (Some("\"v0\""), 0), (None, 0)] {
        let mut h = Harness::new(true);
        let files = h.files.as_mut().unwrap();
        files
            .expect_day_file()
            .times(1)
            .returning(|_, _| Ok(Some(file())));
        h.candles
            .expect_stored_file()
            .times(1)
            .returning(|_| Ok(None));
        files
            .expect_pages()
            .withf(move |_, s| *s == skip)
            .times(1)
            .returning(|_, _| Ok(pages(vec![])));
        // A listed job does not record the file as stored whole.
        let done = h.complete(None);
        let job = job(Source::FlatFiles, Some(&["AAPL"]), "1m", false);
        h.run(claimed(job, 700, etag_before)).await;
        let done = done.lock().unwrap().clone().unwrap();
        assert_eq!(done.file, None);
    }
}

#[tokio::test]
async fn a_worker_without_flat_files_credentials_fails_the_day_saying_so() {
    let mut h = Harness::new(false);
    h.queue
        .expect_fail_task()
        .withf(|_, message, retry_at, _| {
            message.contains("POLYGON_S3_ACCESS_KEY_ID") && retry_at.is_none()
        })
        .times(1)
        .returning(|_, _, _, _| {
            Ok(Recorded {
                task: TaskStatus::Failed,
                job_ended: None,
            })
        });
    let events = h
        .run(claimed(job(Source::FlatFiles, None, "1m", false), 0, None))
        .await;
    assert!(events.iter().any(|e| matches!(
        e,
        ProgressEvent::TaskFinished { status: TaskStatus::Failed, error: Some(m), .. }
            if m.contains("credentials")
    )));
}
