//! Logic shared by the backends: row conversion, page preparation, settling and progress.

use std::collections::HashMap;

use backfill_domain::{
    BackfillJob, BackfillMode, Candle, DateRange, JobId, JobProgress, JobSpec, JobStatus, Ohlcv,
    Symbol, SymbolTask, TaskId, TaskStatus, Timeframe,
};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::types::{CandlePage, CandleQuery, ClaimedTask, JobDetails, JobSummary, Lease};

#[cfg(feature = "postgres")]
/// The NOTIFY channel (PostgreSQL) on which storage announces that tasks became runnable.
pub(crate) const WAKE_CHANNEL: &str = "backfill_tasks";

pub(crate) fn mode_str(mode: BackfillMode) -> &'static str {
    match mode {
        BackfillMode::Missing => "missing",
        BackfillMode::Full => "full",
    }
}

fn parse_mode(s: &str) -> Result<BackfillMode> {
    match s {
        "missing" => Ok(BackfillMode::Missing),
        "full" => Ok(BackfillMode::Full),
        other => Err(Error::InvalidData(format!(
            "unknown backfill mode {other:?}"
        ))),
    }
}

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
        let spec = JobSpec::new(
            symbols,
            Timeframe::parse(&self.timeframe)?,
            DateRange::from_instants(self.range_from, self.range_to)?,
            self.adjusted,
            parse_mode(&self.mode)?,
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
    pub(crate) symbol: String,
    pub(crate) status: String,
    pub(crate) attempts: i64,
    pub(crate) candles_fetched: i64,
    pub(crate) candles_stored: i64,
    pub(crate) pages: i64,
    pub(crate) checkpoint: Option<DateTime<Utc>>,
    pub(crate) last_error: Option<String>,
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
    pub(crate) worker_id: Option<String>,
    pub(crate) lease_expires_at: Option<DateTime<Utc>>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl TaskParts {
    pub(crate) fn into_task(self) -> Result<SymbolTask> {
        Ok(SymbolTask {
            id: TaskId(self.id),
            job_id: self.job_id,
            symbol: Symbol::parse(&self.symbol)?,
            status: parse_task_status(&self.status)?,
            attempts: non_negative(self.attempts, "attempts")?,
            candles_fetched: non_negative(self.candles_fetched, "candles_fetched")?,
            candles_stored: non_negative(self.candles_stored, "candles_stored")?,
            pages: non_negative(self.pages, "pages")?,
            checkpoint: self.checkpoint,
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

/// Checks that every candle belongs to the task's series and returns them sorted by time with
/// repeats removed (the last one of a timestamp wins).
pub(crate) fn prepare_page<'a>(
    candles: &'a [Candle],
    symbol: &str,
    timeframe: &str,
) -> Result<Vec<&'a Candle>> {
    for c in candles {
        if c.symbol().as_str() != symbol {
            return Err(Error::InvalidInput(format!(
                "candle of {} in a page of {symbol}",
                c.symbol()
            )));
        }
        if c.trades().is_some_and(|n| i64::try_from(n).is_err()) {
            return Err(Error::InvalidInput(format!(
                "{} at {}: trade count too large",
                c.symbol(),
                c.ts()
            )));
        }
    }
    if let Some(c) = candles.first() {
        // A page holds one series, so one timeframe; comparing the text once per page is enough
        // after checking that all candles agree.
        if c.timeframe().to_string() != timeframe {
            return Err(Error::InvalidInput(format!(
                "candle of timeframe {} in a page of {timeframe}",
                c.timeframe()
            )));
        }
        if candles.iter().any(|x| x.timeframe() != c.timeframe()) {
            return Err(Error::InvalidInput(
                "candles of several timeframes in one page".into(),
            ));
        }
    }
    let mut page: Vec<&Candle> = candles.iter().collect();
    if !page.windows(2).all(|w| w[0].ts() <= w[1].ts()) {
        // Stable, so that among equal timestamps the later candle stays later.
        page.sort_by_key(|c| c.ts());
    }
    let mut out: Vec<&Candle> = Vec::with_capacity(page.len());
    for c in page {
        match out.last_mut() {
            Some(last) if last.ts() == c.ts() => *last = c,
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// How many tasks of a job are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatusCounts {
    pub(crate) queued: usize,
    pub(crate) running: usize,
    pub(crate) succeeded: usize,
    pub(crate) failed: usize,
    pub(crate) cancelled: usize,
}

impl StatusCounts {
    pub(crate) fn add(&mut self, status: TaskStatus, n: usize) {
        match status {
            TaskStatus::Queued => self.queued += n,
            TaskStatus::Running => self.running += n,
            TaskStatus::Succeeded => self.succeeded += n,
            TaskStatus::Failed => self.failed += n,
            TaskStatus::Cancelled => self.cancelled += n,
        }
    }

    pub(crate) fn from_rows(rows: Vec<(String, i64)>) -> Result<Self> {
        let mut counts = Self::default();
        for (status, n) in rows {
            counts.add(parse_task_status(&status)?, non_negative(n, "task count")?);
        }
        Ok(counts)
    }

    fn total(&self) -> usize {
        self.queued + self.running + self.succeeded + self.failed + self.cancelled
    }
}

/// The status a job takes now that its tasks changed, if it changes: a queued or running job
/// whose tasks are all terminal settles (cancelled tasks count as not stored). Returns the new
/// status and the error text for people.
pub(crate) fn settle(
    current: JobStatus,
    counts: StatusCounts,
) -> Option<(JobStatus, Option<String>)> {
    if !matches!(current, JobStatus::Queued | JobStatus::Running)
        || counts.queued + counts.running > 0
        || counts.total() == 0
    {
        return None;
    }
    let unfinished = counts.failed + counts.cancelled;
    let status = JobStatus::settled(counts.succeeded, unfinished);
    let error = (unfinished > 0).then(|| {
        let mut msg = format!("{} of {} symbols failed", counts.failed, counts.total());
        if counts.cancelled > 0 {
            msg.push_str(&format!(", {} cancelled", counts.cancelled));
        }
        msg
    });
    Some((status, error))
}

/// Rows of `SELECT status, count(*) FROM jobs GROUP BY status`, as domain statuses.
pub(crate) fn job_counts(rows: Vec<(String, i64)>) -> Result<Vec<(JobStatus, u64)>> {
    rows.into_iter()
        .map(|(status, n)| Ok((parse_job_status(&status)?, n.max(0).unsigned_abs())))
        .collect()
}

/// The status of a running task after a failed attempt: queued again when a retry time is
/// given and attempts remain, cancelled when its job was cancelled meanwhile, failed otherwise.
pub(crate) fn after_failure(
    job: JobStatus,
    attempts: i64,
    retry_at: Option<DateTime<Utc>>,
    max_attempts: u32,
) -> Result<TaskStatus> {
    let next = match retry_at {
        _ if job == JobStatus::Cancelled => TaskStatus::Cancelled,
        Some(_) if attempts < i64::from(max_attempts) => TaskStatus::Queued,
        _ => TaskStatus::Failed,
    };
    Ok(TaskStatus::Running.transition(next)?)
}

/// Per-job aggregates of its tasks, computed by the database for listings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TaskTotals {
    pub(crate) counts: StatusCounts,
    pub(crate) candles_stored: u64,
    pub(crate) candles_fetched: u64,
    pub(crate) pages: u64,
    /// The sum over tasks of the covered share of the job's range (1 for succeeded tasks,
    /// [`DateRange::fraction_through`] of the checkpoint otherwise).
    pub(crate) covered: f64,
}

/// [`JobProgress::derive`] from aggregates instead of task rows, with the same formulas.
pub(crate) fn progress_from_totals(
    job: &BackfillJob,
    t: &TaskTotals,
    now: DateTime<Utc>,
) -> JobProgress {
    let total = t.counts.total();
    let percent = if total == 0 {
        0.0
    } else {
        (t.covered / total as f64 * 100.0).clamp(0.0, 100.0)
    };
    let elapsed_seconds = job.started_at.map(|start| {
        let end = job.finished_at.unwrap_or(now);
        ((end - start).num_milliseconds().max(0)) as f64 / 1000.0
    });
    let candles_per_second = elapsed_seconds
        .filter(|&e| e > 0.0)
        .map(|e| t.candles_stored as f64 / e);
    let eta_seconds = match (job.status, elapsed_seconds) {
        (JobStatus::Running, Some(e)) if percent > 0.0 && percent < 100.0 => {
            Some(e * (100.0 - percent) / percent)
        }
        _ => None,
    };
    JobProgress {
        symbols_total: total,
        symbols_done: t.counts.succeeded,
        symbols_failed: t.counts.failed,
        symbols_running: t.counts.running,
        symbols_queued: t.counts.queued,
        symbols_cancelled: t.counts.cancelled,
        candles_stored: t.candles_stored,
        candles_fetched: t.candles_fetched,
        pages: t.pages,
        percent,
        elapsed_seconds,
        candles_per_second,
        eta_seconds,
    }
}

/// Tasks sorted into the order of their job's symbols.
pub(crate) fn order_tasks(job: &BackfillJob, mut tasks: Vec<SymbolTask>) -> Vec<SymbolTask> {
    let position: HashMap<&Symbol, usize> = job
        .spec
        .symbols()
        .iter()
        .enumerate()
        .map(|(i, s)| (s, i))
        .collect();
    tasks.sort_by_key(|t| (position.get(&t.symbol).copied().unwrap_or(usize::MAX), t.id));
    tasks
}

/// A job's details: its tasks in the order of its symbols and the progress derived from them.
pub(crate) fn job_details(job: BackfillJob, tasks: Vec<SymbolTask>) -> JobDetails {
    let tasks = order_tasks(&job, tasks);
    let progress = JobProgress::derive(&job, &tasks, Utc::now());
    JobDetails {
        job,
        tasks,
        progress,
    }
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
    covered: f64,
}

impl TotalsRow {
    /// The listed job with its progress as of `now`.
    pub(crate) fn summary(self, job: BackfillJob, now: DateTime<Utc>) -> Result<JobSummary> {
        let n = |v: i64| non_negative::<usize>(v, "task count");
        let totals = TaskTotals {
            counts: StatusCounts {
                queued: n(self.n_queued)?,
                running: n(self.n_running)?,
                succeeded: n(self.n_succeeded)?,
                failed: n(self.n_failed)?,
                cancelled: n(self.n_cancelled)?,
            },
            candles_stored: count(self.sum_stored),
            candles_fetched: count(self.sum_fetched),
            pages: count(self.sum_pages),
            covered: self.covered,
        };
        let progress = progress_from_totals(&job, &totals, now);
        Ok(JobSummary { job, progress })
    }
}

/// Pairs claimed tasks (with their new fencing tokens) with their jobs, oldest job first.
pub(crate) fn claimed_tasks(
    worker_id: &str,
    tasks: Vec<(SymbolTask, i64)>,
    jobs: Vec<BackfillJob>,
) -> Result<Vec<ClaimedTask>> {
    let jobs: HashMap<JobId, BackfillJob> = jobs.into_iter().map(|j| (j.id, j)).collect();
    let mut claimed = tasks
        .into_iter()
        .map(|(task, token)| {
            let job = jobs
                .get(&task.job_id)
                .cloned()
                .ok_or_else(|| Error::InvalidData(format!("task {} has no job", task.id)))?;
            let lease = Lease {
                task_id: task.id,
                worker_id: worker_id.to_owned(),
                token,
            };
            Ok(ClaimedTask { lease, task, job })
        })
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|c| (c.job.created_at, c.task.id));
    Ok(claimed)
}

/// A page of candles from up to `limit + 1` rows read in time order: the extra row only tells
/// that there is a next page.
pub(crate) fn candle_page(mut rows: Vec<CandleValues>, query: &CandleQuery) -> Result<CandlePage> {
    let limit = query.limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|r| r.ts)
    } else {
        None
    };
    let candles = rows
        .into_iter()
        .map(|r| r.into_candle(&query.symbol, query.timeframe))
        .collect::<Result<Vec<_>>>()?;
    Ok(CandlePage {
        candles,
        next_cursor,
    })
}

/// Fails with [`Error::InvalidInput`] unless `1 <= limit <= MAX_LIMIT`.
pub(crate) fn check_limit(limit: u32) -> Result<()> {
    if limit == 0 || limit > crate::CandleQuery::MAX_LIMIT {
        return Err(Error::InvalidInput(format!(
            "limit must be between 1 and {}, got {limit}",
            crate::CandleQuery::MAX_LIMIT
        )));
    }
    Ok(())
}

/// The error for a spec that differs from the one stored under an idempotency key.
pub(crate) fn key_reused(key: &str) -> Error {
    let shown: String = key.chars().take(64).collect();
    Error::Conflict(format!(
        "idempotency key {shown:?} was already used for a different job"
    ))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn symbol(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn candle(sym: &str, minute: i64, close: f64) -> Candle {
        Candle::new(
            symbol(sym),
            Timeframe::parse("1m").unwrap(),
            DateTime::from_timestamp_millis(1_700_000_000_000 + minute * 60_000).unwrap(),
            Ohlcv {
                open: 1.0,
                high: 2.0,
                low: 0.5,
                close,
                volume: 10.0,
                vwap: None,
                trades: Some(3),
            },
        )
        .unwrap()
    }

    #[test]
    fn page_is_sorted_and_deduped_last_wins() {
        let page = [
            candle("AAPL", 2, 1.0),
            candle("AAPL", 0, 1.0),
            candle("AAPL", 2, 9.0),
            candle("AAPL", 1, 1.0),
        ];
        let out = prepare_page(&page, "AAPL", "1m").unwrap();
        let got: Vec<(i64, f64)> = out
            .iter()
            .map(|c| {
                (
                    (c.ts().timestamp_millis() - 1_700_000_000_000) / 60_000,
                    c.close(),
                )
            })
            .collect();
        assert_eq!(got, [(0, 1.0), (1, 1.0), (2, 9.0)]);
    }

    #[test]
    fn page_of_another_series_is_rejected() {
        let page = [candle("AAPL", 0, 1.0), candle("MSFT", 1, 1.0)];
        assert!(matches!(
            prepare_page(&page, "AAPL", "1m"),
            Err(Error::InvalidInput(m)) if m.contains("MSFT")
        ));
        assert!(matches!(
            prepare_page(&page[..1], "AAPL", "5m"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn settles_only_when_all_tasks_are_terminal() {
        let c = |queued, running, succeeded, failed, cancelled| StatusCounts {
            queued,
            running,
            succeeded,
            failed,
            cancelled,
        };
        assert_eq!(settle(JobStatus::Running, c(1, 0, 2, 0, 0)), None);
        assert_eq!(settle(JobStatus::Running, c(0, 1, 2, 0, 0)), None);
        assert_eq!(
            settle(JobStatus::Running, c(0, 0, 2, 0, 0)),
            Some((JobStatus::Succeeded, None))
        );
        assert_eq!(
            settle(JobStatus::Running, c(0, 0, 0, 2, 0)).map(|s| s.0),
            Some(JobStatus::Failed)
        );
        let (status, error) = settle(JobStatus::Running, c(0, 0, 1, 1, 1)).unwrap();
        assert_eq!(status, JobStatus::CompletedWithErrors);
        assert_eq!(error.as_deref(), Some("1 of 3 symbols failed, 1 cancelled"));
        assert_eq!(settle(JobStatus::Cancelled, c(0, 0, 2, 0, 0)), None);
    }

    #[test]
    fn progress_from_totals_matches_derive() {
        let t0: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let range = DateRange::from_instants(t0, t0 + TimeDelta::days(10)).unwrap();
        let symbols: Vec<Symbol> = ["A", "B", "C", "D"].iter().map(|s| symbol(s)).collect();
        let spec = JobSpec::new(
            symbols.clone(),
            Timeframe::parse("1m").unwrap(),
            range,
            true,
            BackfillMode::Missing,
        )
        .unwrap();
        let job = BackfillJob {
            id: JobId::new(),
            spec,
            status: JobStatus::Running,
            created_at: t0,
            started_at: Some(t0),
            finished_at: None,
            error: None,
            simulated: false,
        };
        let statuses = [
            (TaskStatus::Succeeded, None),
            (TaskStatus::Running, Some(t0 + TimeDelta::days(3))),
            (TaskStatus::Failed, Some(t0 + TimeDelta::days(1))),
            (TaskStatus::Queued, None),
        ];
        let tasks: Vec<SymbolTask> = symbols
            .into_iter()
            .zip(statuses)
            .enumerate()
            .map(|(i, (symbol, (status, checkpoint)))| SymbolTask {
                id: TaskId(i as i64),
                job_id: job.id,
                symbol,
                status,
                attempts: 1,
                candles_fetched: 10 * i as u64,
                candles_stored: 7 * i as u64,
                pages: i as u64,
                checkpoint,
                last_error: None,
                next_attempt_at: None,
                worker_id: None,
                lease_expires_at: None,
                started_at: None,
                finished_at: None,
                updated_at: t0,
            })
            .collect();
        let mut totals = TaskTotals::default();
        for t in &tasks {
            totals.counts.add(t.status, 1);
            totals.candles_stored += t.candles_stored;
            totals.candles_fetched += t.candles_fetched;
            totals.pages += t.pages;
            totals.covered += match (t.status, t.checkpoint) {
                (TaskStatus::Succeeded, _) => 1.0,
                (_, Some(cp)) => range.fraction_through(cp),
                (_, None) => 0.0,
            };
        }
        let now = t0 + TimeDelta::hours(5);
        assert_eq!(
            progress_from_totals(&job, &totals, now),
            JobProgress::derive(&job, &tasks, now)
        );
    }
}
