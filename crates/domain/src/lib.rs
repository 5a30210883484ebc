//! The backfill domain model: validated symbols and timeframes, date ranges and their interval
//! arithmetic, candles, backfill jobs with one task per symbol, the job and task state machines,
//! and progress derived from the tasks.
//!
//! This crate does no I/O: no database, no network, no files, no environment. Every type that the
//! API exposes is serde-serialisable; with the `openapi` feature they also describe themselves to
//! utoipa.

mod candle;
mod error;
mod job;
mod progress;
mod range;
mod symbol;
mod timeframe;

pub use candle::{Candle, Ohlcv};
pub use error::{Error, Result};
pub use job::{
    BackfillJob, BackfillMode, JobId, JobSpec, JobStatus, SymbolTask, TaskId, TaskStatus,
    MAX_SYMBOLS_PER_JOB,
};
pub use progress::JobProgress;
pub use range::{merge_intervals, DateRange, RangeBound};
pub use symbol::Symbol;
pub use timeframe::{BaseAggregate, Timeframe, Timespan, MAX_MULTIPLIER};
