//! Persistence for backfill: the repository traits that the worker and the API are written against
//! (jobs and their per-symbol tasks, task leases, fenced candle ingest, candle reads and coverage),
//! and their PostgreSQL and embedded SQLite implementations. This is the only crate that uses sqlx,
//! and only with a backend feature: without `postgres` and `sqlite` it is the traits and their
//! types alone, which is what the worker and the API build against.
//!
//! - [`JobRepository`]: create (idempotently), read, list, cancel and retry jobs.
//! - [`TaskQueue`]: claim tasks with fenced leases, heartbeat, finish, fail, release, wait.
//! - [`CandleStore`]: fenced, idempotent page ingest; keyset-paginated reads; coverage.
//! - [`ScheduleStore`]: schedules (fired exactly once per due time) and named universes.
//! - [`ActionStore`]: splits and dividends per symbol, and when each adjusted series was last
//!   stored whole (what makes it stale after a split).
//! - [`Storage`]: all five, as one `Arc<dyn Storage>`.
//! - [`resampled`] and [`quality`]: a series read as a coarser timeframe, and its quality
//!   report, built on [`CandleStore`] alone.
//! - [`QuotaStore`]: request quotas shared by every process of a database (PostgreSQL only:
//!   an SQLite database has one process, which keeps its quota in memory).
//!
//! Backends: [`postgres::PgStorage`] (feature `postgres`) and [`sqlite::SqliteStorage`]
//! (feature `sqlite`), each with its embedded `MIGRATOR`. With the `mocks` feature, mockall
//! mocks of the traits are generated (`MockJobRepository`, `MockTaskQueue`,
//! `MockCandleStore`, `MockScheduleStore`, `MockActionStore`, `MockQuotaStore`).

#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod action_rows;
mod error;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod page;
mod quota;
mod reading;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod rows;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod schedules;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod series;
mod traits;
mod types;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod views;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use error::{DatabaseError, Error, Result};
#[cfg(any(test, feature = "mocks"))]
pub use quota::MockQuotaStore;
pub use quota::{Acquired, Quota, QuotaSlot, QuotaStore, QuotaUsage};
pub use reading::{quality, resampled, QualityQuery, ResampleQuery, SeriesPages, SeriesRead};
pub use traits::{ActionStore, CandleStore, JobRepository, ScheduleStore, Storage, TaskQueue};
#[cfg(any(test, feature = "mocks"))]
pub use traits::{
    MockActionStore, MockCandleStore, MockJobRepository, MockScheduleStore, MockTaskQueue,
};
pub use types::{
    AdjustedSeries, CandlePage, CandleQuery, ClaimRequest, ClaimedTask, CreatedJob, DayCompletion,
    DayProgress, DaySeries, Fetched, HeartbeatReport, IngestOutcome, JobDetails, JobSummary, Lease,
    Recorded, Schedule, ScheduleRun, SourceFile, StoredFile,
};
