//! Turning configuration into running parts: the storage backend, the market data client (or
//! the built-in simulator), the worker configuration, logging and signals.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use backfill_domain::{JobId, Sources};
use backfill_polygon::{
    ActionData, FlatFiles, FlatFilesClient, FlatFilesConfig, PolygonClient, PolygonConfig,
};
use backfill_polygon_sim::{
    RunningSimulator, SimConfig, Simulator, DEFAULT_S3_ACCESS_KEY_ID, DEFAULT_S3_SECRET_ACCESS_KEY,
};
use backfill_progress::ProgressBus;
use backfill_storage::postgres::PgStorage;
use backfill_storage::sqlite::SqliteStorage;
use backfill_storage::{Quota, QuotaStore, Storage};
use backfill_worker::{Scheduler, SplitWatch, Worker, WorkerConfig, WorkerDeps, WorkerId};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::cli::{
    default_sqlite_path, DatabaseArgs, FlatFilesArgs, LogFormat, PolygonArgs, WorkerArgs,
};
use crate::quota::FleetQuota;

/// Logs go to standard error (standard output is for results), as text or JSON lines.
/// `RUST_LOG` overrides the default level (`info`).
pub(crate) fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,reqwest=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// An open database.
pub(crate) struct Database {
    pub(crate) storage: Arc<dyn Storage>,
    /// Request quotas shared by every process of the database (PostgreSQL); none on SQLite,
    /// whose one process keeps its quota in memory.
    pub(crate) quotas: Option<Arc<dyn QuotaStore>>,
    /// The backend, for people (never with a password).
    pub(crate) backend: String,
}

/// Opens the storage backend (migrated).
pub(crate) async fn open_storage(args: &DatabaseArgs, demo: bool) -> anyhow::Result<Database> {
    let sqlite = |storage: SqliteStorage, backend: String| Database {
        storage: Arc::new(storage.with_simulated_jobs(demo)),
        quotas: None,
        backend,
    };
    match args.database_url.as_deref().map(str::trim) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let storage = PgStorage::connect(url)
                .await
                .context("connecting to PostgreSQL (DATABASE_URL)")?
                .with_simulated_jobs(demo);
            storage
                .migrate()
                .await
                .context("applying the PostgreSQL migrations")?;
            let storage = Arc::new(storage);
            Ok(Database {
                storage: storage.clone(),
                quotas: Some(storage),
                backend: "PostgreSQL".to_owned(),
            })
        }
        Some(url) if url.starts_with("sqlite:") => {
            let storage = SqliteStorage::connect(url)
                .await
                .context("opening the SQLite database (DATABASE_URL)")?;
            Ok(sqlite(storage, format!("SQLite ({url})")))
        }
        Some("") | None => {
            let path = default_sqlite_path(demo);
            let storage = SqliteStorage::open(&path)
                .await
                .with_context(|| format!("opening the SQLite database {}", path.display()))?;
            Ok(sqlite(storage, format!("SQLite ({})", path.display())))
        }
        Some(url) => {
            let scheme = url.split(':').next().unwrap_or_default();
            bail!(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite: (it starts with {scheme:?})"
            )
        }
    }
}

/// The market data clients, and the simulator they talk to in demo mode.
pub(crate) struct Market {
    pub(crate) client: PolygonClient,
    /// The quota the client shares with the fleet, when it does (see [`Market::share_quota`]).
    pub(crate) fleet_quota: Option<Arc<FleetQuota>>,
    /// Flat Files, when S3 credentials are given (always in demo mode: the simulator serves
    /// them).
    pub(crate) files: Option<Arc<dyn FlatFiles>>,
    /// Kept alive while the clients are used.
    pub(crate) simulator: Option<RunningSimulator>,
}

impl Market {
    /// The sources these clients can serve.
    pub(crate) fn sources(&self) -> Sources {
        Sources {
            flat_files: self.files.is_some(),
        }
    }

    /// Makes the client wait on the key's quota shared by every process of `database` instead
    /// of a limiter of its own, when the database can share one (PostgreSQL) and a limit is
    /// configured; on SQLite, or without a limit, the client keeps its own.
    pub(crate) fn share_quota(&mut self, database: &Database) -> anyhow::Result<()> {
        let config = self.client.config().clone();
        let (Some(store), Some(limit)) = (&database.quotas, config.requests_per_minute) else {
            return Ok(());
        };
        let quota = Quota {
            key: config.key_id(),
            limit,
            window: config.rate_window,
            // A request is abandoned after its connect and request timeouts at the latest.
            max_request: config.connect_timeout + config.request_timeout,
        };
        tracing::info!(
            limit = limit.get(),
            window_ms = quota.window.as_millis() as u64,
            key_id = %quota.key,
            "requests wait on the key's quota shared through the database"
        );
        let fleet = Arc::new(FleetQuota::new(Arc::clone(store), quota));
        self.client = PolygonClient::with_quota(config, fleet.clone())
            .context("configuring the Polygon client")?;
        self.fleet_quota = Some(fleet);
        Ok(())
    }

    /// Once requests have ended: waits for the slots given back to reach the fleet's quota.
    pub(crate) async fn settle(&self) {
        if let Some(quota) = &self.fleet_quota {
            quota.settle().await;
        }
    }
}

/// Builds the Polygon client and, with S3 credentials, the Flat Files client; with `--demo`,
/// starts the simulator and points both at it. Without a key and without `--demo`, stops with
/// one clear line.
pub(crate) async fn market(args: &PolygonArgs) -> anyhow::Result<Market> {
    let (config, simulator) = if args.demo {
        let sim = Simulator::new(SimConfig::new().api_key("demo"))
            .spawn("127.0.0.1:0")
            .await
            .context("starting the built-in Polygon simulator")?;
        let config =
            PolygonConfig::new(SecretString::from("demo".to_owned())).with_base_url(sim.base_url());
        (config, Some(sim))
    } else {
        let key = match &args.polygon_api_key {
            Some(key) => key.clone(),
            None => match std::env::var("MASSIVE_API_KEY") {
                Ok(key) if !key.trim().is_empty() => SecretString::from(key),
                _ => bail!(
                    "no Polygon API key: set POLYGON_API_KEY (or MASSIVE_API_KEY), or pass --demo to use the built-in simulator"
                ),
            },
        };
        let config = PolygonConfig::new(key).with_base_url(args.polygon_base_url.clone());
        (config, None)
    };
    let mut config = config;
    config.requests_per_minute = args.requests_per_minute;
    config.rate_window = args.rate_window;
    let client = PolygonClient::new(config).context("configuring the Polygon client")?;
    let files = flat_files(&args.files, simulator.as_ref())?;
    Ok(Market {
        client,
        fleet_quota: None,
        files,
        simulator,
    })
}

/// The Flat Files client: the simulator's bucket in demo mode, otherwise the configured one when
/// both S3 keys are given (none without them; one key alone is a mistake, said as such).
fn flat_files(
    args: &FlatFilesArgs,
    simulator: Option<&RunningSimulator>,
) -> anyhow::Result<Option<Arc<dyn FlatFiles>>> {
    let config = match (simulator, &args.s3_access_key_id, &args.s3_secret_access_key) {
        (Some(sim), _, _) => FlatFilesConfig::new(
            SecretString::from(DEFAULT_S3_ACCESS_KEY_ID.to_owned()),
            SecretString::from(DEFAULT_S3_SECRET_ACCESS_KEY.to_owned()),
        )
        .with_endpoint(sim.base_url()),
        (None, Some(key), Some(secret)) => FlatFilesConfig {
            bucket: args.s3_bucket.clone(),
            ..FlatFilesConfig::new(key.clone(), secret.clone()).with_endpoint(&args.s3_endpoint)
        },
        (None, None, None) => return Ok(None),
        (None, Some(_), None) => bail!(
            "POLYGON_S3_ACCESS_KEY_ID is set but POLYGON_S3_SECRET_ACCESS_KEY is not: Flat Files need both"
        ),
        (None, None, Some(_)) => bail!(
            "POLYGON_S3_SECRET_ACCESS_KEY is set but POLYGON_S3_ACCESS_KEY_ID is not: Flat Files need both"
        ),
    };
    let client = FlatFilesClient::new(config).context("configuring the Flat Files client")?;
    Ok(Some(Arc::new(client)))
}

/// The one place a worker is put together, for `serve`, `worker` and `run`: its configuration
/// from the flags (bound to `only_job` for a one-shot run), storage in both of its roles, the
/// market data client, and the bus it reports progress on.
pub(crate) fn worker(
    storage: &Arc<dyn Storage>,
    market: &Market,
    args: &WorkerArgs,
    only_job: Option<JobId>,
    bus: ProgressBus,
) -> Worker {
    let mut config = WorkerConfig::new(WorkerId::generate(&hostname()));
    config.concurrency = usize::from(args.concurrency);
    config.lease_ttl = Duration::from_secs(args.lease_seconds);
    config.max_attempts = args.max_attempts;
    config.only_job = only_job;
    let deps = WorkerDeps {
        queue: storage.clone(),
        candles: storage.clone(),
        market: Arc::new(market.client.clone()),
        files: market.files.clone(),
    };
    Worker::new(deps, bus, config)
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A token that is cancelled on SIGINT (Ctrl-C) or SIGTERM, which is logged. The handlers are
/// installed when this is called, so a signal that arrives before anything waits on the token
/// is not lost (and does not kill the process with the default action). Call it inside the
/// runtime, first thing.
pub(crate) fn shutdown_on_signal() -> CancellationToken {
    let signal = shutdown_signal();
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("signal received; shutting down");
        stop.cancel();
    });
    token
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM; the handlers are installed when this is called.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The peak resident memory of this process, in bytes (Linux; `None` elsewhere).
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Installs the Prometheus recorder for the `metrics` facade that every crate reports to, and
/// returns the handle that renders `/metrics`.
pub(crate) fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")
}

/// Copies the Polygon client's counters into metrics every few seconds, until `stop`.
pub(crate) fn export_client_metrics(client: PolygonClient, stop: CancellationToken) {
    every(Duration::from_secs(2), stop, move || {
        let s = client.stats();
        for (status, n) in &s.responses {
            metrics::counter!("backfill_polygon_responses_total", "status" => status.to_string())
                .absolute(*n);
        }
        metrics::counter!("backfill_polygon_requests_total").absolute(s.requests);
        metrics::counter!("backfill_polygon_retries_total").absolute(s.retries);
        metrics::counter!("backfill_polygon_timeouts_total").absolute(s.timeouts);
        metrics::counter!("backfill_polygon_transport_errors_total").absolute(s.transport_errors);
        metrics::gauge!("backfill_polygon_rate_limit_wait_seconds_total")
            .set(s.rate_limiter_wait.as_secs_f64());
        metrics::gauge!("backfill_polygon_backoff_wait_seconds_total")
            .set(s.backoff_wait.as_secs_f64());
        std::future::ready(())
    });
}

/// Sets the fleet's quota use (`backfill_quota_limit`, `backfill_quota_slots_in_use`,
/// `backfill_quota_paused_seconds`) from the database every few seconds, until `stop`.
pub(crate) fn export_quota_metrics(quota: Arc<FleetQuota>, stop: CancellationToken) {
    use backfill_polygon::RequestQuota;
    let limit = quota.limit().map_or(0, |l| l.get());
    metrics::gauge!("backfill_quota_limit").set(f64::from(limit));
    every(Duration::from_secs(2), stop, move || {
        let quota = Arc::clone(&quota);
        async move {
            match quota.usage().await {
                Ok(usage) => {
                    metrics::gauge!("backfill_quota_slots_in_use").set(f64::from(usage.in_use));
                    metrics::gauge!("backfill_quota_paused_seconds")
                        .set(usage.paused_for.unwrap_or_default().as_secs_f64());
                }
                Err(err) => tracing::debug!(error = %err, "could not read the quota for metrics"),
            }
        }
    });
}

/// Sets `backfill_jobs{status}` from storage every few seconds, until `stop`.
pub(crate) fn export_job_metrics(storage: Arc<dyn Storage>, stop: CancellationToken) {
    every(Duration::from_secs(5), stop, move || {
        let storage = Arc::clone(&storage);
        async move {
            match storage.count_jobs().await {
                Ok(counts) => {
                    for status in backfill_domain::JobStatus::ALL {
                        let n = counts
                            .iter()
                            .find(|(s, _)| s == status)
                            .map_or(0, |(_, n)| *n);
                        metrics::gauge!("backfill_jobs", "status" => status.as_str()).set(n as f64);
                    }
                }
                Err(err) => tracing::debug!(error = %err, "could not count jobs for metrics"),
            }
        }
    });
}

/// Fires due schedules until `stop` (unless `off`): their jobs use the sources this process
/// has; with a market, runs that keep split-adjusted series are followed by a split check
/// through it. Returns the task to await at shutdown.
pub(crate) fn spawn_scheduler(
    storage: &Arc<dyn Storage>,
    sources: Sources,
    market: Option<&Market>,
    off: bool,
    stop: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if off {
        tracing::info!("scheduler off (--no-scheduler)");
        return None;
    }
    backfill_worker::describe_scheduler_metrics();
    let mut scheduler = Scheduler::new(storage.clone(), sources);
    if let Some(market) = market {
        let source: Arc<dyn ActionData> = Arc::new(market.client.clone());
        scheduler = scheduler.with_split_watch(SplitWatch::new(source, storage.clone()));
    }
    Some(tokio::spawn(async move {
        if let Err(err) = scheduler.run(stop).await {
            tracing::error!(error = %err, "the scheduler stopped");
        }
    }))
}

/// Runs `task` at once and then every `period`, on a task of its own, until `stop`.
fn every<F, Fut>(period: Duration, stop: CancellationToken, mut task: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            task().await;
        }
    });
}

/// A runtime of its own for the embedded worker, whose threads (the blocking ones that decode
/// large pages included) run at CPU niceness `nice`. The API's runtime keeps the process's
/// priority, so on a busy machine the scheduler runs a request's handler before more ingest:
/// latency stays low and ingest takes whatever CPU is left.
pub(crate) fn ingest_runtime(nice: u8) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("backfill-ingest");
    if nice > 0 {
        builder.on_thread_start(move || lower_thread_priority(nice));
    }
    builder
        .build()
        .context("starting the embedded worker's runtime")
}

/// Sets the calling thread's niceness (on Linux, `setpriority` on a thread id applies to that
/// thread only; 0 leaves it as it is). Raising niceness needs no privilege; a failure is logged
/// and otherwise ignored.
pub(crate) fn lower_thread_priority(nice: u8) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        let tid = rustix::thread::gettid();
        if let Err(err) = rustix::process::setpriority_process(Some(tid), i32::from(nice)) {
            tracing::warn!(%err, nice, "could not lower the worker thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
