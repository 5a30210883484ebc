//! Stored rows in backend-neutral form and their conversion to domain types: each backend reads
//! its own row types and hands these over, so the rules of conversion are written once.

use backfill_domain::{
    BackfillJob, Candle, DateRange, JobId, JobSpec, JobStatus, Ohlcv, Symbol, Task, TaskCounts,
    TaskId, TaskStatus, TaskTotals, TaskUnit, Timeframe, Universe,
};
use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Error, Result};

pub(crate) fn parse_job_status(s: &str) -> Result<JobStatus> {
    s.parse().map_err(Error::from)
}

pub(crate) fn parse_task_status(s: &str) -> Result<TaskStatus> {
    s.parse().map_err(Error::from)
}

/// A job row in backend-neutral form.
#[derive(Debug)]
pub(crate) struct JobParts {
    pub(crate) id: JobId,
    pub(crate) symbols: Vec<String>,
    pub(crate) timeframe: String,
    pub(crate) range_from: DateTime<Utc>,
    pub(crate) range_to: DateTime<Utc>,
    pub(crate) adjusted: bool,
    pub(crate) mode: String,
    pub(crate) source: String,
    pub(crate) source_reason: Option<String>,
    pub(crate) universe: String,
    pub(crate) status: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) error: Option<String>,
    pub(crate) simulated: bool,
}

impl JobParts {
    pub(crate) fn into_job(self) -> Result<BackfillJob> {
        let symbols = self
            .symbols
            .iter()
            .map(|s| Symbol::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let symbols = match self.universe.parse()? {
            Universe::Symbols => Some(symbols),
            Universe::All => None,
        };
        let spec = JobSpec::from_parts(
            symbols,
            Timeframe::parse(&self.timeframe)?,
            DateRange::from_instants(self.range_from, self.range_to)?,
            self.adjusted,
            self.mode.parse()?,
            self.source.parse()?,
            self.source_reason,
        )?;
        Ok(BackfillJob {
            id: self.id,
            spec,
            status: parse_job_status(&self.status)?,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            error: self.error,
            simulated: self.simulated,
        })
    }
}

/// A task row in backend-neutral form.
#[derive(Debug)]
pub(crate) struct TaskParts {
    pub(crate) id: i64,
    pub(crate) job_id: JobId,
    pub(crate) symbol: Option<String>,
    pub(crate) day: Option<NaiveDate>,
    pub(crate) status: String,
    pub(crate) attempts: i64,
    pub(crate) candles_fetched: i64,
    pub(crate) candles_stored: i64,
    pub(crate) pages: i64,
    pub(crate) requests: i64,
    pub(crate) bytes: i64,
    pub(crate) checkpoint: Option<DateTime<Utc>>,
    pub(crate) rows_done: i64,
    pub(crate) file_offset: i64,
    pub(crate) file_size: Option<i64>,
    pub(crate) file_etag: Option<String>,
    pub(crate) note: Option<String>,
    pub(crate) last_error: Option<String>,
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
    pub(crate) worker_id: Option<String>,
    pub(crate) lease_expires_at: Option<DateTime<Utc>>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl TaskParts {
    pub(crate) fn into_task(self) -> Result<Task> {
        let unit = match (self.symbol, self.day) {
            (Some(symbol), None) => TaskUnit::Symbol(Symbol::parse(&symbol)?),
            (None, Some(day)) => TaskUnit::Day(day),
            _ => {
                return Err(Error::InvalidData(format!(
                    "task {} has neither a symbol nor a day, or both",
                    self.id
                )))
            }
        };
        Ok(Task {
            id: TaskId(self.id),
            job_id: self.job_id,
            unit,
            status: parse_task_status(&self.status)?,
            attempts: non_negative(self.attempts, "attempts")?,
            candles_fetched: non_negative(self.candles_fetched, "candles_fetched")?,
            candles_stored: non_negative(self.candles_stored, "candles_stored")?,
            pages: non_negative(self.pages, "pages")?,
            requests: non_negative(self.requests, "requests")?,
            bytes: non_negative(self.bytes, "bytes")?,
            checkpoint: self.checkpoint,
            rows_done: non_negative(self.rows_done, "rows_done")?,
            file_offset: non_negative(self.file_offset, "file_offset")?,
            file_size: self
                .file_size
                .map(|n| non_negative(n, "file_size"))
                .transpose()?,
            file_etag: self.file_etag,
            note: self.note,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            worker_id: self.worker_id,
            lease_expires_at: self.lease_expires_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) fn non_negative<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T> {
    T::try_from(v).map_err(|_| Error::InvalidData(format!("{what} out of range: {v}")))
}

/// Converts counts that the database returns as signed integers.
pub(crate) fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// One stored candle's values, as read from a row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CandleValues {
    pub(crate) ts: DateTime<Utc>,
    pub(crate) open: f64,
    pub(crate) high: f64,
    pub(crate) low: f64,
    pub(crate) close: f64,
    pub(crate) volume: f64,
    pub(crate) vwap: Option<f64>,
    pub(crate) trades: Option<i64>,
}

impl CandleValues {
    pub(crate) fn into_candle(self, symbol: &Symbol, timeframe: Timeframe) -> Result<Candle> {
        let trades = self
            .trades
            .map(|n| non_negative::<u64>(n, "trades"))
            .transpose()?;
        let values = Ohlcv {
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            vwap: self.vwap,
            trades,
        };
        Ok(Candle::new(symbol.clone(), timeframe, self.ts, values)?)
    }
}

/// Rows of `SELECT status, count(*) FROM tasks ... GROUP BY status`, as counts.
pub(crate) fn task_counts(rows: Vec<(String, i64)>) -> Result<TaskCounts> {
    let mut counts = TaskCounts::default();
    for (status, n) in rows {
        counts.add(parse_task_status(&status)?, non_negative(n, "task count")?);
    }
    Ok(counts)
}

/// Rows of `SELECT status, count(*) FROM jobs GROUP BY status`, as domain statuses.
pub(crate) fn job_counts(rows: Vec<(String, i64)>) -> Result<Vec<(JobStatus, u64)>> {
    rows.into_iter()
        .map(|(status, n)| Ok((parse_job_status(&status)?, count(n))))
        .collect()
}

/// The task aggregates of one listed job, as both backends' listing queries return them.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TotalsRow {
    n_queued: i64,
    n_running: i64,
    n_succeeded: i64,
    n_failed: i64,
    n_cancelled: i64,
    sum_stored: i64,
    sum_fetched: i64,
    sum_pages: i64,
    sum_requests: i64,
    sum_bytes: i64,
    covered: f64,
}

impl TotalsRow {
    /// The totals the listing query computed.
    pub(crate) fn totals(self) -> Result<TaskTotals> {
        let n = |v: i64| non_negative::<usize>(v, "task count");
        Ok(TaskTotals {
            counts: TaskCounts {
                queued: n(self.n_queued)?,
                running: n(self.n_running)?,
                succeeded: n(self.n_succeeded)?,
                failed: n(self.n_failed)?,
                cancelled: n(self.n_cancelled)?,
            },
            candles_stored: count(self.sum_stored),
            candles_fetched: count(self.sum_fetched),
            pages: count(self.sum_pages),
            requests: count(self.sum_requests),
            bytes: count(self.sum_bytes),
            covered: self.covered,
        })
    }
}
