//! The embedded SQLite backend: one database file, WAL mode, writes serialised in-process.

mod actions;
mod candles;
mod jobs;
mod queue;
mod schedules;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use backfill_domain::{BackfillJob, JobId, Task};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{mpsc, Mutex, Notify, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::rows::{JobParts, TaskParts};
use crate::series::SeriesCache;

/// The SQLite schema migrations, embedded from `migrations/sqlite`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Storage in one SQLite file.
///
/// Writes are serialised by an in-process lock and `BEGIN IMMEDIATE` (with a busy timeout for
/// other processes), so they never fail with `SQLITE_BUSY` inside one process. They all go
/// through one connection of their own: a write holding the lock never waits for a pooled
/// connection that readers (the API, say) hold, the large prepared INSERTs are prepared and
/// cached once rather than on every connection, and that connection's page cache is never
/// invalidated by another connection's writes. Reads use a pool of their own and run
/// concurrently thanks to WAL. Page writes (tens of milliseconds each) first queue among
/// themselves, so at most one of them waits for the write lock at a time: a claim, heartbeat or
/// completion (a millisecond) waits for at most the page being written and the next one, not for
/// every page in flight. Wake-ups for [`crate::TaskQueue::wait_for_work`] are
/// in-process: clones of one `SqliteStorage` share them, separate instances do not.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    /// Reads.
    pool: SqlitePool,
    /// Writes: one connection (the same pool as `pool` when built by [`SqliteStorage::from_pool`]).
    writer: SqlitePool,
    write: Arc<Mutex<()>>,
    /// Held by a page write while it waits for and holds `write`.
    pages: Arc<Mutex<()>>,
    wake: Arc<Notify>,
    /// Asks the background checkpointer to copy the WAL into the database file (`None` for a
    /// storage built on a caller's pool, which checkpoints as SQLite does by default).
    checkpoint: Option<mpsc::Sender<()>>,
    /// Jobs created through this handle are marked simulated.
    simulated: bool,
    /// Series ids by (symbol, timeframe, adjusted), as day tasks meet them (series are never
    /// deleted, so a known id stays right).
    series: SeriesCache<i64>,
}

/// A write transaction holding the in-process write lock until it ends.
struct WriteTx {
    // Dropped before the guards: a transaction that is not committed rolls back first.
    tx: Transaction<'static, Sqlite>,
    _guard: OwnedMutexGuard<()>,
    _page: Option<OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteTx")
    }
}

impl SqliteStorage {
    /// Opens (creating it if needed) the database file at `path`, configures WAL, a busy
    /// timeout, `synchronous = NORMAL` and foreign keys, and applies the migrations.
    ///
    /// # Errors
    /// [`Error::Database`] when the file cannot be opened or migrated.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::open_with(options).await
    }

    /// Opens a database from a `sqlite:` URL such as `sqlite://backfill.db`, like
    /// [`SqliteStorage::open`].
    ///
    /// # Errors
    /// [`Error::Database`] when the URL is malformed or the file cannot be opened or migrated.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
        Self::open_with(options).await
    }

    /// The writer's connection first (it creates the file and sets WAL), then the readers'.
    async fn open_with(options: SqliteConnectOptions) -> Result<Self> {
        let writer = Self::pool_with(
            options
                .clone()
                .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT.to_string()),
            1,
        )
        .await?;
        let checkpointer = Self::pool_with(options.clone(), 1).await?;
        let pool = Self::pool_with(options, 4).await?;
        let storage = Self {
            writer,
            checkpoint: Some(spawn_checkpointer(checkpointer)),
            ..Self::from_pool(pool)
        };
        storage.migrate().await?;
        Ok(storage)
    }

    async fn pool_with(options: SqliteConnectOptions, connections: u32) -> Result<SqlitePool> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // 64 MiB of page cache per connection.
            .pragma("cache_size", "-65536");
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await?;
        Ok(pool)
    }

    /// Wraps an existing pool (configure WAL and a busy timeout on it), for reads and writes.
    /// Does not migrate.
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            writer: pool.clone(),
            pool,
            write: Arc::new(Mutex::new(())),
            pages: Arc::new(Mutex::new(())),
            wake: Arc::new(Notify::new()),
            checkpoint: None,
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

    /// Applies the pending migrations of [`MIGRATOR`].
    ///
    /// # Errors
    /// [`Error::Database`] when a migration fails or the database was migrated by a newer
    /// version.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    /// The pool that reads use.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Begins a write transaction, after the writes of this process before it.
    async fn write_tx(&self) -> Result<WriteTx> {
        let guard = Arc::clone(&self.write).lock_owned().await;
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx {
            tx,
            _guard: guard,
            _page: None,
        })
    }

    /// A write transaction for a page of candles, which queues behind other pages before it
    /// queues for the write lock.
    async fn page_write_tx(&self) -> Result<WriteTx> {
        let page = Arc::clone(&self.pages).lock_owned().await;
        let mut w = self.write_tx().await?;
        w._page = Some(page);
        Ok(w)
    }

    /// Asks for a checkpoint after a page was committed (coalesced: at most one waits).
    fn request_checkpoint(&self) {
        if let Some(tx) = &self.checkpoint {
            let _ = tx.try_send(());
        }
    }

    /// The ids of the series of `symbols` (sorted, distinct) at `timeframe` and `adjusted`, in
    /// the same order, creating the missing ones in a write of their own. Known ids are
    /// remembered: series are never deleted.
    async fn series_ids(
        &self,
        symbols: &[&str],
        timeframe: &str,
        adjusted: bool,
    ) -> Result<Vec<i64>> {
        let missing = self.series.missing(symbols, timeframe, adjusted);
        if !missing.is_empty() {
            let names = serde_json::to_string(&missing)
                .map_err(|e| Error::InvalidInput(format!("symbols do not encode: {e}")))?;
            let mut w = self.write_tx().await?;
            sqlx::query(
                "INSERT INTO series (symbol, timeframe, adjusted) \
                 SELECT value, ?2, ?3 FROM json_each(?1) WHERE true ON CONFLICT DO NOTHING",
            )
            .bind(&names)
            .bind(timeframe)
            .bind(adjusted)
            .execute(&mut *w.tx)
            .await?;
            let found: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, symbol FROM series WHERE timeframe = ?2 AND adjusted = ?3 \
                   AND symbol IN (SELECT value FROM json_each(?1))",
            )
            .bind(&names)
            .bind(timeframe)
            .bind(adjusted)
            .fetch_all(&mut *w.tx)
            .await?;
            w.tx.commit().await?;
            // Remembered only now that the rows are committed.
            self.series.remember(found, timeframe, adjusted);
        }
        self.series.ids(symbols, timeframe, adjusted)
    }

    /// Wakes the callers of `wait_for_work` in this process.
    fn wake(&self) {
        self.wake.notify_waiters();
    }
}

/// The write connection checkpoints by itself when the WAL holds this many pages (8 MiB of 4 KiB
/// pages), which bounds the WAL and lets it start again from its beginning; the background
/// checkpointer has copied and synced most of them by then, so the writer's checkpoint is short.
/// (16,384 let the WAL grow to 64 MiB and made `ingest_page` alone 10 % slower than checkpointing
/// every 1,000 pages on the writer; 2,048 and 4,096 are both about 20 % faster than that.)
const WRITER_AUTOCHECKPOINT: u32 = 2_048;

/// Copies the WAL into the database file after page writes, on a connection of its own, so that
/// the write connection does not stop after every page to copy a page's worth of WAL and
/// `fsync` twice, as SQLite's automatic checkpoint (every 1,000 WAL pages, on the committing
/// connection) would make it (a `PASSIVE` checkpoint runs beside writers and readers). The
/// writer's own automatic checkpoint, every [`WRITER_AUTOCHECKPOINT`] pages, then finds little
/// left to copy. Durability is unchanged: committed pages are in the WAL either way. Ends when
/// every handle of the storage is gone.
fn spawn_checkpointer(pool: SqlitePool) -> mpsc::Sender<()> {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %err, "background checkpoint failed; the next one retries");
            }
        }
    });
    tx
}

macro_rules! job_columns {
    () => {
        "id, symbols, timeframe, range_from, range_to, adjusted, mode, source, source_reason, \
         universe, status, created_at, started_at, finished_at, error, simulated"
    };
}

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

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn dt(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| Error::InvalidData(format!("timestamp {ms} out of range")))
}

fn opt_dt(ms: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    ms.map(dt).transpose()
}

/// A duration in milliseconds, capped at ten years.
fn duration_ms(d: Duration) -> i64 {
    const TEN_YEARS: i64 = 10 * 366 * 24 * 3600 * 1000;
    i64::try_from(d.as_millis())
        .unwrap_or(i64::MAX)
        .min(TEN_YEARS)
}

/// A day stored as `YYYY-MM-DD`.
fn parse_day(s: &str) -> Result<NaiveDate> {
    s.parse()
        .map_err(|_| Error::InvalidData(format!("invalid day {s:?}")))
}

fn parse_job_id(s: &str) -> Result<JobId> {
    s.parse()
        .map_err(|_| Error::InvalidData(format!("invalid job id {s:?}")))
}

#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    id: String,
    symbols: String,
    timeframe: String,
    range_from: i64,
    range_to: i64,
    adjusted: bool,
    mode: String,
    source: String,
    source_reason: Option<String>,
    universe: String,
    status: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    error: Option<String>,
    simulated: bool,
}

impl JobRow {
    fn into_job(self) -> Result<BackfillJob> {
        let symbols: Vec<String> = serde_json::from_str(&self.symbols)
            .map_err(|e| Error::InvalidData(format!("job symbols are not a JSON list: {e}")))?;
        JobParts {
            id: parse_job_id(&self.id)?,
            symbols,
            timeframe: self.timeframe,
            range_from: dt(self.range_from)?,
            range_to: dt(self.range_to)?,
            adjusted: self.adjusted,
            mode: self.mode,
            source: self.source,
            source_reason: self.source_reason,
            universe: self.universe,
            status: self.status,
            created_at: dt(self.created_at)?,
            started_at: opt_dt(self.started_at)?,
            finished_at: opt_dt(self.finished_at)?,
            error: self.error,
            simulated: self.simulated,
        }
        .into_job()
    }
}

#[derive(Debug, sqlx::FromRow)]
struct TaskRow {
    id: i64,
    job_id: String,
    symbol: Option<String>,
    day: Option<String>,
    status: String,
    attempts: i64,
    candles_fetched: i64,
    candles_stored: i64,
    pages: i64,
    requests: i64,
    bytes: i64,
    checkpoint: Option<i64>,
    rows_done: i64,
    file_offset: i64,
    file_size: Option<i64>,
    file_etag: Option<String>,
    note: Option<String>,
    last_error: Option<String>,
    next_attempt_at: Option<i64>,
    worker_id: Option<String>,
    lease_token: i64,
    lease_expires_at: Option<i64>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    updated_at: i64,
}

impl TaskRow {
    fn into_task(self) -> Result<Task> {
        TaskParts {
            id: self.id,
            job_id: parse_job_id(&self.job_id)?,
            symbol: self.symbol,
            day: self.day.as_deref().map(parse_day).transpose()?,
            status: self.status,
            attempts: self.attempts,
            candles_fetched: self.candles_fetched,
            candles_stored: self.candles_stored,
            pages: self.pages,
            requests: self.requests,
            bytes: self.bytes,
            checkpoint: opt_dt(self.checkpoint)?,
            rows_done: self.rows_done,
            file_offset: self.file_offset,
            file_size: self.file_size,
            file_etag: self.file_etag,
            note: self.note,
            last_error: self.last_error,
            next_attempt_at: opt_dt(self.next_attempt_at)?,
            worker_id: self.worker_id,
            lease_expires_at: opt_dt(self.lease_expires_at)?,
            started_at: opt_dt(self.started_at)?,
            finished_at: opt_dt(self.finished_at)?,
            updated_at: dt(self.updated_at)?,
        }
        .into_task()
    }
}
