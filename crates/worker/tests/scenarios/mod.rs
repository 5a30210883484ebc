//! Scenarios run against each backend. Synchronisation is by progress events and a gate on the
//! market data source, never by sleeping; a deadline only turns a hang into a failure.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backfill_domain::{
    BackfillMode, Candle, DateRange, JobId, JobSpec, JobStatus, ProgressEvent, RangeBound, Symbol,
    TaskStatus, Timeframe,
};
use backfill_polygon::{
    AggregatesRequest, GroupedDay, MarketData, Page, PageCursor, PolygonClient, PolygonConfig,
};
use backfill_polygon_sim::{Fault, RunningSimulator, SimConfig, Simulator};
use backfill_progress::ProgressBus;
use backfill_storage::{CandleQuery, Storage};
use backfill_worker::{Backoff, Worker, WorkerConfig, WorkerDeps, WorkerId};
use secrecy::SecretString;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Db;

mod bulk;
mod splits;
pub(crate) use bulk::*;
pub(crate) use splits::*;

const KEY: &str = "sim-key";
const DEADLINE: Duration = Duration::from_secs(60);

async fn sim(page_size: u64) -> RunningSimulator {
    Simulator::new(
        SimConfig::new()
            .api_key(KEY)
            .max_page_size(page_size)
            .unknown_ticker("NOPE"),
    )
    .spawn("127.0.0.1:0")
    .await
    .unwrap()
}

fn client(sim: &RunningSimulator, key: &str) -> Arc<dyn MarketData> {
    let mut config =
        PolygonConfig::new(SecretString::from(key.to_owned())).with_base_url(sim.base_url());
    config.initial_backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(10);
    config.rate_limit_cooldown = Duration::from_millis(10);
    config.request_timeout = Duration::from_secs(10);
    Arc::new(PolygonClient::new(config).unwrap())
}

/// A market data source that fetches only as many pages as the test allows.
struct Gated {
    inner: Arc<dyn MarketData>,
    permits: Arc<Semaphore>,
}

#[async_trait]
impl MarketData for Gated {
    async fn fetch_page(
        &self,
        request: &AggregatesRequest,
        cursor: Option<PageCursor>,
    ) -> backfill_polygon::Result<Page> {
        self.permits.acquire().await.unwrap().forget();
        self.inner.fetch_page(request, cursor).await
    }

    async fn fetch_grouped(
        &self,
        day: chrono::NaiveDate,
        adjusted: bool,
    ) -> backfill_polygon::Result<GroupedDay> {
        self.permits.acquire().await.unwrap().forget();
        self.inner.fetch_grouped(day, adjusted).await
    }
}

fn gated(inner: Arc<dyn MarketData>) -> (Arc<dyn MarketData>, Arc<Semaphore>) {
    let permits = Arc::new(Semaphore::new(0));
    let market = Arc::new(Gated {
        inner,
        permits: Arc::clone(&permits),
    });
    (market, permits)
}

fn config(name: &str, concurrency: usize, lease_ttl: Duration) -> WorkerConfig {
    let mut c = WorkerConfig::new(WorkerId::generate(name));
    c.concurrency = concurrency;
    c.lease_ttl = lease_ttl;
    c.heartbeat_interval = Duration::from_millis(100);
    c.idle_poll = Duration::from_millis(200);
    c.max_attempts = 3;
    c.retry_backoff = Backoff {
        base: Duration::from_millis(1),
        max: Duration::from_millis(10),
        min: Duration::from_millis(1),
    };
    c.shutdown_grace = Duration::from_secs(5);
    c
}

/// A worker running in the background.
struct Running {
    shutdown: CancellationToken,
    join: JoinHandle<backfill_worker::Result<()>>,
    bus: ProgressBus,
}

fn start(storage: &Arc<dyn Storage>, market: Arc<dyn MarketData>, config: WorkerConfig) -> Running {
    start_with_files(storage, market, None, config)
}

/// A worker that also reads Flat Files, when given a client.
fn start_with_files(
    storage: &Arc<dyn Storage>,
    market: Arc<dyn MarketData>,
    files: Option<Arc<dyn backfill_polygon::FlatFiles>>,
    config: WorkerConfig,
) -> Running {
    let deps = WorkerDeps {
        queue: storage.clone(),
        candles: storage.clone(),
        market,
        files,
    };
    let bus = ProgressBus::new(4096);
    let worker = Worker::new(deps, bus.clone(), config);
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let join = tokio::spawn(async move { worker.run(token).await });
    Running {
        shutdown,
        join,
        bus,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.join.await.unwrap().unwrap();
    }

    /// Like `kill -9`: no shutdown, no released leases; in-flight work is dropped.
    async fn kill(self) {
        self.join.abort();
        assert!(self.join.await.unwrap_err().is_cancelled());
    }
}

/// Events of several workers, tagged with the worker's index.
pub(crate) struct Events(mpsc::UnboundedReceiver<(usize, ProgressEvent)>);

fn events(workers: &[&Running]) -> Events {
    let (tx, rx) = mpsc::unbounded_channel();
    for (i, w) in workers.iter().enumerate() {
        let mut sub = w.bus.subscribe();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(e) = sub.recv().await {
                if tx.send((i, e)).is_err() {
                    break;
                }
            }
        });
    }
    Events(rx)
}

impl Events {
    /// Collects events until `done` says so; fails the test after the deadline.
    async fn until(
        &mut self,
        mut done: impl FnMut(&[(usize, ProgressEvent)]) -> bool,
    ) -> Vec<(usize, ProgressEvent)> {
        let mut seen = Vec::new();
        tokio::time::timeout(DEADLINE, async {
            while !done(&seen) {
                seen.push(self.0.recv().await.expect("workers alive"));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out; events so far: {seen:#?}"));
        seen
    }

    async fn job_finished(&mut self, job: JobId) -> Vec<(usize, ProgressEvent)> {
        self.until(|seen| {
            seen.iter().any(
                |(_, e)| matches!(e, ProgressEvent::JobFinished { job_id, .. } if *job_id == job),
            )
        })
        .await
    }
}

fn count(seen: &[(usize, ProgressEvent)], pred: impl Fn(&(usize, ProgressEvent)) -> bool) -> usize {
    seen.iter().filter(|e| pred(e)).count()
}

fn spec(symbols: &[&str], tf: &str, from: &str, to: &str, mode: BackfillMode) -> JobSpec {
    JobSpec::new(
        symbols.iter().map(|s| Symbol::parse(s).unwrap()).collect(),
        Timeframe::parse(tf).unwrap(),
        DateRange::new(
            RangeBound::parse(from).unwrap(),
            RangeBound::parse(to).unwrap(),
        )
        .unwrap(),
        true,
        mode,
    )
    .unwrap()
}

async fn stored(
    storage: &Arc<dyn Storage>,
    symbol: &Symbol,
    tf: Timeframe,
    range: DateRange,
) -> Vec<Candle> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = storage
            .candles(&CandleQuery {
                symbol: symbol.clone(),
                timeframe: tf,
                adjusted: true,
                range,
                limit: 7_000,
                after,
            })
            .await
            .unwrap();
        all.extend(page.candles);
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return all,
        }
    }
}

/// Checks that storage holds exactly the simulator's candles for every symbol of the spec.
async fn assert_exact(storage: &Arc<dyn Storage>, sim: &RunningSimulator, spec: &JobSpec) -> usize {
    let mut total = 0;
    for symbol in spec.symbols() {
        let expected = sim.expected_candles(symbol, spec.timeframe(), &spec.range(), true);
        let got = stored(storage, symbol, spec.timeframe(), spec.range()).await;
        assert_eq!(got.len(), expected.len(), "{symbol}");
        assert!(
            got == expected,
            "{symbol}: stored candles differ from the simulator's"
        );
        total += expected.len();
    }
    total
}

pub(crate) async fn stores_exactly_the_simulators_candles(db: Db) {
    let sim = sim(500).await;
    let storage = db.open().await;
    let w = start(
        &storage,
        client(&sim, KEY),
        config("w", 4, Duration::from_secs(30)),
    );
    let mut ev = events(&[&w]);
    for spec in [
        // Three New York days across the change to daylight saving time and a weekend.
        spec(
            &["AAPL", "X:BTCUSD", "NOPE"],
            "1m",
            "2024-03-08",
            "2024-03-11",
            BackfillMode::Missing,
        ),
        spec(
            &["AAPL", "BRK.A"],
            "1d",
            "2023-01-01",
            "2023-12-31",
            BackfillMode::Missing,
        ),
        spec(
            &["X:BTCUSD"],
            "4h",
            "2024-01-01",
            "2024-02-15",
            BackfillMode::Missing,
        ),
    ] {
        let job = storage.create_job(&spec, None).await.unwrap().job;
        ev.job_finished(job.id).await;
        let details = storage.get_job(job.id).await.unwrap();
        assert_eq!(details.job.status, JobStatus::Succeeded);
        let total = assert_exact(&storage, &sim, &spec).await;
        assert!(total > 0);
        assert_eq!(details.progress.candles_stored, total as u64);
        assert_eq!(details.progress.percent, 100.0);
    }
    // The unknown ticker succeeded with nothing stored.
    let nope = Symbol::parse("NOPE").unwrap();
    let tf = Timeframe::parse("1m").unwrap();
    let range = DateRange::from_millis(0, 2_000_000_000_000).unwrap();
    assert!(stored(&storage, &nope, tf, range).await.is_empty());
    w.stop().await;
}

pub(crate) async fn the_same_job_twice_stores_nothing_new(db: Db) {
    let sim = sim(1_000).await;
    let storage = db.open().await;
    let w = start(
        &storage,
        client(&sim, KEY),
        config("w", 4, Duration::from_secs(30)),
    );
    let mut ev = events(&[&w]);
    let full = spec(
        &["AAPL", "X:BTCUSD"],
        "1m",
        "2024-05-06",
        "2024-05-07",
        BackfillMode::Full,
    );
    let first = storage.create_job(&full, None).await.unwrap().job;
    ev.job_finished(first.id).await;
    let total = assert_exact(&storage, &sim, &full).await as u64;
    let before = sim.stats().total();

    let again = storage.create_job(&full, None).await.unwrap().job;
    ev.job_finished(again.id).await;
    let p = storage.get_job(again.id).await.unwrap().progress;
    assert_eq!(
        p.candles_fetched, total,
        "full mode fetches everything again"
    );
    assert_eq!(p.candles_stored, 0, "but stores nothing new");
    assert!(sim.stats().total() > before);

    let missing = spec(
        &["AAPL", "X:BTCUSD"],
        "1m",
        "2024-05-06",
        "2024-05-07",
        BackfillMode::Missing,
    );
    let before = sim.stats().total();
    let third = storage.create_job(&missing, None).await.unwrap().job;
    ev.job_finished(third.id).await;
    let d = storage.get_job(third.id).await.unwrap();
    assert_eq!(d.job.status, JobStatus::Succeeded);
    assert_eq!(d.progress.candles_fetched, 0);
    assert_eq!(
        sim.stats().total(),
        before,
        "missing mode asks for nothing already covered"
    );
    assert_exact(&storage, &sim, &missing).await;
    w.stop().await;
}

pub(crate) async fn missing_mode_after_a_partial_job_fetches_only_the_rest(db: Db) {
    let sim = sim(1_000).await;
    let storage = db.open().await;
    let w = start(
        &storage,
        client(&sim, KEY),
        config("w", 4, Duration::from_secs(30)),
    );
    let mut ev = events(&[&w]);
    let partial = spec(
        &["AAPL"],
        "1m",
        "2024-05-06",
        "2024-05-07",
        BackfillMode::Missing,
    );
    let job = storage.create_job(&partial, None).await.unwrap().job;
    ev.job_finished(job.id).await;

    sim.reset_stats();
    let whole = spec(
        &["AAPL"],
        "1m",
        "2024-05-06",
        "2024-05-09",
        BackfillMode::Missing,
    );
    let job = storage.create_job(&whole, None).await.unwrap().job;
    ev.job_finished(job.id).await;
    let rest_starts = RangeBound::parse("2024-05-08")
        .unwrap()
        .start()
        .timestamp_millis();
    let stats = sim.stats();
    assert!(stats.total() > 0);
    for (path, status) in stats.served.keys() {
        assert_eq!(*status, 200);
        let from: i64 = path.rsplit('/').nth(1).unwrap().parse().unwrap();
        assert!(
            from >= rest_starts,
            "{path} asks for what is stored already"
        );
    }
    // As many requests as the rest alone needs: count them with a fresh job on a fresh series.
    let needed = {
        let rest = spec(
            &["MSFT"],
            "1m",
            "2024-05-08",
            "2024-05-09",
            BackfillMode::Missing,
        );
        sim.reset_stats();
        let job = storage.create_job(&rest, None).await.unwrap().job;
        ev.job_finished(job.id).await;
        sim.stats().total()
    };
    assert_eq!(stats.total(), needed);
    assert_exact(&storage, &sim, &whole).await;
    w.stop().await;
}

pub(crate) async fn two_workers_share_a_job(db: Db) {
    let sim = sim(300).await;
    let (a_store, b_store) = (db.open().await, db.open().await);
    let (market_a, gate_a) = gated(client(&sim, KEY));
    let (market_b, gate_b) = gated(client(&sim, KEY));
    let a = start(&a_store, market_a, config("a", 2, Duration::from_secs(30)));
    let b = start(&b_store, market_b, config("b", 2, Duration::from_secs(30)));
    let mut ev = events(&[&a, &b]);
    let symbols = ["AAPL", "MSFT", "NVDA", "X:BTCUSD", "X:ETHUSD", "TSLA"];
    let spec = spec(
        &symbols,
        "1m",
        "2024-04-01",
        "2024-04-03",
        BackfillMode::Missing,
    );
    let job = a_store.create_job(&spec, None).await.unwrap().job;
    // Both workers hold tasks before any page is fetched.
    let mut seen = ev
        .until(|seen| {
            (0..2).all(|w| {
                count(seen, |(i, e)| {
                    *i == w && matches!(e, ProgressEvent::TaskStarted { .. })
                }) == 2
            })
        })
        .await;
    gate_a.add_permits(100_000);
    gate_b.add_permits(100_000);
    seen.extend(ev.job_finished(job.id).await);
    let started = |w: usize| {
        count(&seen, |(i, e)| {
            *i == w && matches!(e, ProgressEvent::TaskStarted { .. })
        })
    };
    assert!(started(0) >= 2 && started(1) >= 2, "both workers ran tasks");
    // No task ran in two places: every symbol started exactly once (there were no failures).
    for s in symbols {
        let n = count(
            &seen,
            |(_, e)| matches!(e, ProgressEvent::TaskStarted { unit, .. } if unit.to_string() == s),
        );
        assert_eq!(n, 1, "{s}");
    }
    let details = b_store.get_job(job.id).await.unwrap();
    assert_eq!(details.job.status, JobStatus::Succeeded);
    let total = assert_exact(&a_store, &sim, &spec).await;
    assert_eq!(details.progress.candles_stored, total as u64);
    a.stop().await;
    b.stop().await;
}

pub(crate) async fn a_killed_worker_is_finished_by_the_other(db: Db) {
    let sim = sim(200).await;
    let (a_store, b_store) = (db.open().await, db.open().await);
    let (market_a, gate_a) = gated(client(&sim, KEY));
    let lease = Duration::from_millis(800);
    let a = start(&a_store, market_a, config("a", 4, lease));
    let mut ev_a = events(&[&a]);
    let spec = spec(
        &["AAPL", "X:BTCUSD", "MSFT"],
        "1m",
        "2024-04-01",
        "2024-04-02",
        BackfillMode::Missing,
    );
    let job = a_store.create_job(&spec, None).await.unwrap().job;
    // Let worker A store two pages of each symbol, then kill it while it waits for the third.
    gate_a.add_permits(6);
    ev_a.until(|seen| count(seen, |(_, e)| matches!(e, ProgressEvent::PageStored { .. })) == 6)
        .await;
    a.kill().await;
    let mid = a_store.get_job(job.id).await.unwrap();
    assert!(mid.progress.candles_stored > 0);
    assert_eq!(mid.progress.symbols_running, 3);

    let b = start(&b_store, client(&sim, KEY), config("b", 4, lease));
    let mut ev_b = events(&[&b]);
    ev_b.job_finished(job.id).await;
    let details = b_store.get_job(job.id).await.unwrap();
    assert_eq!(details.job.status, JobStatus::Succeeded);
    let total = assert_exact(&b_store, &sim, &spec).await;
    // Every candle was stored once: A's pages were not stored again by B.
    assert_eq!(details.progress.candles_stored, total as u64);
    assert!(details.tasks.iter().all(|t| t.attempts == 2));
    b.stop().await;
}

pub(crate) async fn cancel_keeps_what_was_stored_and_retry_finishes_the_rest(db: Db) {
    let sim = sim(200).await;
    let storage = db.open().await;
    let (market, gate) = gated(client(&sim, KEY));
    let w = start(&storage, market, config("w", 4, Duration::from_secs(30)));
    let mut ev = events(&[&w]);
    let spec = spec(
        &["AAPL", "X:BTCUSD"],
        "1m",
        "2024-04-01",
        "2024-04-02",
        BackfillMode::Missing,
    );
    let job = storage.create_job(&spec, None).await.unwrap().job;
    gate.add_permits(2);
    ev.until(|seen| count(seen, |(_, e)| matches!(e, ProgressEvent::PageStored { .. })) == 2)
        .await;
    let cancelled = storage.cancel_job(job.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    // The tasks wait at the gate; the heartbeat tells them the job was cancelled.
    ev.until(|seen| {
        count(seen, |(_, e)| {
            matches!(
                e,
                ProgressEvent::TaskFinished {
                    status: TaskStatus::Cancelled,
                    ..
                }
            )
        }) == 2
    })
    .await;
    let d = storage.get_job(job.id).await.unwrap();
    assert_eq!(d.job.status, JobStatus::Cancelled);
    assert!(d.tasks.iter().all(|t| t.status == TaskStatus::Cancelled));
    let kept = d.progress.candles_stored;
    assert!(kept > 0, "what was stored before the cancel is kept");
    let mut in_db = 0;
    for s in spec.symbols() {
        in_db += stored(&storage, s, spec.timeframe(), spec.range())
            .await
            .len() as u64;
    }
    assert_eq!(in_db, kept);

    let retried = storage.retry_job(job.id).await.unwrap();
    assert_eq!(retried.status, JobStatus::Queued);
    gate.add_permits(100_000);
    ev.until(|seen| {
        seen.iter().any(|(_, e)| matches!(e, ProgressEvent::JobFinished { job_id, status: JobStatus::Succeeded } if *job_id == job.id))
    })
    .await;
    let d = storage.get_job(job.id).await.unwrap();
    assert_eq!(d.job.status, JobStatus::Succeeded);
    let total = assert_exact(&storage, &sim, &spec).await;
    assert_eq!(
        d.progress.candles_stored, total as u64,
        "the retry resumed after the stored pages"
    );
    w.stop().await;
}

pub(crate) async fn shutdown_releases_leases_for_another_worker_at_once(db: Db) {
    let sim = sim(500).await;
    let (a_store, b_store) = (db.open().await, db.open().await);
    let (market_a, _gate_a) = gated(client(&sim, KEY));
    // Leases far longer than the test's deadline: only a release lets B start.
    let lease = Duration::from_secs(600);
    let a = start(&a_store, market_a, config("a", 4, lease));
    let mut ev_a = events(&[&a]);
    let spec = spec(
        &["AAPL", "MSFT"],
        "1m",
        "2024-04-01",
        "2024-04-01",
        BackfillMode::Missing,
    );
    let job = a_store.create_job(&spec, None).await.unwrap().job;
    ev_a.until(|seen| {
        count(seen, |(_, e)| {
            matches!(e, ProgressEvent::TaskStarted { .. })
        }) == 2
    })
    .await;
    a.stop().await;
    let d = a_store.get_job(job.id).await.unwrap();
    assert!(
        d.tasks
            .iter()
            .all(|t| t.status == TaskStatus::Queued && t.worker_id.is_none()),
        "{:?}",
        d.tasks
    );

    let b = start(&b_store, client(&sim, KEY), config("b", 4, lease));
    let mut ev_b = events(&[&b]);
    ev_b.job_finished(job.id).await;
    assert_eq!(
        b_store.get_job(job.id).await.unwrap().job.status,
        JobStatus::Succeeded
    );
    assert_exact(&b_store, &sim, &spec).await;
    b.stop().await;
}

pub(crate) async fn a_rejected_key_fails_every_symbol_with_a_clear_message(db: Db) {
    let sim = sim(500).await;
    let storage = db.open().await;
    let w = start(
        &storage,
        client(&sim, "wrong-key"),
        config("w", 4, Duration::from_secs(30)),
    );
    let mut ev = events(&[&w]);
    let spec = spec(
        &["AAPL", "MSFT"],
        "1d",
        "2024-01-01",
        "2024-02-01",
        BackfillMode::Missing,
    );
    let job = storage.create_job(&spec, None).await.unwrap().job;
    ev.job_finished(job.id).await;
    let d = storage.get_job(job.id).await.unwrap();
    assert_eq!(d.job.status, JobStatus::Failed);
    for t in &d.tasks {
        assert_eq!(t.status, TaskStatus::Failed);
        assert_eq!(t.attempts, 1, "a permanent failure is not retried");
        let err = t.last_error.as_deref().unwrap();
        assert!(err.contains("api key") && err.contains("401"), "{err}");
        assert!(
            !err.contains("wrong-key"),
            "the key never appears in errors"
        );
    }
    assert_eq!(sim.stats().with_status(401), 2);
    w.stop().await;
}

pub(crate) async fn random_upstream_faults_still_store_exactly_the_simulators_candles(db: Db) {
    // About 10 % 5xx, 5 % 429, 2 % responses slower than the client's timeout and 3 % broken
    // bodies, at seeded random.
    let mut faults = vec![
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::GatewayTimeoutHtml,
    ];
    faults = faults.into_iter().cycle().take(10).collect();
    let rate_limited = Fault::RateLimited {
        retry_after: Some(0),
    };
    faults.extend(std::iter::repeat_n(rate_limited, 5));
    faults.extend(std::iter::repeat_n(Fault::Slow(Duration::from_secs(5)), 2));
    faults.extend([Fault::TruncatedJson, Fault::AbortedBody, Fault::NullResults]);
    let sim = Simulator::new(
        SimConfig::new()
            .api_key(KEY)
            .max_page_size(400)
            .random_faults(0.20, faults)
            .fault_seed(2026),
    )
    .spawn("127.0.0.1:0")
    .await
    .unwrap();
    let mut config =
        PolygonConfig::new(SecretString::from(KEY.to_owned())).with_base_url(sim.base_url());
    config.initial_backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(5);
    config.rate_limit_cooldown = Duration::from_millis(5);
    config.request_timeout = Duration::from_millis(300);
    config.max_retries = 4;
    let client = PolygonClient::new(config).unwrap();
    let market: Arc<dyn MarketData> = Arc::new(client.clone());
    let storage = db.open().await;
    let w = start(&storage, market, config_with_attempts("w", 6));
    let mut ev = events(&[&w]);
    let spec = spec(
        &["AAPL", "X:BTCUSD", "MSFT"],
        "1m",
        "2024-04-01",
        "2024-04-05",
        BackfillMode::Missing,
    );
    let job = storage.create_job(&spec, None).await.unwrap().job;
    ev.job_finished(job.id).await;
    let d = storage.get_job(job.id).await.unwrap();
    assert_eq!(d.job.status, JobStatus::Succeeded, "{:?}", d.tasks);
    let total = assert_exact(&storage, &sim, &spec).await;
    assert_eq!(d.progress.candles_stored, total as u64);

    let stats = sim.stats();
    let faulted = stats.total() - stats.with_status(200);
    assert!(faulted > 0, "faults were served: {stats:?}");
    let client_stats = client.stats();
    // Every page needed one successful request; each failure cost one retry at most, and no
    // request was retried more than the client's budget allows.
    assert!(client_stats.retries > 0);
    assert!(client_stats.retries <= client_stats.requests);
    assert!(client_stats.retries <= client_stats.pages * 4 + 3 * 6 * 4);
    for t in &d.tasks {
        assert!(t.attempts <= 6, "{t:?}");
    }
    w.stop().await;
}

fn config_with_attempts(name: &str, attempts: u32) -> WorkerConfig {
    let mut c = config(name, 4, Duration::from_secs(30));
    c.max_attempts = attempts;
    c
}
