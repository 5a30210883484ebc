//! The backfill orchestrator: a worker claims per-symbol tasks with leases, fetches their candles
//! through the `MarketData` trait, stores each page with its checkpoint through the storage traits,
//! and publishes progress events. It depends on traits only, never on concrete backends.
//!
//! - [`Worker::run`] claims up to `concurrency` tasks, extends their leases on a heartbeat,
//!   notices cancellations and lost leases, and shuts down gracefully.
//! - Each task works out what to fetch ([`intervals_to_fetch`]: the gaps in stored coverage in
//!   `missing` mode, everything in `full` mode, after the task's checkpoint either way), streams
//!   the pages and stores each with `ingest_page`, so candles and checkpoint commit together.
//! - Progress events ([`backfill_domain::ProgressEvent`]) go out on a
//!   [`backfill_progress::ProgressBus`], to the API's Server-Sent Events and the CLI.
//! - [`Scheduler::run`] fires due schedules (each due time once, whichever process gets there
//!   first); their jobs are ordinary jobs that any worker takes. With a [`SplitWatch`], runs
//!   that keep split-adjusted series also list the splits since the series were fetched and
//!   create the `full` job that fetches each stale series again.

mod backoff;
mod config;
mod day;
mod deps;
mod error;
mod id;
mod outcome;
mod plan;
mod running;
mod scheduler;
mod splits;
mod task;
mod worker;

#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub use config::WorkerConfig;
pub use deps::WorkerDeps;
pub use error::{Error, Result};
pub use id::WorkerId;
pub use plan::intervals_to_fetch;
pub use scheduler::{
    describe_scheduler_metrics, Scheduler, SCHEDULE_NEXT_DUE_SECONDS, SCHEDULE_RUNS_TOTAL,
};
pub use splits::{Refetch, SplitCheck, SplitWatch, WatchScope, SPLIT_REFETCHES_TOTAL};
pub use worker::Worker;
