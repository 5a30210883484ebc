//! The PostgreSQL backend.

mod actions;
mod candles;
mod jobs;
mod queue;
mod quota;
mod schedules;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use backfill_domain::{JobId, Task};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::PgConnection;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::Result;
use crate::rows::{JobParts, TaskParts};
use crate::series::SeriesCache;

/// The NOTIFY channel on which storage announces that tasks became runnable.
const WAKE_CHANNEL: &str = "backfill_tasks";

/// The PostgreSQL schema migrations, embedded from `migrations/postgres`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// How [`crate::CandleStore::ingest_page`] sends a page to PostgreSQL. All behave the same;
/// they differ in speed (see docs/PERFORMANCE.md). The default is the fastest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PgIngestMethod {
    /// Reads the stored rows of the page's time span, then `COPY ... FROM STDIN (FORMAT binary)`
    /// of the new rows straight into `candles` and one `UPDATE ... FROM UNNEST` of the changed
    /// ones; unchanged rows are not written. Should a concurrent writer insert one of the new
    /// rows first, the COPY is rolled back to a savepoint and the page goes through
    /// [`PgIngestMethod::Unnest`].
    #[default]
    Diff,
    /// One `INSERT ... SELECT FROM UNNEST($arrays) ON CONFLICT DO UPDATE ... WHERE (values
    /// differ)` statement.
    Unnest,
    /// `COPY ... FROM STDIN (FORMAT binary)` into a temporary staging table, then
    /// `INSERT ... SELECT FROM staging ON CONFLICT DO UPDATE`.
    CopyStaging,
}

/// Storage on PostgreSQL: jobs, the task queue (`FOR UPDATE SKIP LOCKED`, `LISTEN/NOTIFY`
/// wake-ups), candles, and request quotas shared by every process of the database.
#[derive(Debug, Clone)]
pub struct PgStorage {
    pool: PgPool,
    ingest: PgIngestMethod,
    /// The connection that LISTENs for wake-ups, opened on the first wait.
    listener: Arc<Mutex<Option<PgListener>>>,
    /// Jobs created through this handle are marked simulated.
    simulated: bool,
    /// Series ids by (symbol, timeframe, adjusted), as day tasks meet them (series are never
    /// deleted, so a known id stays right).
    series: SeriesCache<i32>,
}

impl PgStorage {
    /// Connects a pool to `url`. Does not migrate: call [`PgStorage::migrate`].
    ///
    /// # Errors
    /// [`Error::Database`] when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects a pool with explicit options. Does not migrate: call [`PgStorage::migrate`].
    ///
    /// # Errors
    /// [`Error::Database`] when the database cannot be reached.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            ingest: PgIngestMethod::default(),
            listener: Arc::new(Mutex::new(None)),
            simulated: false,
            series: SeriesCache::default(),
        }
    }

    /// Marks every job created through this handle as simulated (a server in demo mode, whose
    /// market data comes from the built-in simulator).
    pub fn with_simulated_jobs(mut self, simulated: bool) -> Self {
        self.simulated = simulated;
        self
    }

    /// Chooses how pages are sent (for benchmarks; the default is the faster method).
    pub fn with_ingest_method(mut self, method: PgIngestMethod) -> Self {
        self.ingest = method;
        self
    }

    /// Applies the pending migrations of [`MIGRATOR`].
    ///
    /// # Errors
    /// [`Error::Database`] when a migration fails or the database was migrated by a newer
    /// version.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The columns of `jobs` that [`JobRow`] reads, in a literal for `concat!`.
macro_rules! job_columns {
    () => {
        "id, symbols, timeframe, range_from, range_to, adjusted, mode, source, source_reason, \
         universe, status, created_at, started_at, finished_at, error, simulated"
    };
}

/// The columns of `tasks` that [`TaskRow`] reads, in a literal for `concat!`.
macro_rules! task_columns {
    () => {
        "id, job_id, symbol, day, status, attempts, candles_fetched, candles_stored, pages, \
         requests, bytes, checkpoint, rows_done, file_offset, file_size, file_etag, note, \
         last_error, \
         next_attempt_at, worker_id, lease_token, lease_expires_at, started_at, finished_at, \
         updated_at"
    };
}

pub(crate) use {job_columns, task_columns};

#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    symbols: Vec<String>,
    timeframe: String,
    range_from: DateTime<Utc>,
    range_to: DateTime<Utc>,
    adjusted: bool,
    mode: String,
    source: String,
    source_reason: Option<String>,
    universe: String,
    status: String,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    error: Option<String>,
    simulated: bool,
}

impl JobRow {
    fn into_job(self) -> Result<backfill_domain::BackfillJob> {
        JobParts {
            id: JobId::from_uuid(self.id),
            symbols: self.symbols,
            timeframe: self.timeframe,
            range_from: self.range_from,
            range_to: self.range_to,
            adjusted: self.adjusted,
            mode: self.mode,
            source: self.source,
            source_reason: self.source_reason,
            universe: self.universe,
            status: self.status,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            error: self.error,
            simulated: self.simulated,
        }
        .into_job()
    }
}

#[derive(Debug, sqlx::FromRow)]
struct TaskRow {
    id: i64,
    job_id: Uuid,
    symbol: Option<String>,
    day: Option<NaiveDate>,
    status: String,
    attempts: i32,
    candles_fetched: i64,
    candles_stored: i64,
    pages: i64,
    requests: i64,
    bytes: i64,
    checkpoint: Option<DateTime<Utc>>,
    rows_done: i64,
    file_offset: i64,
    file_size: Option<i64>,
    file_etag: Option<String>,
    note: Option<String>,
    last_error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    worker_id: Option<String>,
    lease_token: i64,
    lease_expires_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl TaskRow {
    fn into_task(self) -> Result<Task> {
        TaskParts {
            id: self.id,
            job_id: JobId::from_uuid(self.job_id),
            symbol: self.symbol,
            day: self.day,
            status: self.status,
            attempts: i64::from(self.attempts),
            candles_fetched: self.candles_fetched,
            candles_stored: self.candles_stored,
            pages: self.pages,
            requests: self.requests,
            bytes: self.bytes,
            checkpoint: self.checkpoint,
            rows_done: self.rows_done,
            file_offset: self.file_offset,
            file_size: self.file_size,
            file_etag: self.file_etag,
            note: self.note,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            worker_id: self.worker_id,
            lease_expires_at: self.lease_expires_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            updated_at: self.updated_at,
        }
        .into_task()
    }
}

/// A duration in microseconds for `$n * interval '1 microsecond'`, capped at ten years.
fn micros(d: Duration) -> i64 {
    const TEN_YEARS: i64 = 10 * 366 * 24 * 3600 * 1_000_000;
    i64::try_from(d.as_micros())
        .unwrap_or(i64::MAX)
        .min(TEN_YEARS)
}

/// Announces that tasks may have become runnable; delivered when the transaction commits.
async fn notify(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WAKE_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}
