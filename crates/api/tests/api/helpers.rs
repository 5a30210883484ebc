//! Shared fixtures: domain values, mock-backed routers, and request and response helpers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, Response, StatusCode};
use axum::Router;
use backfill_api::{router, ApiConfig, AppState};
use backfill_api::{
    QuotaBody, QuotaScope, QuotaView, ReferenceError, ReferenceTickers, RefreshUniverseRequest,
};
use backfill_domain::{
    BackfillJob, BackfillMode, Candle, DateRange, JobId, JobProgress, JobSpec, JobStatus, Ohlcv,
    RangeBound, Symbol, Task, TaskId, TaskStatus, TaskUnit, Timeframe,
};
use backfill_domain::{Name, NamedUniverse};
use backfill_storage::{
    CandlePage, CreatedJob, JobDetails, JobSummary, MockCandleStore, MockJobRepository,
    MockScheduleStore, Schedule,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use tower::ServiceExt;

pub(crate) const JOB_ID: &str = "0190a4c2-7d3e-7b41-9c55-5a8e3f1b2c4d";

pub(crate) fn job_id() -> JobId {
    JOB_ID.parse().unwrap()
}

pub(crate) fn t0() -> DateTime<Utc> {
    "2024-01-02T14:30:00Z".parse().unwrap()
}

pub(crate) fn spec(symbols: &[&str]) -> JobSpec {
    let range = DateRange::new(
        RangeBound::parse("2024-01-02").unwrap(),
        RangeBound::parse("2024-01-05").unwrap(),
    )
    .unwrap();
    JobSpec::new(
        symbols.iter().map(|s| Symbol::parse(s).unwrap()).collect(),
        Timeframe::parse("1m").unwrap(),
        range,
        true,
        BackfillMode::Missing,
    )
    .unwrap()
}

pub(crate) fn job(status: JobStatus) -> BackfillJob {
    BackfillJob {
        id: job_id(),
        spec: spec(&["AAPL", "MSFT"]),
        status,
        created_at: t0(),
        started_at: (status != JobStatus::Queued).then_some(t0()),
        finished_at: status.is_terminal().then(|| t0() + TimeDelta::seconds(30)),
        error: None,
        simulated: false,
    }
}

pub(crate) fn task(
    job: &BackfillJob,
    index: usize,
    status: TaskStatus,
    candles_stored: u64,
) -> Task {
    let unit = TaskUnit::Symbol(job.spec.symbols()[index].clone());
    Task {
        status,
        attempts: u32::from(status != TaskStatus::Queued),
        candles_fetched: candles_stored,
        candles_stored,
        pages: candles_stored.div_ceil(1000),
        checkpoint: (candles_stored > 0).then(|| t0() + TimeDelta::minutes(candles_stored as i64)),
        last_error: None,
        next_attempt_at: None,
        worker_id: (status == TaskStatus::Running).then(|| "worker-1".to_owned()),
        lease_expires_at: (status == TaskStatus::Running).then(|| Utc::now() + TimeDelta::hours(1)),
        ..Task::queued(TaskId(index as i64 + 1), job.id, unit, t0())
    }
}

/// A job with one task per symbol, all in `task_status`, each with `candles` stored.
pub(crate) fn details(status: JobStatus, task_status: TaskStatus, candles: u64) -> JobDetails {
    let job = job(status);
    let tasks = (0..job.spec.symbols().len())
        .map(|i| task(&job, i, task_status, candles))
        .collect();
    details_of(job, tasks)
}

pub(crate) fn details_of(job: BackfillJob, tasks: Vec<Task>) -> JobDetails {
    let progress = JobProgress::derive(&job, &tasks, Utc::now());
    JobDetails {
        job,
        tasks,
        progress,
    }
}

pub(crate) fn candle(minute: i64, vwap: Option<f64>, trades: Option<u64>) -> Candle {
    Candle::new(
        Symbol::parse("AAPL").unwrap(),
        Timeframe::parse("1m").unwrap(),
        t0() + TimeDelta::minutes(minute),
        Ohlcv {
            open: 187.15,
            high: 187.4,
            low: 186.9,
            close: 187.2,
            volume: 1_029_145.5,
            vwap,
            trades,
        },
    )
    .unwrap()
}

/// `get_job` answers these snapshots in turn, then the last one forever.
pub(crate) fn expect_snapshots(jobs: &mut MockJobRepository, snapshots: Vec<JobDetails>) {
    let queue = Arc::new(Mutex::new(VecDeque::from(snapshots)));
    jobs.expect_get_job().returning(move |_| {
        let mut queue = queue.lock().unwrap();
        let next = if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        };
        Ok(next.expect("at least one snapshot"))
    });
}

pub(crate) fn app(jobs: MockJobRepository, candles: MockCandleStore) -> Router {
    app_with(jobs, candles, ApiConfig::default())
}

pub(crate) fn app_with(
    jobs: MockJobRepository,
    candles: MockCandleStore,
    config: ApiConfig,
) -> Router {
    router(state(jobs, candles, config))
}

pub(crate) fn state(
    jobs: MockJobRepository,
    candles: MockCandleStore,
    config: ApiConfig,
) -> AppState {
    AppState::new(Arc::new(jobs), Arc::new(candles), config)
}

/// A router whose repositories must not be called.
pub(crate) fn idle_app() -> Router {
    app(MockJobRepository::new(), MockCandleStore::new())
}

pub(crate) fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub(crate) fn post(uri: &str) -> Request<Body> {
    Request::post(uri).body(Body::empty()).unwrap()
}

pub(crate) fn post_json(uri: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub(crate) async fn send(app: &Router, request: Request<Body>) -> Response<Body> {
    app.clone().oneshot(request).await.unwrap()
}

pub(crate) async fn body_text(response: Response<Body>) -> String {
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

pub(crate) async fn body_json(response: Response<Body>) -> Value {
    let text = body_text(response).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Sends a request and checks that it answers `status` with the error shape and `code`;
/// returns the error object.
pub(crate) async fn expect_error(
    app: &Router,
    request: Request<Body>,
    status: StatusCode,
    code: &str,
) -> Value {
    let what = format!("{} {}", request.method(), request.uri());
    let response = send(app, request).await;
    let got = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = body_json(response).await;
    assert_eq!(got, status, "{what}: {body}");
    assert_eq!(content_type.as_deref(), Some("application/json"), "{what}");
    let error = body["error"].clone();
    assert_eq!(error["code"], code, "{what}: {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    let keys: Vec<_> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error"], "{what}: {body}");
    error
}

/// Repositories that answer every call successfully, with jobs made by `details`.
pub(crate) fn answering(
    details: impl Fn() -> JobDetails + Send + Sync + Clone + 'static,
) -> (MockJobRepository, MockCandleStore) {
    let mut jobs = MockJobRepository::new();
    let d = details.clone();
    jobs.expect_create_job().returning(move |_, _| {
        Ok(CreatedJob {
            job: d().job,
            created: true,
        })
    });
    let d = details.clone();
    jobs.expect_get_job().returning(move |_| Ok(d()));
    let d = details.clone();
    jobs.expect_list_jobs().returning(move |_, _| {
        let d = d();
        Ok(vec![JobSummary {
            job: d.job,
            progress: d.progress,
        }])
    });
    let d = details.clone();
    jobs.expect_cancel_job().returning(move |_| Ok(d().job));
    jobs.expect_retry_job()
        .returning(move |_| Ok(details().job));
    jobs.expect_ping().returning(|| Ok(()));
    let mut candles = MockCandleStore::new();
    candles.expect_candles().returning(|_| {
        Ok(CandlePage {
            candles: vec![candle(0, None, None)],
            next_cursor: None,
        })
    });
    candles.expect_coverage().returning(|_, _, _| Ok(vec![]));
    (jobs, candles)
}

/// A schedule store that answers every call successfully.
pub(crate) fn answering_schedules() -> MockScheduleStore {
    let spec: backfill_domain::ScheduleSpec = serde_json::from_value(serde_json::json!({
        "name": "tech", "tickers": {"symbols": ["AAPL"]}, "timeframes": ["1d"],
        "adjusted": true, "trigger": "after_close", "lookback_days": 5
    }))
    .unwrap();
    let schedule = move |paused: bool| Schedule {
        id: 1,
        spec: spec.clone(),
        paused,
        next_due_at: Some(t0()),
        last_run: None,
        runs: 0,
        created_at: t0(),
    };
    let universe = |symbols: &[Symbol], origin: &str| NamedUniverse {
        name: Name::parse("tech").unwrap(),
        symbols: symbols.to_vec(),
        origin: origin.to_owned(),
        updated_at: t0(),
    };
    let mut store = MockScheduleStore::new();
    let s = schedule.clone();
    store
        .expect_list_schedules()
        .returning(move || Ok(vec![s(false)]));
    let s = schedule.clone();
    store
        .expect_create_schedule()
        .returning(move |_| Ok(s(false)));
    let s = schedule.clone();
    store.expect_get_schedule().returning(move |_| Ok(s(false)));
    store.expect_delete_schedule().returning(|_| Ok(()));
    store
        .expect_set_paused()
        .returning(move |_, paused| Ok(schedule(paused)));
    store
        .expect_list_universes()
        .returning(move || Ok(vec![universe(&[Symbol::parse("AAPL").unwrap()], "manual")]));
    store
        .expect_get_universe()
        .returning(move |_| Ok(universe(&[Symbol::parse("AAPL").unwrap()], "manual")));
    store
        .expect_put_universe()
        .returning(move |_, symbols, origin| Ok(universe(symbols, origin)));
    store.expect_delete_universe().returning(|_| Ok(()));
    store
}

/// Reference tickers that always list AAPL.
pub(crate) struct FixedReference;

#[async_trait::async_trait]
impl ReferenceTickers for FixedReference {
    async fn tickers(&self, _: &RefreshUniverseRequest) -> Result<Vec<Symbol>, ReferenceError> {
        Ok(vec![Symbol::parse("AAPL").unwrap()])
    }
}

/// A quota of 100 a minute, 37 in use, shared by the fleet.
pub(crate) struct FixedQuota;

#[async_trait::async_trait]
impl QuotaView for FixedQuota {
    async fn quota(&self) -> Result<QuotaBody, String> {
        Ok(QuotaBody {
            scope: QuotaScope::Fleet,
            limit: Some(100),
            window_seconds: 60.0,
            in_use: 37,
            paused_for_seconds: None,
        })
    }
}

/// A corporate actions store with nothing stored that accepts every write.
pub(crate) fn answering_actions() -> backfill_storage::MockActionStore {
    let mut store = backfill_storage::MockActionStore::new();
    store.expect_splits().returning(|_| Ok(Vec::new()));
    store.expect_dividends().returning(|_| Ok(Vec::new()));
    store.expect_adjusted_series().returning(|_| Ok(Vec::new()));
    store
        .expect_upsert_splits()
        .returning(|s| Ok(s.len() as u64));
    store
        .expect_upsert_dividends()
        .returning(|d| Ok(d.len() as u64));
    store
}

/// An upstream without corporate actions.
pub(crate) struct NoActions;

#[async_trait::async_trait]
impl backfill_api::ActionsSource for NoActions {
    async fn actions(
        &self,
        _: &Symbol,
    ) -> Result<(Vec<backfill_domain::Split>, Vec<backfill_domain::Dividend>), ReferenceError> {
        Ok((Vec::new(), Vec::new()))
    }
}
