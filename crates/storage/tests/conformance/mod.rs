//! The behaviour suite that every backend must pass. Each check takes a fresh, migrated,
//! empty storage; `tests/storage.rs` runs every check against PostgreSQL and SQLite.

mod actions;

pub(crate) use actions::*;

use std::collections::HashSet;
use std::time::Duration;

use backfill_domain::{
    BackfillMode, Candle, DateRange, JobId, JobSpec, JobStatus, Name, Ohlcv, ScheduleSpec, Sources,
    Symbol, TaskStatus, TaskUnit, Tickers, Timeframe, Trigger,
};
use backfill_storage::{
    CandleQuery, ClaimRequest, ClaimedTask, DayCompletion, DayProgress, DaySeries, Error, Fetched,
    Lease, Recorded, SourceFile, Storage,
};
use chrono::{DateTime, TimeDelta, Utc};

/// A long lease: it does not expire during a test.
const LONG: Duration = Duration::from_secs(600);
/// A lease that is expired as soon as it is granted.
const EXPIRED: Duration = Duration::ZERO;

/// The attempts a task may take, passed to every claim.
const ATTEMPTS: u32 = 5;

fn t0() -> DateTime<Utc> {
    "2024-01-02T14:30:00Z".parse().unwrap()
}

fn minute(i: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(i)
}

fn sym(s: &str) -> Symbol {
    Symbol::parse(s).unwrap()
}

fn tf() -> Timeframe {
    Timeframe::parse("1m").unwrap()
}

fn job_range() -> DateRange {
    DateRange::from_instants(
        "2024-01-01T00:00:00Z".parse().unwrap(),
        "2024-01-31T00:00:00Z".parse().unwrap(),
    )
    .unwrap()
}

fn spec_with(symbols: &[&str], adjusted: bool) -> JobSpec {
    JobSpec::new(
        symbols.iter().map(|s| sym(s)).collect(),
        tf(),
        job_range(),
        adjusted,
        BackfillMode::Missing,
    )
    .unwrap()
}

fn spec(symbols: &[&str]) -> JobSpec {
    spec_with(symbols, true)
}

fn bar(symbol: &str, i: i64, close: f64) -> Candle {
    Candle::new(
        sym(symbol),
        tf(),
        minute(i),
        Ohlcv {
            open: 100.0 + i as f64,
            high: 101.5 + i as f64,
            low: 99.25 + i as f64,
            close,
            volume: 1_000.5 * (i + 1) as f64,
            vwap: (i % 3 != 0).then_some(100.7 + i as f64),
            trades: (i % 4 != 0).then_some(10 + i as u64),
        },
    )
    .unwrap()
}

/// `n` one-minute bars of `symbol` starting at minute `start`.
fn bars(symbol: &str, start: i64, n: i64) -> Vec<Candle> {
    (start..start + n)
        .map(|i| bar(symbol, i, 100.5 + i as f64))
        .collect()
}

async fn create(s: &dyn Storage, symbols: &[&str]) -> JobId {
    s.create_job(&spec(symbols), None).await.unwrap().job.id
}

/// A claim request for `worker`.
fn req(
    worker: &str,
    max: u32,
    lease_ttl: Duration,
    only_job: Option<JobId>,
    max_attempts: u32,
) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.to_owned(),
        max,
        lease_ttl,
        only_job,
        max_attempts,
    }
}

async fn claim_all(s: &dyn Storage, worker: &str, ttl: Duration) -> Vec<ClaimedTask> {
    s.claim_tasks(&req(worker, 100, ttl, None, ATTEMPTS))
        .await
        .unwrap()
}

async fn claim_one(s: &dyn Storage, worker: &str, ttl: Duration) -> ClaimedTask {
    let mut claimed = s
        .claim_tasks(&req(worker, 1, ttl, None, ATTEMPTS))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "expected one runnable task");
    claimed.remove(0)
}

async fn task_status(s: &dyn Storage, job: JobId) -> Vec<TaskStatus> {
    let details = s.get_job(job).await.unwrap();
    details.tasks.iter().map(|t| t.status).collect()
}

async fn all_candles(s: &dyn Storage, symbol: &str, adjusted: bool) -> Vec<Candle> {
    let page = s
        .candles(&CandleQuery {
            symbol: sym(symbol),
            timeframe: tf(),
            adjusted,
            range: job_range(),
            limit: CandleQuery::MAX_LIMIT,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(page.next_cursor, None);
    page.candles
}

fn assert_lease_lost(result: Result<impl std::fmt::Debug, Error>, lease: &Lease) {
    match result {
        Err(Error::LeaseLost { task_id }) => assert_eq!(task_id, lease.task_id),
        other => panic!("expected LeaseLost, got {other:?}"),
    }
}

pub(crate) async fn creates_a_job_with_one_task_per_symbol(s: &dyn Storage) {
    let created = s
        .create_job(&spec(&["MSFT", "AAPL", "X:BTCUSD"]), None)
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(created.job.status, JobStatus::Queued);
    let details = s.get_job(created.job.id).await.unwrap();
    assert_eq!(details.job, created.job);
    let symbols: Vec<&str> = details
        .tasks
        .iter()
        .map(|t| t.symbol().unwrap().as_str())
        .collect();
    assert_eq!(symbols, ["MSFT", "AAPL", "X:BTCUSD"]);
    for task in &details.tasks {
        assert_eq!(task.status, TaskStatus::Queued);
        assert_eq!(task.job_id, created.job.id);
        assert_eq!((task.attempts, task.candles_stored, task.pages), (0, 0, 0));
        assert_eq!(task.checkpoint, None);
    }
    assert_eq!(details.progress.symbols_total, 3);
    assert_eq!(details.progress.symbols_queued, 3);
    assert_eq!(details.progress.percent, 0.0);

    let unknown = JobId::new();
    match s.get_job(unknown).await {
        Err(Error::NotFound { what }) => assert!(what.contains(&unknown.to_string()), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    s.ping().await.unwrap();
}

pub(crate) async fn idempotency_key_returns_the_same_job(s: &dyn Storage) {
    let spec = spec(&["AAPL", "MSFT"]);
    let first = s.create_job(&spec, Some("key-1")).await.unwrap();
    assert!(first.created);
    let again = s.create_job(&spec, Some("key-1")).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.job, first.job);

    // Concurrent requests with one key create one job.
    let other = spec_with(&["IBM"], false);
    let results =
        futures::future::join_all((0..4).map(|_| s.create_job(&other, Some("key-2")))).await;
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(results.iter().filter(|r| r.created).count(), 1);
    assert!(results.iter().all(|r| r.job.id == results[0].job.id));

    // The same key for another spec is a conflict; no key means a new job every time.
    assert!(matches!(
        s.create_job(&other, Some("key-1")).await,
        Err(Error::Conflict(_))
    ));
    let a = s.create_job(&spec, None).await.unwrap();
    let b = s.create_job(&spec, None).await.unwrap();
    assert!(a.created && b.created && a.job.id != b.job.id);
    assert_eq!(s.list_jobs(100, None).await.unwrap().len(), 4);
    assert_eq!(s.get_job(results[0].job.id).await.unwrap().tasks.len(), 1);
}

pub(crate) async fn same_page_twice_stores_nothing_new(s: &dyn Storage) {
    let job = create(s, &["AAPL"]).await;
    let c = claim_one(s, "w1", LONG).await;
    let page = bars("AAPL", 0, 500);
    let first = s
        .ingest_page(&c.lease, &page, minute(499), Fetched::default())
        .await
        .unwrap();
    assert_eq!(
        (first.inserted, first.updated, first.unchanged),
        (500, 0, 0)
    );
    assert!(!first.job_cancelled);
    let second = s
        .ingest_page(&c.lease, &page, minute(499), Fetched::default())
        .await
        .unwrap();
    assert_eq!(
        (second.inserted, second.updated, second.unchanged),
        (0, 0, 500)
    );

    let task = &s.get_job(job).await.unwrap().tasks[0];
    assert_eq!(task.candles_fetched, 1000);
    assert_eq!(task.candles_stored, 500);
    assert_eq!(task.pages, 2);
    assert_eq!(task.checkpoint, Some(minute(499)));
    assert_eq!(all_candles(s, "AAPL", true).await, page);
}

/// Pages of sizes around the backends' statement sizes (SQLite writes a page in statements of
/// 3,640 rows and then powers of two) are stored whole, each row once, with its values.
pub(crate) async fn pages_of_any_size_are_stored_whole(s: &dyn Storage) {
    let job = create(s, &["AAPL"]).await;
    let c = claim_one(s, "w1", LONG).await;
    let mut start = 0;
    let mut expected = Vec::new();
    for n in [1, 2, 7, 13, 3_639, 3_640, 3_641, 7_281, 10_000] {
        let page = bars("AAPL", start, n);
        let outcome = s
            .ingest_page(&c.lease, &page, minute(start + n - 1), Fetched::default())
            .await
            .unwrap();
        assert_eq!(
            (outcome.inserted, outcome.updated, outcome.unchanged),
            (n as u64, 0, 0),
            "a page of {n}"
        );
        expected.extend(page);
        start += n;
    }
    let task = &s.get_job(job).await.unwrap().tasks[0];
    assert_eq!(task.candles_stored, start as u64);
    assert_eq!(all_candles(s, "AAPL", true).await, expected);
}

/// Creates a job of one symbol, claims it and stores one page of `n` candles.
pub(crate) async fn store_one_page(s: &dyn Storage, n: i64) {
    create(s, &["AAPL"]).await;
    let c = claim_one(s, "w1", LONG).await;
    s.ingest_page(
        &c.lease,
        &bars("AAPL", 0, n),
        minute(n - 1),
        Fetched::default(),
    )
    .await
    .unwrap();
}

pub(crate) async fn a_changed_close_counts_as_one_update(s: &dyn Storage) {
    let job = create(s, &["AAPL"]).await;
    let c = claim_one(s, "w1", LONG).await;
    let mut page = bars("AAPL", 0, 100);
    s.ingest_page(&c.lease, &page, minute(99), Fetched::default())
        .await
        .unwrap();
    page[42] = bar("AAPL", 42, 1234.5);
    let outcome = s
        .ingest_page(&c.lease, &page, minute(99), Fetched::default())
        .await
        .unwrap();
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (0, 1, 99)
    );
    assert_eq!(outcome.stored(), 1);
    let stored = all_candles(s, "AAPL", true).await;
    assert_eq!(stored[42].close(), 1234.5);
    assert_eq!(stored, page);
    let task = &s.get_job(job).await.unwrap().tasks[0];
    assert_eq!(task.candles_stored, 101);

    // A value that appears (vwap from none to some) is a change too; the checkpoint never
    // moves backwards.
    let mut fixed = bar("AAPL", 0, page[0].close());
    fixed = Candle::new(
        fixed.symbol().clone(),
        tf(),
        fixed.ts(),
        Ohlcv {
            vwap: Some(7.0),
            ..*fixed.values()
        },
    )
    .unwrap();
    let outcome = s
        .ingest_page(&c.lease, &[fixed.clone()], minute(0), Fetched::default())
        .await
        .unwrap();
    assert_eq!((outcome.inserted, outcome.updated), (0, 1));
    let task = &s.get_job(job).await.unwrap().tasks[0];
    assert_eq!(task.checkpoint, Some(minute(99)));

    // A vwap that is absent (Flat Files have none) keeps the stored one: with the other values
    // equal that is no change, and with another close only the close changes.
    let without = |close: f64| {
        Candle::new(
            fixed.symbol().clone(),
            tf(),
            fixed.ts(),
            Ohlcv {
                vwap: None,
                close,
                ..*fixed.values()
            },
        )
        .unwrap()
    };
    let outcome = s
        .ingest_page(
            &c.lease,
            &[without(fixed.close())],
            minute(0),
            Fetched::default(),
        )
        .await
        .unwrap();
    assert_eq!((outcome.updated, outcome.unchanged), (0, 1));
    let outcome = s
        .ingest_page(&c.lease, &[without(99.0)], minute(0), Fetched::default())
        .await
        .unwrap();
    assert_eq!(outcome.updated, 1);
    let first = all_candles(s, "AAPL", true).await.remove(0);
    assert_eq!((first.close(), first.vwap()), (99.0, Some(7.0)));
}

pub(crate) async fn repeats_within_a_page_count_once_and_the_last_wins(s: &dyn Storage) {
    create(s, &["AAPL"]).await;
    let c = claim_one(s, "w1", LONG).await;
    let mut page = bars("AAPL", 0, 10);
    page.push(bar("AAPL", 3, 77.0));
    page.reverse();
    page.push(bar("AAPL", 5, 55.0));
    let outcome = s
        .ingest_page(&c.lease, &page, minute(9), Fetched::default())
        .await
        .unwrap();
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (10, 0, 0)
    );
    let stored = all_candles(s, "AAPL", true).await;
    assert_eq!(stored.len(), 10);
    assert_eq!(
        stored[3].close(),
        100.5 + 3.0,
        "the later one of minute 3 wins"
    );
    assert_eq!(stored[5].close(), 55.0);
    assert!(stored.windows(2).all(|w| w[0].ts() < w[1].ts()));
}

pub(crate) async fn a_page_of_another_symbol_is_rejected(s: &dyn Storage) {
    let job = create(s, &["AAPL"]).await;
    let c = claim_one(s, "w1", LONG).await;
    let mut page = bars("AAPL", 0, 5);
    page.extend(bars("MSFT", 5, 1));
    assert!(matches!(
        s.ingest_page(&c.lease, &page, minute(5), Fetched::default())
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(all_candles(s, "AAPL", true).await.is_empty());
    assert_eq!(s.get_job(job).await.unwrap().tasks[0].pages, 0);
}

pub(crate) async fn a_write_after_the_lease_expired_is_rejected(s: &dyn Storage) {
    let job = create(s, &["AAPL"]).await;
    let c = claim_one(s, "w1", EXPIRED).await;
    let page = bars("AAPL", 0, 50);
    assert_lease_lost(
        s.ingest_page(&c.lease, &page, minute(49), Fetched::default())
            .await,
        &c.lease,
    );
    assert_lease_lost(s.complete_task(&c.lease, &[job_range()]).await, &c.lease);
    assert_lease_lost(s.fail_task(&c.lease, "x", None, 3).await, &c.lease);
    assert_lease_lost(s.cancel_task(&c.lease, "x").await, &c.lease);

    // Nothing changed.
    assert!(all_candles(s, "AAPL", true).await.is_empty());
    let details = s.get_job(job).await.unwrap();
    let task = &details.tasks[0];
    assert_eq!(
        (task.candles_fetched, task.candles_stored, task.pages),
        (0, 0, 0)
    );
    assert_eq!(task.checkpoint, None);
    assert_eq!(task.status, TaskStatus::Running);
    assert!(s
        .coverage(&sym("AAPL"), tf(), true)
        .await
        .unwrap()
        .is_empty());

    // Another worker reclaims it; the first worker's lease stays dead even though the task
    // runs again (fencing token), while the new lease works.
    let again = claim_one(s, "w2", LONG).await;
    assert_eq!(again.task.id, c.task.id);
    assert!(again.lease.token > c.lease.token);
    assert_lease_lost(
        s.ingest_page(&c.lease, &page, minute(49), Fetched::default())
            .await,
        &c.lease,
    );
    let stale = Lease {
        worker_id: "w2".into(),
        ..c.lease.clone()
    };
    assert_lease_lost(
        s.ingest_page(&stale, &page, minute(49), Fetched::default())
            .await,
        &stale,
    );
    let outcome = s
        .ingest_page(&again.lease, &page, minute(49), Fetched::default())
        .await
        .unwrap();
    assert_eq!(outcome.inserted, 50);
}

pub(crate) async fn concurrent_claims_never_share_a_task(s: &dyn Storage) {
    let symbols: Vec<String> = (0..20).map(|i| format!("S{i}")).collect();
    let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
    create(s, &symbols).await;
    let workers: Vec<String> = (0..8).map(|i| format!("worker-{i}")).collect();
    let requests: Vec<ClaimRequest> = workers
        .iter()
        .map(|w| req(w, 3, LONG, None, ATTEMPTS))
        .collect();
    let claims = futures::future::join_all(requests.iter().map(|r| s.claim_tasks(r))).await;
    let mut seen = HashSet::new();
    let mut total = 0;
    for (worker, claimed) in workers.iter().zip(claims) {
        let claimed = claimed.unwrap();
        assert!(claimed.len() <= 3);
        for c in claimed {
            assert_eq!(&c.lease.worker_id, worker);
            assert_eq!(c.task.worker_id.as_deref(), Some(worker.as_str()));
            assert!(seen.insert(c.task.id), "task {} claimed twice", c.task.id);
            total += 1;
        }
    }
    assert_eq!(total, 20);
    assert!(s
        .claim_tasks(&req("late", 5, LONG, None, ATTEMPTS))
        .await
        .unwrap()
        .is_empty());
}

pub(crate) async fn a_claim_for_one_job_takes_only_its_tasks(s: &dyn Storage) {
    let older = create(s, &["AAPL", "MSFT"]).await;
    let mine = create(s, &["NVDA", "TSLA"]).await;
    let claimed = s
        .claim_tasks(&req("w1", 10, LONG, Some(mine), ATTEMPTS))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed
        .iter()
        .all(|c| c.job.id == mine && c.task.job_id == mine));
    assert!(s
        .claim_tasks(&req("w1", 10, LONG, Some(mine), ATTEMPTS))
        .await
        .unwrap()
        .is_empty());
    // The older job's tasks were left for others.
    assert_eq!(
        task_status(s, older).await,
        [TaskStatus::Queued, TaskStatus::Queued]
    );
    let rest = s
        .claim_tasks(&req("w2", 10, LONG, None, ATTEMPTS))
        .await
        .unwrap();
    assert!(rest.len() == 2 && rest.iter().all(|c| c.job.id == older));
}

pub(crate) async fn an_expired_lease_is_reclaimed(s: &dyn Storage) {
    let job = create(s, &["AAPL"]).await;
    let first = claim_one(s, "w1", EXPIRED).await;
    assert_eq!(first.task.attempts, 1);
    assert_eq!(first.job.status, JobStatus::Running);
    let second = claim_one(s, "w2", LONG).await;
    assert_eq!(second.task.id, first.task.id);
    assert_eq!(second.task.attempts, 2);
    assert_eq!(second.lease.worker_id, "w2");
    assert!(second.lease.token > first.lease.token);

    // The first worker learns that it lost the lease; the second keeps it.
    let report = s
        .heartbeat("w1", std::slice::from_ref(&first.lease), LONG)
        .await
        .unwrap();
    assert_eq!(report.lost, vec![first.task.id]);
    let report = s
        .heartbeat("w2", std::slice::from_ref(&second.lease), LONG)
        .await
        .unwrap();
    assert!(report.lost.is_empty() && report.cancelled.is_empty());
    // A held lease is not runnable.
    assert!(s
        .claim_tasks(&req("w3", 1, LONG, None, ATTEMPTS))
        .await
        .unwrap()
        .is_empty());
    let details = s.get_job(job).await.unwrap();
    assert_eq!(details.tasks[0].worker_id.as_deref(), Some("w2"));
}

pub(crate) async fn heartbeat_extends_leases_and_reports_cancellation(s: &dyn Storage) {
    let job = create(s, &["AAPL", "MSFT"]).await;
    let claimed = claim_all(s, "w1", LONG).await;
    assert_eq!(claimed.len(), 2);
    let leases: Vec<Lease> = claimed.iter().map(|c| c.lease.clone()).collect();
    let before = s.get_job(job).await.unwrap().tasks[0]
        .lease_expires_at
        .unwrap();
    let report = s.heartbeat("w1", &leases, LONG * 2).await.unwrap();
    assert!(report.lost.is_empty() && report.cancelled.is_empty());
    let after = s.get_job(job).await.unwrap().tasks[0]
        .lease_expires_at
        .unwrap();
    assert!(after > before, "{after} > {before}");

    // A lease presented by another worker id is not that worker's.
    let report = s.heartbeat("w2", &leases[..1], LONG).await.unwrap();
    assert_eq!(report.lost, vec![leases[0].task_id]);

    let cancelled = s.cancel_job(job).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    let report = s.heartbeat("w1", &leases, LONG).await.unwrap();
    let mut ids: Vec<_> = leases.iter().map(|l| l.task_id).collect();
    ids.sort();
    let mut reported = report.cancelled.clone();
    reported.sort();
    assert_eq!(reported, ids);
    assert!(report.lost.is_empty());

    // A page still lands (and says so), then the worker cancels its tasks, keeping the data.
    let outcome = s
        .ingest_page(
            &leases[0],
            &bars(claimed[0].task.symbol().unwrap().as_str(), 0, 3),
            minute(2),
            Fetched::default(),
        )
        .await
        .unwrap();
    assert!(outcome.job_cancelled);
    assert_eq!(outcome.inserted, 3);
    // The job ended when its last running task stopped, and that call says so.
    let (last, rest) = leases.split_last().unwrap();
    for lease in rest {
        let recorded = s.cancel_task(lease, "job cancelled").await.unwrap();
        assert_eq!(recorded.task, TaskStatus::Cancelled);
        assert_eq!(recorded.job_ended, None);
    }
    let recorded = s.cancel_task(last, "job cancelled").await.unwrap();
    assert_eq!(recorded.job_ended, Some(JobStatus::Cancelled));
    let details = s.get_job(job).await.unwrap();
    assert_eq!(details.job.status, JobStatus::Cancelled);
    assert!(details
        .tasks
        .iter()
        .all(|t| t.status == TaskStatus::Cancelled && t.worker_id.is_none()));
    let kept = details
        .tasks
        .iter()
        .find(|t| t.id == leases[0].task_id)
        .unwrap();
    assert_eq!((kept.candles_stored, kept.checkpoint), (3, Some(minute(2))));
    assert_eq!(
        all_candles(s, claimed[0].task.symbol().unwrap().as_str(), true)
            .await
            .len(),
        3
    );
}

pub(crate) async fn cancel_and_retry_follow_the_state_machine(s: &dyn Storage) {
    // Unknown jobs.
    assert!(matches!(
        s.cancel_job(JobId::new()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.retry_job(JobId::new()).await,
        Err(Error::NotFound { .. })
    ));

    // A queued job cancels at once, with all its tasks; cancelling again is illegal.
    let job = create(s, &["AAPL", "MSFT"]).await;
    assert!(
        matches!(s.retry_job(job).await, Err(Error::Conflict(_))),
        "queued -> queued"
    );
    let cancelled = s.cancel_job(job).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(cancelled.finished_at.is_some());
    assert_eq!(task_status(s, job).await, [TaskStatus::Cancelled; 2]);
    match s.cancel_job(job).await {
        Err(Error::Conflict(msg)) => assert!(msg.contains("cancelled"), "{msg}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(s
        .claim_tasks(&req("w1", 10, LONG, None, ATTEMPTS))
        .await
        .unwrap()
        .is_empty());

    // Retry puts it back in the queue.
    let retried = s.retry_job(job).await.unwrap();
    assert_eq!(retried.status, JobStatus::Queued);
    assert_eq!(retried.finished_at, None);
    assert_eq!(task_status(s, job).await, [TaskStatus::Queued; 2]);

    // A running job: retry is illegal; finish it; then neither cancel nor retry applies.
    let claimed = claim_all(s, "w1", LONG).await;
    assert_eq!(claimed.len(), 2);
    assert!(
        matches!(s.retry_job(job).await, Err(Error::Conflict(_))),
        "running -> queued"
    );
    for c in &claimed {
        s.complete_task(&c.lease, &[]).await.unwrap();
    }
    assert_eq!(
        s.get_job(job).await.unwrap().job.status,
        JobStatus::Succeeded
    );
    assert!(matches!(s.cancel_job(job).await, Err(Error::Conflict(_))));
    assert!(matches!(s.retry_job(job).await, Err(Error::Conflict(_))));
}

pub(crate) async fn retry_keeps_checkpoints_and_counters(s: &dyn Storage) {
    let job = create(s, &["AAPL", "MSFT"]).await;
    let claimed = claim_all(s, "w1", LONG).await;
    let (aapl, msft) = if claimed[0].task.symbol().unwrap().as_str() == "AAPL" {
        (&claimed[0], &claimed[1])
    } else {
        (&claimed[1], &claimed[0])
    };
    s.ingest_page(
        &aapl.lease,
        &bars("AAPL", 0, 20),
        minute(19),
        Fetched::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        s.fail_task(&aapl.lease, "upstream said 500", None, 3)
            .await
            .unwrap(),
        Recorded {
            task: TaskStatus::Failed,
            job_ended: None
        }
    );
    assert_eq!(
        s.complete_task(&msft.lease, &[]).await.unwrap().job_ended,
        Some(JobStatus::CompletedWithErrors)
    );
    let details = s.get_job(job).await.unwrap();
    assert_eq!(details.job.status, JobStatus::CompletedWithErrors);

    let retried = s.retry_job(job).await.unwrap();
    assert_eq!(retried.status, JobStatus::Queued);
    let details = s.get_job(job).await.unwrap();
    let task = details
        .tasks
        .iter()
        .find(|t| t.symbol().unwrap().as_str() == "AAPL")
        .unwrap();
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(task.attempts, 0);
    assert_eq!(task.checkpoint, Some(minute(19)));
    assert_eq!(
        (task.candles_stored, task.candles_fetched, task.pages),
        (20, 20, 1)
    );
    let done = details
        .tasks
        .iter()
        .find(|t| t.symbol().unwrap().as_str() == "MSFT")
        .unwrap();
    assert_eq!(
        done.status,
        TaskStatus::Succeeded,
        "succeeded tasks stay done"
    );

    // Only the failed task runs again.
    let again = claim_all(s, "w2", LONG).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].task.id, aapl.task.id);
    assert_eq!(again[0].task.attempts, 1);
    assert_eq!(again[0].job.status, JobStatus::Running);
    s.complete_task(&again[0].lease, &[]).await.unwrap();
    assert_eq!(
        s.get_job(job).await.unwrap().job.status,
        JobStatus::Succeeded
    );
}

pub(crate) async fn jobs_are_counted_by_status(s: &dyn Storage) {
    assert!(s.count_jobs().await.unwrap().is_empty());
    let a = create(s, &["AAPL"]).await;
    create(s, &["MSFT"]).await;
    create(s, &["NVDA"]).await;
    s.cancel_job(a).await.unwrap();
    claim_one(s, "w1", LONG).await;
    let counts = s.count_jobs().await.unwrap();
    let get = |status| {
        counts
            .iter()
            .find(|(st, _)| *st == status)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(get(JobStatus::Cancelled), 1);
    assert_eq!(get(JobStatus::Running), 1);
    assert_eq!(get(JobStatus::Queued), 1);
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 3);
}

pub(crate) async fn recent_jobs_are_ordered_limited_and_filtered(s: &dyn Storage) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(s, &[&format!("S{i}")]).await);
    }
    let listed = s.list_jobs(3, None).await.unwrap();
    let got: Vec<JobId> = listed.iter().map(|j| j.job.id).collect();
    assert_eq!(got, [ids[4], ids[3], ids[2]]);
    assert_eq!(s.list_jobs(100, None).await.unwrap().len(), 5);
    assert!(s.list_jobs(0, None).await.unwrap().is_empty());

    s.cancel_job(ids[1]).await.unwrap();
    s.cancel_job(ids[3]).await.unwrap();
    let cancelled = s.list_jobs(10, Some(JobStatus::Cancelled)).await.unwrap();
    let got: Vec<JobId> = cancelled.iter().map(|j| j.job.id).collect();
    assert_eq!(got, [ids[3], ids[1]]);
    let queued = s.list_jobs(2, Some(JobStatus::Queued)).await.unwrap();
    let got: Vec<JobId> = queued.iter().map(|j| j.job.id).collect();
    assert_eq!(got, [ids[4], ids[2]]);
    assert!(s
        .list_jobs(10, Some(JobStatus::Succeeded))
        .await
        .unwrap()
        .is_empty());
}

pub(crate) async fn listed_progress_matches_the_job_details(s: &dyn Storage) {
    let job = create(s, &["AAPL", "MSFT", "IBM"]).await;
    let claimed = claim_all(s, "w1", LONG).await;
    s.ingest_page(
        &claimed[0].lease,
        &bars(claimed[0].task.symbol().unwrap().as_str(), 0, 30),
        minute(29),
        Fetched::default(),
    )
    .await
    .unwrap();
    s.ingest_page(
        &claimed[1].lease,
        &bars(claimed[1].task.symbol().unwrap().as_str(), 0, 10),
        minute(9),
        Fetched::default(),
    )
    .await
    .unwrap();
    s.complete_task(&claimed[1].lease, &[]).await.unwrap();
    s.fail_task(&claimed[2].lease, "boom", None, 1)
        .await
        .unwrap();

    let details = s.get_job(job).await.unwrap();
    let summary = s.list_jobs(1, None).await.unwrap().remove(0);
    assert_eq!(summary.job, details.job);
    let (a, b) = (&summary.progress, &details.progress);
    assert_eq!(
        (
            a.symbols_total,
            a.symbols_done,
            a.symbols_failed,
            a.symbols_running,
            a.symbols_queued
        ),
        (3, 1, 1, 1, 0)
    );
    assert_eq!(
        (
            a.symbols_total,
            a.symbols_done,
            a.symbols_failed,
            a.symbols_running
        ),
        (
            b.symbols_total,
            b.symbols_done,
            b.symbols_failed,
            b.symbols_running
        )
    );
    assert_eq!((a.candles_stored, a.candles_fetched, a.pages), (40, 40, 2));
    assert_eq!(
        (a.candles_stored, a.candles_fetched, a.pages),
        (b.candles_stored, b.candles_fetched, b.pages)
    );
    assert!(a.percent > 100.0 / 3.0 && a.percent < 50.0, "{}", a.percent);
    assert!(
        (a.percent - b.percent).abs() < 1e-9,
        "{} vs {}",
        a.percent,
        b.percent
    );
}

pub(crate) async fn keyset_pagination_returns_every_candle_once(s: &dyn Storage) {
    let spec = spec_with(&["AAPL"], true);
    s.create_job(&spec, None).await.unwrap();
    s.create_job(&spec_with(&["AAPL"], false), None)
        .await
        .unwrap();
    let claimed = claim_all(s, "w1", LONG).await;
    assert_eq!(claimed.len(), 2);
    // Two pages with a gap between them, in the adjusted series; other values unadjusted.
    let mut expected = bars("AAPL", 0, 300);
    expected.extend(bars("AAPL", 1000, 211));
    for c in &claimed {
        if c.job.spec.adjusted() {
            s.ingest_page(&c.lease, &expected[..300], minute(299), Fetched::default())
                .await
                .unwrap();
            s.ingest_page(&c.lease, &expected[300..], minute(1210), Fetched::default())
                .await
                .unwrap();
        } else {
            let other: Vec<Candle> = (0..2000).map(|i| bar("AAPL", i, -1.0)).collect();
            s.ingest_page(&c.lease, &other, minute(1999), Fetched::default())
                .await
                .unwrap();
        }
    }
    let range = DateRange::from_instants(minute(0), minute(1210)).unwrap();
    for limit in [1, 7, 100, 511, 1000] {
        let mut got: Vec<Candle> = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = s
                .candles(&CandleQuery {
                    symbol: sym("AAPL"),
                    timeframe: tf(),
                    adjusted: true,
                    range,
                    limit,
                    after,
                })
                .await
                .unwrap();
            pages += 1;
            assert!(page.candles.len() <= limit as usize);
            got.extend(page.candles);
            match page.next_cursor {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
            assert!(pages <= 1000, "pagination does not end");
        }
        assert_eq!(got, expected, "limit {limit}");
        assert_eq!(
            pages,
            expected.len().div_ceil(limit as usize).max(1),
            "limit {limit}"
        );
    }
    // A range's ends are inclusive; an unknown series is empty; a zero limit is refused.
    let page = s
        .candles(&CandleQuery {
            symbol: sym("AAPL"),
            timeframe: tf(),
            adjusted: true,
            range: DateRange::from_instants(minute(10), minute(19)).unwrap(),
            limit: 100,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(page.candles, expected[10..20]);
    let mut unknown = CandleQuery {
        symbol: sym("ZZZZ"),
        timeframe: tf(),
        adjusted: true,
        range,
        limit: 10,
        after: None,
    };
    assert!(s.candles(&unknown).await.unwrap().candles.is_empty());
    unknown.limit = 0;
    assert!(matches!(
        s.candles(&unknown).await,
        Err(Error::InvalidInput(_))
    ));
}

pub(crate) async fn coverage_merges_adjacent_and_overlapping_intervals(s: &dyn Storage) {
    let r = |a: i64, b: i64| DateRange::from_instants(minute(a), minute(b)).unwrap();
    let ms = TimeDelta::milliseconds(1);
    for covered in [
        vec![r(0, 10)],
        vec![r(5, 20), r(100, 110)],
        // Adjacent: starts one millisecond after the end of r(100, 110).
        vec![DateRange::from_instants(minute(110) + ms, minute(120)).unwrap()],
        vec![r(300, 400)],
    ] {
        s.create_job(&spec(&["AAPL"]), None).await.unwrap();
        let c = claim_one(s, "w1", LONG).await;
        s.complete_task(&c.lease, &covered).await.unwrap();
    }
    assert_eq!(
        s.coverage(&sym("AAPL"), tf(), true).await.unwrap(),
        vec![r(0, 20), r(100, 120), r(300, 400)]
    );
    // Another series (unadjusted) has its own coverage.
    assert!(s
        .coverage(&sym("AAPL"), tf(), false)
        .await
        .unwrap()
        .is_empty());
    s.create_job(&spec_with(&["AAPL"], false), None)
        .await
        .unwrap();
    let c = claim_one(s, "w1", LONG).await;
    s.complete_task(&c.lease, &[r(50, 60), r(55, 70)])
        .await
        .unwrap();
    assert_eq!(
        s.coverage(&sym("AAPL"), tf(), false).await.unwrap(),
        vec![r(50, 70)]
    );
    // What a `missing` backfill would fetch.
    let gaps = r(0, 400).subtract(&s.coverage(&sym("AAPL"), tf(), true).await.unwrap());
    assert_eq!(gaps.len(), 2);
}

pub(crate) async fn a_transient_failure_waits_for_its_retry_time(s: &dyn Storage) {
    let job = create(s, &["AAPL"]).await;
    let c = claim_one(s, "w1", LONG).await;
    let past = Utc::now() - TimeDelta::seconds(1);
    let recorded = s.fail_task(&c.lease, "429", Some(past), 3).await.unwrap();
    assert_eq!(recorded.task, TaskStatus::Queued);
    assert_eq!(recorded.job_ended, None);
    assert_lease_lost(
        s.ingest_page(&c.lease, &[], minute(0), Fetched::default())
            .await,
        &c.lease,
    );
    // Due: claimable at once.
    let c = claim_one(s, "w1", LONG).await;
    assert_eq!(c.task.attempts, 2);
    assert_eq!(c.task.last_error.as_deref(), Some("429"));

    let later = Utc::now() + TimeDelta::hours(1);
    let recorded = s.fail_task(&c.lease, "503", Some(later), 3).await.unwrap();
    assert_eq!(recorded.task, TaskStatus::Queued);
    let details = s.get_job(job).await.unwrap();
    let task = &details.tasks[0];
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(task.worker_id, None);
    let next = task.next_attempt_at.unwrap();
    assert!(
        (next - later).num_milliseconds().abs() <= 1,
        "{next} vs {later}"
    );
    assert_eq!(details.job.status, JobStatus::Running);
    // Not due yet: nobody can claim it.
    assert!(s
        .claim_tasks(&req("w2", 10, LONG, None, ATTEMPTS))
        .await
        .unwrap()
        .is_empty());
}

/// A task whose worker dies on every attempt (its lease expires each time) fails after the last
/// attempt instead of being reclaimed for ever, and its job settles.
pub(crate) async fn a_task_whose_worker_always_dies_fails_after_its_last_attempt(s: &dyn Storage) {
    let job = create(s, &["AAPL"]).await;
    for attempt in 1..=3 {
        let c = s
            .claim_tasks(&req("w", 1, EXPIRED, None, 3))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(c.task.attempts, attempt);
    }
    // The third attempt's lease has expired too: nothing is claimable, the task failed.
    assert!(s
        .claim_tasks(&req("w", 1, LONG, None, 3))
        .await
        .unwrap()
        .is_empty());
    let details = s.get_job(job).await.unwrap();
    let task = &details.tasks[0];
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 3);
    assert_eq!(task.worker_id, None);
    let error = task.last_error.as_deref().unwrap();
    assert!(
        error.contains("attempt 3 of 3") && error.contains("lease expired"),
        "{error}"
    );
    assert_eq!(details.job.status, JobStatus::Failed);
    assert!(details.job.finished_at.is_some());
}

pub(crate) async fn max_attempts_leads_to_failed(s: &dyn Storage) {
    let job = create(s, &["AAPL"]).await;
    let past = Utc::now() - TimeDelta::seconds(1);
    let c = claim_one(s, "w1", LONG).await;
    assert_eq!(
        s.fail_task(&c.lease, "timeout", Some(past), 2)
            .await
            .unwrap()
            .task,
        TaskStatus::Queued
    );
    let c = claim_one(s, "w1", LONG).await;
    assert_eq!(c.task.attempts, 2);
    assert_eq!(
        s.fail_task(&c.lease, "timeout again", Some(past), 2)
            .await
            .unwrap(),
        Recorded {
            task: TaskStatus::Failed,
            job_ended: Some(JobStatus::Failed)
        }
    );
    let details = s.get_job(job).await.unwrap();
    assert_eq!(details.tasks[0].status, TaskStatus::Failed);
    assert_eq!(
        details.tasks[0].last_error.as_deref(),
        Some("timeout again")
    );
    assert_eq!(details.tasks[0].next_attempt_at, None);
    assert_eq!(details.job.status, JobStatus::Failed);
    assert!(details.job.finished_at.is_some());
    assert!(s
        .claim_tasks(&req("w1", 1, LONG, None, ATTEMPTS))
        .await
        .unwrap()
        .is_empty());
}

pub(crate) async fn job_status_settles_when_all_tasks_end(s: &dyn Storage) {
    // All succeeded.
    let ok = create(s, &["A", "B", "C"]).await;
    let claimed = claim_all(s, "w1", LONG).await;
    assert_eq!(s.get_job(ok).await.unwrap().job.status, JobStatus::Running);
    for (i, c) in claimed.iter().enumerate() {
        assert_eq!(s.get_job(ok).await.unwrap().job.status, JobStatus::Running);
        let recorded = s.complete_task(&c.lease, &[]).await.unwrap();
        let status = s.get_job(ok).await.unwrap().job.status;
        let expected = if i == 2 {
            JobStatus::Succeeded
        } else {
            JobStatus::Running
        };
        assert_eq!(status, expected);
        assert_eq!(recorded.task, TaskStatus::Succeeded);
        assert_eq!(recorded.job_ended, (i == 2).then_some(expected));
    }
    let details = s.get_job(ok).await.unwrap();
    assert!(details.job.finished_at.is_some() && details.job.started_at.is_some());
    assert_eq!(details.job.error, None);
    assert_eq!(details.progress.percent, 100.0);

    // Some failed.
    let mixed = create(s, &["D", "E"]).await;
    let claimed = claim_all(s, "w1", LONG).await;
    s.complete_task(&claimed[0].lease, &[]).await.unwrap();
    let recorded = s
        .fail_task(&claimed[1].lease, "bad", None, 5)
        .await
        .unwrap();
    assert_eq!(recorded.job_ended, Some(JobStatus::CompletedWithErrors));
    let details = s.get_job(mixed).await.unwrap();
    assert_eq!(details.job.status, JobStatus::CompletedWithErrors);
    assert!(details.job.error.unwrap().contains("1 of 2"));

    // All failed.
    let failed = create(s, &["F"]).await;
    let c = claim_one(s, "w1", LONG).await;
    s.fail_task(&c.lease, "bad", None, 5).await.unwrap();
    assert_eq!(
        s.get_job(failed).await.unwrap().job.status,
        JobStatus::Failed
    );

    // Concurrent completions of the last tasks still settle the job.
    let symbols: Vec<String> = (0..6).map(|i| format!("P{i}")).collect();
    let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let parallel = create(s, &symbols).await;
    let claimed = claim_all(s, "w1", LONG).await;
    assert_eq!(claimed.len(), 6);
    let done =
        futures::future::join_all(claimed.iter().map(|c| s.complete_task(&c.lease, &[]))).await;
    // Exactly one of them saw the job end.
    let ended: Vec<Option<JobStatus>> = done.into_iter().map(|r| r.unwrap().job_ended).collect();
    assert_eq!(
        ended.iter().filter(|e| e.is_some()).collect::<Vec<_>>(),
        [&Some(JobStatus::Succeeded)]
    );
    assert_eq!(
        s.get_job(parallel).await.unwrap().job.status,
        JobStatus::Succeeded
    );
}

pub(crate) async fn release_leases_requeues_at_once(s: &dyn Storage) {
    let job = create(s, &["AAPL", "MSFT"]).await;
    let claimed = claim_all(s, "w1", LONG).await;
    assert_eq!(claimed.len(), 2);
    s.ingest_page(
        &claimed[0].lease,
        &bars(claimed[0].task.symbol().unwrap().as_str(), 0, 5),
        minute(4),
        Fetched::default(),
    )
    .await
    .unwrap();
    assert_eq!(s.release_leases("other").await.unwrap(), 0);
    assert_eq!(s.release_leases("w1").await.unwrap(), 2);
    assert_lease_lost(
        s.ingest_page(&claimed[0].lease, &[], minute(5), Fetched::default())
            .await,
        &claimed[0].lease,
    );
    let details = s.get_job(job).await.unwrap();
    assert!(details
        .tasks
        .iter()
        .all(|t| t.status == TaskStatus::Queued && t.worker_id.is_none() && t.attempts == 0));
    let again = claim_all(s, "w2", LONG).await;
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.task.attempts == 1));
    let resumed = again
        .iter()
        .find(|c| c.task.id == claimed[0].task.id)
        .unwrap();
    assert_eq!(resumed.task.checkpoint, Some(minute(4)));
}

pub(crate) async fn wait_for_work_wakes_on_create(s: &dyn Storage) {
    // Nothing to do: the wait ends by its timeout.
    s.wait_for_work(Duration::from_millis(20)).await.unwrap();
    let (waited, created) = tokio::join!(
        tokio::time::timeout(
            Duration::from_secs(30),
            s.wait_for_work(Duration::from_secs(60))
        ),
        async {
            // Give the waiter time to look for work and start waiting (if it has not, it
            // finds the new job when it looks, which is right too).
            for _ in 0..3 {
                s.ping().await.unwrap();
            }
            s.create_job(&spec(&["AAPL"]), None).await.unwrap()
        }
    );
    waited
        .expect("wait_for_work did not wake up on a new job")
        .unwrap();
    assert!(created.created);
    // Runnable work: returns at once.
    tokio::time::timeout(
        Duration::from_secs(30),
        s.wait_for_work(Duration::from_secs(60)),
    )
    .await
    .expect("runnable work did not end the wait")
    .unwrap();
}

/// A queued job of one symbol, for backend-specific tests.
pub(crate) async fn some_job(s: &dyn Storage) -> JobId {
    create(s, &["AAPL"]).await
}

pub(crate) async fn concurrent_writers_of_one_series_store_each_candle_once(s: &dyn Storage) {
    // Two jobs for the same series, ingesting overlapping pages at the same time.
    s.create_job(&spec(&["AAPL"]), None).await.unwrap();
    s.create_job(&spec(&["AAPL"]), None).await.unwrap();
    let claimed = claim_all(s, "w1", LONG).await;
    assert_eq!(claimed.len(), 2);
    let mut inserted = 0;
    for round in 0..5 {
        let page = bars("AAPL", round * 1000, 1500);
        let (a, b) = tokio::join!(
            s.ingest_page(
                &claimed[0].lease,
                &page,
                minute(round * 1000 + 1499),
                Fetched::default()
            ),
            s.ingest_page(
                &claimed[1].lease,
                &page,
                minute(round * 1000 + 1499),
                Fetched::default()
            ),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.updated + b.updated, 0);
        assert_eq!(a.inserted + a.unchanged, 1500);
        assert_eq!(b.inserted + b.unchanged, 1500);
        inserted += a.inserted + b.inserted;
    }
    assert_eq!(inserted, 5500, "each candle is new exactly once");
    assert_eq!(all_candles(s, "AAPL", true).await, bars("AAPL", 0, 5500));
}

/// `s` marks the jobs it creates as simulated, `real` (the same database) does not.
pub(crate) async fn jobs_of_a_demo_handle_say_they_are_simulated(
    s: &dyn Storage,
    real: &dyn Storage,
) {
    let demo = create(s, &["AAPL"]).await;
    let other = create(real, &["MSFT"]).await;
    assert!(s.get_job(demo).await.unwrap().job.simulated);
    assert!(
        real.get_job(demo).await.unwrap().job.simulated,
        "the mark is stored"
    );
    assert!(!s.get_job(other).await.unwrap().job.simulated);
    let listed = real.list_jobs(10, None).await.unwrap();
    let flags: Vec<bool> = listed.iter().map(|j| j.job.simulated).collect();
    assert_eq!(flags, [false, true]);
}

// ---------------------------------------------------------------------------------------------
// Day tasks (the bulk sources).

fn day(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

/// A job of the flatfiles source over 2024-01-02 (a Tuesday) to 2024-01-04, raw minute bars, of
/// the whole market (`None`) or of `symbols`.
fn bulk_spec(symbols: Option<&[&str]>, mode: BackfillMode) -> JobSpec {
    JobSpec::with_source(
        symbols.map(|list| list.iter().map(|s| sym(s)).collect()),
        tf(),
        DateRange::new(
            backfill_domain::RangeBound::parse("2024-01-02").unwrap(),
            backfill_domain::RangeBound::parse("2024-01-04").unwrap(),
        )
        .unwrap(),
        false,
        mode,
        backfill_domain::Chosen {
            source: backfill_domain::Source::FlatFiles,
            reason: "asked for: flatfiles".to_owned(),
        },
    )
    .unwrap()
}

/// A raw one-minute bar of `symbol` at minute `i` of the New York day `d`.
fn day_bar(symbol: &str, d: &str, i: i64, close: f64) -> Candle {
    let start = DateRange::ny_day(day(d)).from();
    Candle::new(
        sym(symbol),
        tf(),
        start + TimeDelta::minutes(i),
        Ohlcv {
            open: 10.0,
            high: 12.0,
            low: 9.0,
            close,
            volume: 100.0 + i as f64,
            vwap: None,
            trades: Some(7),
        },
    )
    .unwrap()
}

fn progress(rows_done: u64, file_offset: u64) -> DayProgress {
    DayProgress {
        rows_done,
        file_offset,
        file_size: Some(1_000),
        file_etag: Some("\"e1\"".to_owned()),
        fetched: Fetched {
            requests: 1,
            bytes: 250,
        },
    }
}

async fn raw_candles(s: &dyn Storage, symbol: &str) -> Vec<Candle> {
    all_candles(s, symbol, false).await
}

pub(crate) async fn a_bulk_job_has_one_task_per_weekday(s: &dyn Storage) {
    let created = s
        .create_job(&bulk_spec(None, BackfillMode::Missing), None)
        .await
        .unwrap();
    assert!(created.created);
    let details = s.get_job(created.job.id).await.unwrap();
    assert_eq!(
        details.job.spec.source(),
        backfill_domain::Source::FlatFiles
    );
    assert_eq!(details.job.spec.universe(), backfill_domain::Universe::All);
    assert_eq!(
        details.job.spec.source_reason(),
        Some("asked for: flatfiles")
    );
    let units: Vec<TaskUnit> = details.tasks.iter().map(|t| t.unit.clone()).collect();
    assert_eq!(
        units,
        [
            TaskUnit::Day(day("2024-01-02")),
            TaskUnit::Day(day("2024-01-03")),
            TaskUnit::Day(day("2024-01-04"))
        ]
    );
    assert_eq!(details.progress.symbols_total, 3);
    // The same spec again under a key is the same job; listing shows it with its progress.
    let keyed = s
        .create_job(&bulk_spec(Some(&["AAPL"]), BackfillMode::Full), Some("k"))
        .await
        .unwrap();
    let again = s
        .create_job(&bulk_spec(Some(&["AAPL"]), BackfillMode::Full), Some("k"))
        .await
        .unwrap();
    assert_eq!((again.created, again.job.id), (false, keyed.job.id));
    assert_eq!(again.job.spec.symbols(), [sym("AAPL")]);
    let listed = s.list_jobs(10, None).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|j| j.progress.symbols_total == 3));
}

pub(crate) async fn day_rows_of_many_symbols_are_stored_fenced_and_counted(s: &dyn Storage) {
    let job = s
        .create_job(&bulk_spec(None, BackfillMode::Missing), None)
        .await
        .unwrap()
        .job
        .id;
    let c = claim_one(s, "w1", LONG).await;
    assert_eq!(c.task.unit, TaskUnit::Day(day("2024-01-02")));
    // A day task's rows go through ingest_rows, not ingest_page.
    assert!(matches!(
        s.ingest_page(&c.lease, &[], minute(0), Fetched::default())
            .await,
        Err(Error::InvalidInput(_))
    ));
    let rows = vec![
        day_bar("AAPL", "2024-01-02", 0, 1.0),
        day_bar("AAPL", "2024-01-02", 1, 2.0),
        day_bar("MSFT", "2024-01-02", 0, 3.0),
        day_bar("ZZZ.A", "2024-01-02", 5, 4.0),
    ];
    let first = s
        .ingest_rows(&c.lease, &rows, progress(4, 400))
        .await
        .unwrap();
    assert_eq!((first.inserted, first.updated, first.unchanged), (4, 0, 0));
    assert_eq!(raw_candles(s, "AAPL").await, rows[..2]);
    assert_eq!(raw_candles(s, "MSFT").await, rows[2..3]);
    assert_eq!(raw_candles(s, "ZZZ.A").await, rows[3..]);
    assert!(all_candles(s, "AAPL", true).await.is_empty(), "raw only");
    // Again with one change and a new row: counted as such, progress never goes back.
    let mut again = rows.clone();
    again[1] = day_bar("AAPL", "2024-01-02", 1, 2.5);
    again.push(day_bar("MSFT", "2024-01-02", 1, 3.5));
    let second = s
        .ingest_rows(&c.lease, &again, progress(3, 300))
        .await
        .unwrap();
    assert_eq!(
        (second.inserted, second.updated, second.unchanged),
        (1, 1, 3)
    );
    let details = s.get_job(job).await.unwrap();
    let task = &details.tasks[0];
    assert_eq!((task.rows_done, task.file_offset), (4, 400));
    assert_eq!(task.file_size, Some(1_000));
    assert_eq!(task.file_etag.as_deref(), Some("\"e1\""));
    assert_eq!((task.requests, task.bytes, task.pages), (2, 500, 2));
    assert_eq!((task.candles_fetched, task.candles_stored), (9, 6));
    // Progress: 0.4 of the first of three days.
    assert!((details.progress.percent - 40.0 / 3.0).abs() < 1e-6);
    let listed = s.list_jobs(1, None).await.unwrap().remove(0);
    assert!((listed.progress.percent - details.progress.percent).abs() < 1e-6);
    assert_eq!((listed.progress.requests, listed.progress.bytes), (2, 500));
    // A candle of another timeframe is refused; a lost lease writes nothing.
    let daily = Candle::new(
        sym("AAPL"),
        Timeframe::parse("1d").unwrap(),
        DateRange::ny_day(day("2024-01-02")).from(),
        Ohlcv {
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 1.0,
            vwap: None,
            trades: None,
        },
    )
    .unwrap();
    assert!(matches!(
        s.ingest_rows(&c.lease, &[daily], progress(5, 500)).await,
        Err(Error::InvalidInput(_))
    ));
    let stale = Lease {
        token: c.lease.token + 1,
        ..c.lease.clone()
    };
    assert_lease_lost(s.ingest_rows(&stale, &rows, progress(9, 900)).await, &stale);
    // A symbol task's candles do not go through ingest_rows.
    let rest = create(s, &["AAPL"]).await;
    let symbol_task = s
        .claim_tasks(&req("w2", 1, LONG, Some(rest), ATTEMPTS))
        .await
        .unwrap()
        .remove(0);
    assert!(matches!(
        s.ingest_rows(&symbol_task.lease, &rows, progress(1, 1))
            .await,
        Err(Error::InvalidInput(_))
    ));
}

pub(crate) async fn a_finished_day_covers_its_series_and_records_its_file(s: &dyn Storage) {
    let job = s
        .create_job(&bulk_spec(None, BackfillMode::Missing), None)
        .await
        .unwrap()
        .job
        .id;
    let claimed = claim_all(s, "w1", LONG).await;
    assert_eq!(claimed.len(), 3);
    let day2 = DateRange::ny_day(day("2024-01-02"));
    let rows = [
        day_bar("AAPL", "2024-01-02", 0, 1.0),
        day_bar("MSFT", "2024-01-02", 3, 3.0),
    ];
    s.ingest_rows(&claimed[0].lease, &rows, progress(2, 1_000))
        .await
        .unwrap();
    let file = SourceFile {
        key: "us_stocks_sip/minute_aggs_v1/2024/01/2024-01-02.csv.gz".to_owned(),
        etag: "\"abc\"".to_owned(),
        size: 1_000,
        rows: 2,
    };
    assert_eq!(s.stored_file(&file.key).await.unwrap(), None);
    let recorded = s
        .complete_day(
            &claimed[0].lease,
            &DayCompletion {
                covered: Some((day2, DaySeries::Stored)),
                file: Some(file.clone()),
                note: None,
                fetched: Fetched {
                    requests: 1,
                    bytes: 0,
                },
            },
        )
        .await
        .unwrap();
    assert_eq!(
        recorded,
        Recorded {
            task: TaskStatus::Succeeded,
            job_ended: None
        }
    );
    // Every series with a candle that day now covers the day; the file is recorded.
    for symbol in ["AAPL", "MSFT"] {
        assert_eq!(s.coverage(&sym(symbol), tf(), false).await.unwrap(), [day2]);
    }
    let stored = s.stored_file(&file.key).await.unwrap().unwrap();
    assert_eq!(stored.file, file);
    // The next day: a listed symbol without rows is covered too (the file is the whole truth).
    let day3 = DateRange::ny_day(day("2024-01-03"));
    s.complete_day(
        &claimed[1].lease,
        &DayCompletion {
            covered: Some((day3, DaySeries::Listed(vec![sym("AAPL"), sym("IBM")]))),
            file: None,
            note: None,
            fetched: Fetched::default(),
        },
    )
    .await
    .unwrap();
    let merged = DateRange::from_instants(day2.from(), day3.to()).unwrap();
    assert_eq!(
        s.coverage(&sym("AAPL"), tf(), false).await.unwrap(),
        [merged]
    );
    assert_eq!(s.coverage(&sym("IBM"), tf(), false).await.unwrap(), [day3]);
    assert_eq!(s.coverage(&sym("MSFT"), tf(), false).await.unwrap(), [day2]);
    // A day without a file: a note, no coverage; the job ends with it.
    let recorded = s
        .complete_day(
            &claimed[2].lease,
            &DayCompletion {
                covered: None,
                file: None,
                note: Some("no file for 2024-01-04".to_owned()),
                fetched: Fetched {
                    requests: 1,
                    bytes: 0,
                },
            },
        )
        .await
        .unwrap();
    assert_eq!(recorded.job_ended, Some(JobStatus::Succeeded));
    let details = s.get_job(job).await.unwrap();
    assert_eq!(details.progress.percent, 100.0);
    assert_eq!(
        details.tasks[2].note.as_deref(),
        Some("no file for 2024-01-04")
    );
    assert_eq!(details.tasks[0].file_offset, 1_000);
    assert_eq!(details.progress.requests, 3);
    // A replaced file is recorded with its new ETag.
    let job2 = s
        .create_job(&bulk_spec(None, BackfillMode::Full), None)
        .await
        .unwrap()
        .job
        .id;
    let c = s
        .claim_tasks(&req("w1", 1, LONG, Some(job2), ATTEMPTS))
        .await
        .unwrap()
        .remove(0);
    let replaced = SourceFile {
        etag: "\"def\"".to_owned(),
        ..file.clone()
    };
    s.complete_day(
        &c.lease,
        &DayCompletion {
            covered: Some((day2, DaySeries::Stored)),
            file: Some(replaced.clone()),
            note: None,
            fetched: Fetched::default(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.stored_file(&file.key).await.unwrap().unwrap().file,
        replaced
    );
    // A symbol task does not end with complete_day.
    let rest = create(s, &["AAPL"]).await;
    let symbol_task = s
        .claim_tasks(&req("w2", 1, LONG, Some(rest), ATTEMPTS))
        .await
        .unwrap()
        .remove(0);
    assert!(matches!(
        s.complete_day(
            &symbol_task.lease,
            &DayCompletion {
                covered: None,
                file: None,
                note: None,
                fetched: Fetched::default()
            }
        )
        .await,
        Err(Error::InvalidInput(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Schedules and universes.

fn schedule(name: &str, tickers: Tickers, timeframes: &[&str], trigger: &str) -> ScheduleSpec {
    ScheduleSpec::new(
        Name::parse(name).unwrap(),
        tickers,
        timeframes
            .iter()
            .map(|t| Timeframe::parse(t).unwrap())
            .collect(),
        true,
        None,
        Trigger::parse(trigger).unwrap(),
        3,
    )
    .unwrap()
}

fn listed(symbols: &[&str]) -> Tickers {
    Tickers::Symbols(symbols.iter().map(|s| sym(s)).collect())
}

const NO_FILES: Sources = Sources { flat_files: false };

pub(crate) async fn a_due_time_fires_once_with_a_job_per_timeframe(s: &dyn Storage) {
    let spec = schedule(
        "nightly",
        listed(&["AAPL", "MSFT"]),
        &["1m", "1d"],
        "after_close+30m",
    );
    let created = s.create_schedule(&spec).await.unwrap();
    let first = created.next_due_at.unwrap();
    assert!(first > Utc::now());
    assert_eq!(
        (created.paused, created.runs, created.last_run.clone()),
        (false, 0, None)
    );
    // Not due yet: nothing fires.
    assert!(s
        .fire_due(first - TimeDelta::seconds(1), NO_FILES)
        .await
        .unwrap()
        .is_empty());
    // Due: one run, two jobs (1m and 1d) in missing mode over the look-back.
    let runs = s.fire_due(first, NO_FILES).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].due_at, runs[0].error.clone()), (first, None));
    assert_eq!(runs[0].job_ids.len(), 2);
    for id in &runs[0].job_ids {
        let job = s.get_job(*id).await.unwrap().job;
        assert_eq!(job.spec.mode(), BackfillMode::Missing);
        assert_eq!(job.spec.symbols(), [sym("AAPL"), sym("MSFT")]);
        assert_eq!(
            job.spec.range().to_ny_date(),
            first
                .with_timezone(&chrono_tz::America::New_York)
                .date_naive()
        );
    }
    // Again at the same time (another process, a restart): nothing more.
    assert!(s.fire_due(first, NO_FILES).await.unwrap().is_empty());
    let after = s.get_schedule(spec.name()).await.unwrap();
    assert_eq!(after.runs, 1);
    assert_eq!(after.last_run.unwrap().job_ids, runs[0].job_ids);
    let next = after.next_due_at.unwrap();
    assert!(next > first);
    assert_eq!(s.next_due().await.unwrap(), Some(next));
    assert_eq!(s.list_jobs(10, None).await.unwrap().len(), 2);
}

pub(crate) async fn concurrent_firing_creates_each_run_once(s: &dyn Storage) {
    let spec = schedule("every-second", listed(&["AAPL"]), &["1d"], "* * * * * *");
    let due = s.create_schedule(&spec).await.unwrap().next_due_at.unwrap();
    let later = due + TimeDelta::seconds(2);
    let all = futures::future::join_all((0..6).map(|_| s.fire_due(later, NO_FILES))).await;
    let runs: usize = all.into_iter().map(|r| r.unwrap().len()).sum();
    assert_eq!(
        runs, 1,
        "one run for the latest due time, whatever the callers"
    );
    assert_eq!(s.list_jobs(10, None).await.unwrap().len(), 1);
    let schedule = s.get_schedule(spec.name()).await.unwrap();
    // Missed due times were caught up with one run, for the latest of them.
    assert_eq!(schedule.last_run.unwrap().due_at, later);
    assert!(schedule.next_due_at.unwrap() > later);
}

pub(crate) async fn paused_schedules_do_not_fire_and_resume_after_now(s: &dyn Storage) {
    let spec = schedule("paused", listed(&["AAPL"]), &["1d"], "after_close");
    let due = s.create_schedule(&spec).await.unwrap().next_due_at.unwrap();
    let paused = s.set_paused(spec.name(), true).await.unwrap();
    assert!(paused.paused);
    assert!(s
        .fire_due(due + TimeDelta::days(3), NO_FILES)
        .await
        .unwrap()
        .is_empty());
    let resumed = s.set_paused(spec.name(), false).await.unwrap();
    assert!(!resumed.paused && resumed.next_due_at.unwrap() > Utc::now());
    assert!(matches!(
        s.set_paused(&Name::parse("nope").unwrap(), true).await,
        Err(Error::NotFound { .. })
    ));
}

pub(crate) async fn overlapping_or_duplicate_schedules_are_refused(s: &dyn Storage) {
    s.create_schedule(&schedule(
        "a",
        listed(&["AAPL", "MSFT"]),
        &["1m"],
        "after_close",
    ))
    .await
    .unwrap();
    let err = s
        .create_schedule(&schedule(
            "b",
            listed(&["MSFT"]),
            &["5m", "1m"],
            "after_close",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("MSFT at 1m") && m.contains("schedule a")),
        "{err}"
    );
    let err = s
        .create_schedule(&schedule("a", listed(&["IBM"]), &["1d"], "after_close"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("exists")),
        "{err}"
    );
    // Another timeframe is no overlap; a universe is compared by its symbols.
    s.create_schedule(&schedule("c", listed(&["MSFT"]), &["1d"], "after_close"))
        .await
        .unwrap();
    s.put_universe(&Name::parse("tech").unwrap(), &[sym("AAPL")], "manual")
        .await
        .unwrap();
    let err = s
        .create_schedule(&schedule(
            "d",
            Tickers::Universe(Name::parse("tech").unwrap()),
            &["1m"],
            "after_close",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("AAPL at 1m")),
        "{err}"
    );
    let err = s
        .create_schedule(&schedule(
            "e",
            Tickers::Universe(Name::parse("unknown").unwrap()),
            &["1h"],
            "after_close",
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let names: Vec<String> = s
        .list_schedules()
        .await
        .unwrap()
        .iter()
        .map(|x| x.spec.name().to_string())
        .collect();
    assert_eq!(names, ["a", "c"]);
    s.delete_schedule(&Name::parse("a").unwrap()).await.unwrap();
    assert!(matches!(
        s.delete_schedule(&Name::parse("a").unwrap()).await,
        Err(Error::NotFound { .. })
    ));
}

pub(crate) async fn universes_are_stored_and_runs_read_them_when_due(s: &dyn Storage) {
    let tech = Name::parse("tech").unwrap();
    s.put_universe(&tech, &[sym("AAPL"), sym("MSFT")], "manual")
        .await
        .unwrap();
    let spec = schedule("u", Tickers::Universe(tech.clone()), &["1d"], "* * * * * *");
    let due = s.create_schedule(&spec).await.unwrap().next_due_at.unwrap();
    // Changed before the run: the run takes the universe as it is then.
    let replaced = s
        .put_universe(&tech, &[sym("NVDA")], "reference: market=stocks")
        .await
        .unwrap();
    assert_eq!(replaced.symbols, [sym("NVDA")]);
    let listed = s.list_universes().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].origin, "reference: market=stocks");
    let runs = s.fire_due(due, NO_FILES).await.unwrap();
    let job = s.get_job(runs[0].job_ids[0]).await.unwrap().job;
    assert_eq!(job.spec.symbols(), [sym("NVDA")]);
    // A universe in use cannot go; an empty one cannot be stored.
    assert!(matches!(
        s.delete_universe(&tech).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        s.put_universe(&tech, &[], "manual").await,
        Err(Error::InvalidInput(_))
    ));
    s.delete_schedule(spec.name()).await.unwrap();
    s.delete_universe(&tech).await.unwrap();
    assert!(matches!(
        s.get_universe(&tech).await,
        Err(Error::NotFound { .. })
    ));
}

pub(crate) async fn a_run_that_cannot_make_its_jobs_records_why(s: &dyn Storage) {
    // The whole market's raw minutes need Flat Files, which this server lacks. Due every second
    // (so that due times are now), looking back five days (so that a weekday is in range).
    let spec = ScheduleSpec::new(
        Name::parse("market").unwrap(),
        Tickers::All,
        vec![Timeframe::parse("1m").unwrap()],
        false,
        None,
        Trigger::parse("* * * * * *").unwrap(),
        5,
    )
    .unwrap();
    let due = s.create_schedule(&spec).await.unwrap().next_due_at.unwrap();
    let runs = s.fire_due(due, NO_FILES).await.unwrap();
    assert!(runs[0].job_ids.is_empty());
    assert!(
        runs[0]
            .error
            .as_deref()
            .unwrap()
            .contains("POLYGON_S3_ACCESS_KEY_ID"),
        "{:?}",
        runs[0].error
    );
    // With Flat Files, the next run makes its job over the whole market, a task per weekday.
    let next = s
        .get_schedule(spec.name())
        .await
        .unwrap()
        .next_due_at
        .unwrap();
    let runs = s
        .fire_due(next, Sources { flat_files: true })
        .await
        .unwrap();
    assert_eq!(runs[0].error, None);
    let job = s.get_job(runs[0].job_ids[0]).await.unwrap();
    assert_eq!(job.job.spec.source(), backfill_domain::Source::FlatFiles);
    assert!(!job.tasks.is_empty() && job.tasks.len() <= 5);
}

/// A stored minute series read as hourly and daily bars, page by page, is the whole series
/// resampled at once; an impossible resampling is refused.
pub(crate) async fn resampled_pages_equal_the_whole_series_resampled(s: &dyn Storage) {
    use backfill_domain::{resample, Hours};
    use backfill_storage::{resampled, ResampleQuery};
    s.create_job(&spec(&["AAPL"]), None).await.unwrap();
    let c = claim_one(s, "w1", LONG).await;
    // From 09:30 New York on 2024-01-02 for ten hours, and again the next day from 09:30.
    let mut stored = bars("AAPL", 0, 600);
    stored.extend(bars("AAPL", 1440, 560));
    s.ingest_page(&c.lease, &stored, minute(1999), Fetched::default())
        .await
        .unwrap();
    let hour = Timeframe::parse("1h").unwrap();
    let query = |target: Timeframe, hours: Hours, limit: u32, after| ResampleQuery {
        symbol: sym("AAPL"),
        source: tf(),
        target,
        hours,
        adjusted: true,
        range: job_range(),
        limit,
        after,
    };
    let whole = resample(&stored, tf(), hour, Hours::Extended).unwrap();
    assert!(whole.len() > 20);
    for limit in [1, 3, 7, 1000] {
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = resampled(s, &query(hour, Hours::Extended, limit, after))
                .await
                .unwrap();
            assert!(page.candles.len() <= limit as usize);
            got.extend(page.candles);
            match page.next_cursor {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
            assert!(got.len() <= whole.len(), "pagination does not end");
        }
        assert_eq!(got, whole, "limit {limit}");
    }
    let day = Timeframe::parse("1d").unwrap();
    let daily = resampled(s, &query(day, Hours::Regular, 10, None))
        .await
        .unwrap();
    assert_eq!(
        daily.candles,
        resample(&stored, tf(), day, Hours::Regular).unwrap()
    );
    assert_eq!(daily.candles.len(), 2);
    assert_eq!(daily.next_cursor, None);
    let odd = Timeframe::parse("7m").unwrap();
    assert!(matches!(
        resampled(s, &query(odd, Hours::Extended, 10, None)).await,
        Err(Error::InvalidInput(_))
    ));
}

/// The quality report reads the coverage and every bar, and compares minutes with day bars.
pub(crate) async fn the_quality_report_counts_what_is_stored(s: &dyn Storage) {
    use backfill_storage::{quality, QualityQuery};
    s.create_job(&spec(&["AAPL"]), None).await.unwrap();
    let c = claim_one(s, "w1", LONG).await;
    // 09:30 to 15:59 New York on 2024-01-02, without 10:00-10:09.
    let stored: Vec<Candle> = bars("AAPL", 0, 390)
        .into_iter()
        .filter(|b| !(30..40).contains(&(b.ts() - t0()).num_minutes()))
        .collect();
    s.ingest_page(&c.lease, &stored, minute(389), Fetched::default())
        .await
        .unwrap();
    let covered = DateRange::from_instants(minute(0), minute(389)).unwrap();
    s.complete_task(&c.lease, &[covered]).await.unwrap();
    let report = quality(
        s,
        &QualityQuery {
            symbol: sym("AAPL"),
            timeframe: tf(),
            adjusted: true,
            range: job_range(),
        },
        "2030-01-01T00:00:00Z".parse().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(report.bars, 380);
    assert_eq!(report.covered, vec![covered]);
    assert_eq!(report.first_bar, Some(minute(0)));
    assert_eq!(report.days.covered, 1);
    assert_eq!(report.days.with_bars, 1);
    let gaps = report.session_gaps.unwrap();
    assert_eq!(gaps.regular_minutes, 390);
    assert_eq!(gaps.regular_missing, 10);
    assert_eq!(gaps.longest_gaps[0].from, minute(30));
    assert_eq!(gaps.longest_gaps[0].minutes, 10);
    assert_eq!(report.ohlc.violations, 0);
    // No day bars stored: nothing to compare with.
    assert_eq!(report.day_agreement, None);
}
