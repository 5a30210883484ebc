//! The repository traits that the worker and the API are written against.
//!
//! Every method may also fail with [`Error::Database`](crate::Error::Database) when the
//! database does; [`Error::is_transient`](crate::Error::is_transient) tells whether retrying
//! may help. Rows that do not convert to domain types give
//! [`Error::InvalidData`](crate::Error::InvalidData), never a panic.

use std::time::Duration;

use async_trait::async_trait;
use backfill_domain::{
    BackfillJob, Candle, DateRange, Dividend, JobId, JobSpec, JobStatus, Name, NamedUniverse,
    ScheduleSpec, Sources, Split, Symbol, Timeframe,
};
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::types::{
    AdjustedSeries, CandlePage, CandleQuery, ClaimRequest, ClaimedTask, CreatedJob, DayCompletion,
    DayProgress, Fetched, HeartbeatReport, IngestOutcome, JobDetails, JobSummary, Lease, Recorded,
    Schedule, ScheduleRun, StoredFile,
};

/// Backfill jobs and their per-symbol tasks, as the API sees them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobRepository: Send + Sync {
    /// Creates a queued job and one queued task per symbol, in one transaction.
    ///
    /// With an `idempotency_key` that an earlier job was created with, returns that job with
    /// `created: false` instead of creating a second one; this holds under concurrent calls.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) when the key was used for a job with a
    /// different spec.
    async fn create_job<'a>(
        &self,
        spec: &JobSpec,
        idempotency_key: Option<&'a str>,
    ) -> Result<CreatedJob>;

    /// A job, its tasks in the order of the spec's symbols, and its derived progress.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown id.
    async fn get_job(&self, id: JobId) -> Result<JobDetails>;

    /// The most recent jobs, newest first, at most `limit` of them, optionally only those in
    /// `status`, each with its progress.
    ///
    /// # Errors
    /// Only database errors.
    async fn list_jobs(&self, limit: u32, status: Option<JobStatus>) -> Result<Vec<JobSummary>>;

    /// Cancels a queued or running job: its queued tasks become cancelled at once; its running
    /// tasks keep running until their workers notice (through
    /// [`TaskQueue::heartbeat`] or [`CandleStore::ingest_page`]) and call
    /// [`TaskQueue::cancel_task`], or until their leases expire.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown id,
    /// [`Error::Conflict`](crate::Error::Conflict) when the job already ended (the state
    /// machine forbids it).
    async fn cancel_job(&self, id: JobId) -> Result<BackfillJob>;

    /// Puts a failed, cancelled or partly failed job back in the queue: its failed and
    /// cancelled tasks become queued with their attempts reset, keeping their checkpoints and
    /// counters so that they resume where they stopped.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown id,
    /// [`Error::Conflict`](crate::Error::Conflict) when the state machine forbids it (the job
    /// is queued, running or succeeded) or when no task is failed or cancelled.
    async fn retry_job(&self, id: JobId) -> Result<BackfillJob>;

    /// How many jobs are in each status (statuses without jobs are left out), for metrics.
    ///
    /// # Errors
    /// Only database errors.
    async fn count_jobs(&self) -> Result<Vec<(JobStatus, u64)>>;

    /// Checks that the database answers, for readiness probes.
    ///
    /// # Errors
    /// Only database errors.
    async fn ping(&self) -> Result<()>;
}

/// Task leases, as the worker sees them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Claims up to `request.max` runnable tasks for `request.worker_id`, each with a lease
    /// valid for `request.lease_ttl`, oldest job first.
    ///
    /// Runnable: queued and due (no retry time, or one that has passed), or running with an
    /// expired lease (its worker died). A task waiting for its retry time is not runnable.
    /// With `only_job`, only that job's tasks are claimed (a one-shot run that must not pick
    /// up other jobs). Concurrent claims never return the same task. Each claim increments the
    /// task's attempts and its fencing token, and puts a queued job in `running`.
    ///
    /// A running task whose lease expired after its `max_attempts`-th attempt is not claimed
    /// again but marked failed (its worker died every time: a task that crashes the process must
    /// not be reclaimed for ever), and its job settles like after [`TaskQueue::fail_task`].
    ///
    /// # Errors
    /// Only database errors.
    async fn claim_tasks(&self, request: &ClaimRequest) -> Result<Vec<ClaimedTask>>;

    /// Extends the leases still held by `worker_id` to `lease_ttl` from now, and reports the
    /// ones that were lost and the held ones whose job was cancelled.
    ///
    /// # Errors
    /// Only database errors.
    async fn heartbeat(
        &self,
        worker_id: &str,
        leases: &[Lease],
        lease_ttl: Duration,
    ) -> Result<HeartbeatReport>;

    /// Finishes a task: records `covered` as fetched for the task's series (merged with what
    /// was recorded before), marks the task succeeded and releases its lease. When it was the
    /// last unfinished task of a running job, the job settles (succeeded, completed with
    /// errors or failed; see [`JobStatus::settle`]), and the answer says so: no need to read
    /// the job again.
    ///
    /// # Errors
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when the lease is not held (nothing is
    /// written).
    async fn complete_task(&self, lease: &Lease, covered: &[DateRange]) -> Result<Recorded>;

    /// Finishes a day task (a bulk source): records its day as covered for the series
    /// `completion` names (merged with what was recorded before), records the file stored
    /// whole, adds the upstream work, marks the task succeeded with its note and releases its
    /// lease; the job may settle, as after [`TaskQueue::complete_task`].
    ///
    /// # Errors
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when the lease is not held (nothing is
    /// written); [`Error::InvalidInput`](crate::Error::InvalidInput) for a symbol task.
    async fn complete_day(&self, lease: &Lease, completion: &DayCompletion) -> Result<Recorded>;

    /// Records a failed attempt. With `retry_at` and fewer than `max_attempts` attempts so far,
    /// the task goes back to the queue, runnable from `retry_at`; otherwise it fails for good
    /// (or is cancelled, when its job was) and the job may settle. Returns the task's new
    /// status and the job's, when the job ended with it.
    ///
    /// # Errors
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when the lease is not held (nothing is
    /// written).
    async fn fail_task(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        max_attempts: u32,
    ) -> Result<Recorded>;

    /// Marks a running task cancelled (its worker noticed that the job was cancelled, or gave
    /// up on it), keeping what it stored and its checkpoint. The job may end with it; the
    /// answer says so.
    ///
    /// # Errors
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when the lease is not held.
    async fn cancel_task(&self, lease: &Lease, reason: &str) -> Result<Recorded>;

    /// On shutdown: puts every task leased by `worker_id` back in the queue, runnable at once
    /// (or cancels it when its job was cancelled). The released attempt does not count against
    /// the maximum. Returns how many tasks were released.
    ///
    /// # Errors
    /// Only database errors.
    async fn release_leases(&self, worker_id: &str) -> Result<u64>;

    /// Waits until tasks may have become runnable, or `timeout` passes, whichever is first.
    /// Returns at once when a task is runnable now; wakes up when a job is created or retried,
    /// a lease is released or a task is queued for a later attempt (also by another process,
    /// on PostgreSQL), and when the earliest retry time or lease expiry comes due. Spurious
    /// wake-ups are possible: callers claim and wait again.
    ///
    /// # Errors
    /// Only database errors.
    async fn wait_for_work(&self, timeout: Duration) -> Result<()>;
}

/// Candles and the coverage of each series.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CandleStore: Send + Sync {
    /// Stores one page of the leased task's candles and advances the task's progress, in one
    /// transaction and only while the lease is held (a fenced write).
    ///
    /// Candles repeated within the page count once, the last one winning. New candles are
    /// inserted, changed ones updated, identical ones left untouched. The task's checkpoint
    /// moves to `checkpoint` (never backwards), `candles_fetched` grows by the page's length,
    /// `candles_stored` by inserted plus updated, `pages` by one, and its upstream counters by
    /// `fetched`.
    ///
    /// # Errors
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when the lease is not held (expired,
    /// reclaimed, released, or the task finished): nothing is written.
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) when a candle belongs to another
    /// symbol or timeframe than the task, has a trade count beyond `i64::MAX`, or the task is a
    /// day task (see [`CandleStore::ingest_rows`]).
    async fn ingest_page(
        &self,
        lease: &Lease,
        candles: &[Candle],
        checkpoint: DateTime<Utc>,
        fetched: Fetched,
    ) -> Result<IngestOutcome>;

    /// Stores one page of a day task's rows (candles of any symbols, of the job's timeframe,
    /// stored as the job's adjustment) and records where the task stands, in one transaction
    /// and only while the lease is held, like [`CandleStore::ingest_page`]. Series are created
    /// as their first candle arrives. `rows_done` and `file_offset` never move backwards.
    ///
    /// # Errors
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when the lease is not held (nothing is
    /// written); [`Error::InvalidInput`](crate::Error::InvalidInput) for a candle of another
    /// timeframe, a trade count beyond `i64::MAX`, or a symbol task.
    async fn ingest_rows(
        &self,
        lease: &Lease,
        candles: &[Candle],
        progress: DayProgress,
    ) -> Result<IngestOutcome>;

    /// The bulk file stored whole under `key`, if one was, with its ETag.
    ///
    /// # Errors
    /// Only database errors.
    async fn stored_file(&self, key: &str) -> Result<Option<StoredFile>>;

    /// Stored candles of one series in a time range, oldest first, one page at a time: pass
    /// the returned `next_cursor` as `after` to read the next page. Every candle of the range
    /// appears on exactly one page. An unknown series gives an empty page.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a limit of 0 or above
    /// [`CandleQuery::MAX_LIMIT`].
    async fn candles(&self, query: &CandleQuery) -> Result<CandlePage>;

    /// The time intervals already fetched for a series, merged (sorted, disjoint, not
    /// touching), so that a backfill in `missing` mode can fetch only the rest. Empty for an
    /// unknown series.
    ///
    /// # Errors
    /// Only database errors.
    async fn coverage(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        adjusted: bool,
    ) -> Result<Vec<DateRange>>;
}

/// Schedules and the universes they may name: what keeps data current.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Stores a new schedule, due first at its trigger's first due time after now.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) when the name is taken, or when the
    /// schedule overlaps another one (both would keep a series current; the message names
    /// which schedule and what they share); [`Error::NotFound`](crate::Error::NotFound) for
    /// an unknown universe.
    async fn create_schedule(&self, spec: &ScheduleSpec) -> Result<Schedule>;

    /// A schedule by name.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown name.
    async fn get_schedule(&self, name: &Name) -> Result<Schedule>;

    /// Every schedule, by name.
    ///
    /// # Errors
    /// Only database errors.
    async fn list_schedules(&self) -> Result<Vec<Schedule>>;

    /// Deletes a schedule; the jobs it created stay.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown name.
    async fn delete_schedule(&self, name: &Name) -> Result<()>;

    /// Pauses a schedule (it fires no more), or resumes it: due next at its trigger's first
    /// due time after now (the due times while it was paused are skipped).
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown name.
    async fn set_paused(&self, name: &Name, paused: bool) -> Result<Schedule>;

    /// Fires the schedules that are due at `now`, each once for the latest of its due times not
    /// after `now` (after a downtime, the missed ones are caught up with one run), creating its
    /// jobs with the sources `available`, and moves each schedule's next due time past `now`.
    /// Any number of processes may call this at once: a due time fires exactly once. A run
    /// whose jobs cannot be made (an empty universe, a source that cannot serve) is recorded
    /// with its error.
    ///
    /// # Errors
    /// Only database errors.
    async fn fire_due(&self, now: DateTime<Utc>, available: Sources) -> Result<Vec<ScheduleRun>>;

    /// The earliest next due time of the active schedules.
    ///
    /// # Errors
    /// Only database errors.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>>;

    /// Creates or replaces a universe.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an empty list.
    async fn put_universe(
        &self,
        name: &Name,
        symbols: &[Symbol],
        origin: &str,
    ) -> Result<NamedUniverse>;

    /// A universe by name.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown name.
    async fn get_universe(&self, name: &Name) -> Result<NamedUniverse>;

    /// Every universe, by name.
    ///
    /// # Errors
    /// Only database errors.
    async fn list_universes(&self) -> Result<Vec<NamedUniverse>>;

    /// Deletes a universe.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown name;
    /// [`Error::Conflict`](crate::Error::Conflict) while a schedule names it.
    async fn delete_universe(&self, name: &Name) -> Result<()>;
}

/// Corporate actions (splits and dividends) of each symbol, and when each adjusted series was
/// last stored whole, to tell which ones a later split made stale.
///
/// [`TaskQueue::complete_task`] and [`TaskQueue::complete_day`] record the fetch: when a task
/// of an adjusted job finishes, each series it covered is marked fetched now if it had no
/// record yet, or if the job was `full` and its range holds every interval the series covers
/// (the whole series was fetched again).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ActionStore: Send + Sync {
    /// Stores splits, one per symbol and execution date (a split stored before is replaced).
    /// Returns how many were new or changed.
    ///
    /// # Errors
    /// Only database errors.
    async fn upsert_splits(&self, splits: &[Split]) -> Result<u64>;

    /// Stores dividends, one per symbol and ex-dividend date (replaced like splits). Returns
    /// how many were new or changed.
    ///
    /// # Errors
    /// Only database errors.
    async fn upsert_dividends(&self, dividends: &[Dividend]) -> Result<u64>;

    /// The stored splits of a symbol, oldest first.
    ///
    /// # Errors
    /// Only database errors.
    async fn splits(&self, symbol: &Symbol) -> Result<Vec<Split>>;

    /// The stored dividends of a symbol, oldest first.
    ///
    /// # Errors
    /// Only database errors.
    async fn dividends(&self, symbol: &Symbol) -> Result<Vec<Dividend>>;

    /// The split-adjusted series of a symbol, by timeframe, with when each was last stored
    /// whole (`None` when no adjusted task has finished since this was recorded).
    ///
    /// # Errors
    /// Only database errors.
    async fn adjusted_series(&self, symbol: &Symbol) -> Result<Vec<AdjustedSeries>>;

    /// The oldest record of a whole fetch among every symbol's adjusted series (`None` when
    /// none is recorded): splits executed after its day are the only ones that can have made
    /// a stored adjusted series stale.
    ///
    /// # Errors
    /// Only database errors.
    async fn oldest_adjusted_fetch(&self) -> Result<Option<DateTime<Utc>>>;
}

/// Everything a backend offers. Implemented for every type that implements the five traits,
/// so `Arc<dyn Storage>` can be handed to the worker and the API as one value.
pub trait Storage: JobRepository + TaskQueue + CandleStore + ScheduleStore + ActionStore {}

impl<T: JobRepository + TaskQueue + CandleStore + ScheduleStore + ActionStore + ?Sized> Storage
    for T
{
}
