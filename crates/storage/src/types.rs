//! Plain data passed across the storage traits.

use std::time::Duration;

use backfill_domain::{
    BackfillJob, Candle, DateRange, JobId, JobProgress, JobStatus, Name, ScheduleSpec, Symbol,
    Task, TaskId, TaskStatus, Timeframe,
};
use chrono::{DateTime, Utc};

/// The result of [`crate::JobRepository::create_job`].
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedJob {
    pub job: BackfillJob,
    /// False when the idempotency key named a job that already existed; `job` is that job.
    pub created: bool,
}

/// A job with all its tasks (in the order of the spec's symbols) and the progress derived
/// from them by [`JobProgress::derive`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobDetails {
    pub job: BackfillJob,
    pub tasks: Vec<Task>,
    pub progress: JobProgress,
}

/// A job and its progress, computed from aggregates of its tasks, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    pub job: BackfillJob,
    pub progress: JobProgress,
}

/// The right to work on one task, and the proof of it in every write.
///
/// `token` is a fencing token: it grows on every claim of the task, so a worker whose lease
/// expired and was reclaimed can never write with its old lease again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub task_id: TaskId,
    pub worker_id: String,
    pub token: i64,
}

/// A task claimed by a worker: the lease, the task as it stands after the claim (status
/// running, attempts counted) and its job (for the spec).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    pub lease: Lease,
    pub task: Task,
    pub job: BackfillJob,
}

/// What [`crate::TaskQueue::claim_tasks`] is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The lease holder's name.
    pub worker_id: String,
    /// Claim at most this many tasks.
    pub max: u32,
    /// How long each lease lasts without a heartbeat.
    pub lease_ttl: Duration,
    /// Only this job's tasks (a one-shot run that must not pick up other jobs); `None` takes
    /// any job's.
    pub only_job: Option<JobId>,
    /// A running task whose lease expired on this attempt is failed instead of reclaimed.
    pub max_attempts: u32,
}

/// What recording a task's outcome ([`crate::TaskQueue::complete_task`],
/// [`crate::TaskQueue::fail_task`], [`crate::TaskQueue::cancel_task`]) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The task's new status.
    pub task: TaskStatus,
    /// The job's status when it has ended with this task: none of its tasks is left to run and
    /// it settled now (succeeded, completed with errors, failed) or had already ended
    /// (cancelled). `None` while the job goes on.
    pub job_ended: Option<JobStatus>,
}

/// The answer to [`crate::TaskQueue::heartbeat`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatReport {
    /// Leases no longer held (expired, reclaimed, released or finished); stop work on these
    /// and write nothing more.
    pub lost: Vec<TaskId>,
    /// Leases still held (and extended) whose job was cancelled: stop and call
    /// [`crate::TaskQueue::cancel_task`].
    pub cancelled: Vec<TaskId>,
}

/// What [`crate::CandleStore::ingest_page`] did with a page. Candles repeated within the page
/// count once (the last one wins), so the three counts add up to the number of distinct
/// timestamps in the page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Candles that were not stored before.
    pub inserted: u64,
    /// Candles stored before with different values (an upstream correction), now replaced.
    pub updated: u64,
    /// Candles stored before with the same values; nothing was written for them.
    pub unchanged: u64,
    /// The task's job was cancelled: the page was stored, and the worker should stop and call
    /// [`crate::TaskQueue::cancel_task`].
    pub job_cancelled: bool,
}

impl IngestOutcome {
    /// Candles written: inserted plus updated.
    pub fn stored(&self) -> u64 {
        self.inserted + self.updated
    }
}

/// The upstream work behind a page, added to its task's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetched {
    /// HTTP requests (retries included) or file downloads.
    pub requests: u32,
    /// Bytes received, as sent (compressed).
    pub bytes: u64,
}

/// Where a day task stands after a page of its rows, for progress and to resume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayProgress {
    /// Rows of the day's file (or answer) handled so far, in its order, the page included;
    /// a restart skips them.
    pub rows_done: u64,
    /// How far into the day's file (compressed bytes) those rows reach, and the file's size.
    pub file_offset: u64,
    pub file_size: Option<u64>,
    /// The file's ETag, so that a restart skips these rows only in the same file.
    pub file_etag: Option<String>,
    pub fetched: Fetched,
}

/// Which series a finished day task covers for its day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaySeries {
    /// These symbols' series (a job over a list: the file is the whole truth about them, so a
    /// symbol without rows that day had none).
    Listed(Vec<Symbol>),
    /// Every series of the job's timeframe and adjustment with a candle stored in the day (a job
    /// over the whole market).
    Stored,
}

/// A bulk file stored whole: its key and the ETag it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub key: String,
    pub etag: String,
    pub size: u64,
    /// Rows the file held.
    pub rows: u64,
}

/// A [`SourceFile`] as recorded, with when it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub file: SourceFile,
    pub stored_at: DateTime<Utc>,
}

/// How a day task ended well.
#[derive(Debug, Clone, PartialEq)]
pub struct DayCompletion {
    /// The part of the day now known to be stored (the New York day cut to the job's range),
    /// and which series that covers; `None` when there was nothing to store (no file that day).
    pub covered: Option<(DateRange, DaySeries)>,
    /// The file stored whole, to be recorded so that it is never stored twice while unchanged.
    pub file: Option<SourceFile>,
    /// What people should know about how the day ended (no file, a file unchanged since stored).
    pub note: Option<String>,
    /// Upstream work not counted with a page (looking the file up, say).
    pub fetched: Fetched,
}

/// A read of stored candles: one series, a time range, and a keyset cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct CandleQuery {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    pub adjusted: bool,
    /// Candles whose start lies in this range (both ends inclusive).
    pub range: DateRange,
    /// At most this many candles, 1 to [`CandleQuery::MAX_LIMIT`].
    pub limit: u32,
    /// Only candles strictly after this instant: the `next_cursor` of the previous page.
    pub after: Option<DateTime<Utc>>,
}

impl CandleQuery {
    /// The largest page [`crate::CandleStore::candles`] returns.
    pub const MAX_LIMIT: u32 = 50_000;
}

/// One page of candles, ordered by time.
#[derive(Debug, Clone, PartialEq)]
pub struct CandlePage {
    pub candles: Vec<Candle>,
    /// Pass as `after` to read the next page; `None` when this page is the last.
    pub next_cursor: Option<DateTime<Utc>>,
}

/// A stored schedule: its spec, whether it is paused, when it is next due, and its last run.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub id: i64,
    pub spec: ScheduleSpec,
    pub paused: bool,
    /// When it is next due (`None` for a trigger that never comes due again).
    pub next_due_at: Option<DateTime<Utc>>,
    pub last_run: Option<ScheduleRun>,
    /// Runs fired so far.
    pub runs: u64,
    pub created_at: DateTime<Utc>,
}

/// One due time of a schedule, fired: the jobs it created (one per timeframe), or why it
/// created none.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRun {
    pub schedule: Name,
    pub due_at: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub job_ids: Vec<JobId>,
    pub error: Option<String>,
}

/// A split-adjusted series of a symbol and when it was last stored whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustedSeries {
    pub timeframe: Timeframe,
    pub fetched_at: Option<DateTime<Utc>>,
}
