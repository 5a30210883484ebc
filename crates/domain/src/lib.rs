//! The backfill domain model: validated symbols and timeframes, date ranges and their interval
//! arithmetic, candles, backfill jobs with one task per symbol, the job and task state machines
//! and the policies that drive them (how a job settles, what a failed attempt does to a task),
//! progress derived from the tasks, the progress events workers publish, and corporate actions
//! (splits and dividends, stale adjusted series, raw series adjusted for splits).
//!
//! This crate does no I/O: no database, no network, no files, no environment. Every type that the
//! API exposes is serde-serialisable; with the `openapi` feature they also describe themselves to
//! utoipa.

mod actions;
mod candle;
mod chunk;
mod error;
mod event;
mod job;
mod lifecycle;
mod progress;
mod quality;
mod range;
mod resample;
mod schedule;
mod source;
mod symbol;
mod timeframe;

pub use actions::{
    new_york_date, refetch_key, refetch_spec, stale_split, Dividend, SeriesFreshness, Split,
    SplitAdjuster,
};
pub use candle::{Candle, Ohlcv};
pub use chunk::{chunk_at, requests_needed, Session, MAX_BASE_AGGREGATES};
pub use error::{Error, Result};
pub use event::ProgressEvent;
pub use job::{
    BackfillJob, BackfillMode, JobId, JobSpec, JobStatus, Task, TaskId, TaskStatus, TaskUnit,
    Universe, MAX_DAYS_PER_JOB, MAX_SYMBOLS_PER_BULK_JOB, MAX_SYMBOLS_PER_JOB,
};
pub use lifecycle::{Settlement, TaskCounts};
pub use progress::{JobProgress, TaskTotals};
pub use quality::{
    DayAgreement, DayGaps, DaysReport, Disagreement, Gap, OhlcReport, QualityCheck, QualityReport,
    SessionGaps, Violation, PRICE_TOLERANCE, QUALITY_EXAMPLES, VOLUME_TOLERANCE,
};
pub use range::{merge_intervals, DateRange, RangeBound};
pub use resample::{resample, Hours, Resampler};
pub use schedule::{
    Name, NamedUniverse, ScheduleSpec, Tickers, Trigger, MAX_LOOKBACK_DAYS,
    MAX_TIMEFRAMES_PER_SCHEDULE,
};
pub use source::{choose, costs, weekdays, Chosen, Source, SourceChoice, SourceCost, Sources};
pub use symbol::Symbol;
pub use timeframe::{BaseAggregate, Timeframe, Timespan, MAX_MULTIPLIER};
