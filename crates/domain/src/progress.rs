use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{BackfillJob, DateRange, JobStatus, Task, TaskCounts};

/// A job's progress, derived from its tasks on every read and never stored, so it cannot drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobProgress {
    /// Tasks: symbols, or days for the bulk sources.
    pub symbols_total: usize,
    /// Symbols (days) stored completely.
    pub symbols_done: usize,
    pub symbols_failed: usize,
    pub symbols_running: usize,
    pub symbols_queued: usize,
    pub symbols_cancelled: usize,
    /// Bars written (new or changed) over all symbols.
    pub candles_stored: u64,
    /// Bars received from upstream over all symbols.
    pub candles_fetched: u64,
    pub pages: u64,
    /// Upstream calls made: REST or grouped requests (retries included) and file downloads.
    #[serde(default)]
    pub requests: u64,
    /// Bytes received from upstream, as sent (compressed).
    #[serde(default)]
    pub bytes: u64,
    /// 0 to 100: the share of the job's symbol-time already covered, counting the checkpoints of
    /// running and unfinished symbols, not only finished ones. It never goes backwards, because
    /// checkpoints only move forward and survive retries.
    pub percent: f64,
    /// Seconds since the job started (to its end, once it has ended).
    pub elapsed_seconds: Option<f64>,
    /// Candles stored per second since the job started.
    pub candles_per_second: Option<f64>,
    /// Estimated seconds until the job ends, while it runs.
    pub eta_seconds: Option<f64>,
}

/// The sums over a job's tasks that its progress is computed from. Storage may compute them in
/// the database for listings ([`TaskTotals::of`] computes them from task rows); either way the
/// progress follows from them by one formula, [`JobProgress::from_totals`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TaskTotals {
    pub counts: TaskCounts,
    pub candles_stored: u64,
    pub candles_fetched: u64,
    pub pages: u64,
    pub requests: u64,
    pub bytes: u64,
    /// The sum over tasks of the share of their work done ([`Task::fraction_done`]).
    pub covered: f64,
}

impl TaskTotals {
    /// The totals of `tasks`, for a job over `range`.
    pub fn of(range: DateRange, tasks: &[Task]) -> Self {
        let mut totals = Self::default();
        for t in tasks {
            totals.counts.add(t.status, 1);
            totals.candles_stored += t.candles_stored;
            totals.candles_fetched += t.candles_fetched;
            totals.pages += t.pages;
            totals.requests += t.requests;
            totals.bytes += t.bytes;
            totals.covered += t.fraction_done(&range);
        }
        totals
    }
}

impl JobProgress {
    /// Derives the progress of `job` from its `tasks` as of `now`.
    pub fn derive(job: &BackfillJob, tasks: &[Task], now: DateTime<Utc>) -> Self {
        Self::from_totals(job, &TaskTotals::of(job.spec.range(), tasks), now)
    }

    /// The progress of `job` from the totals of its tasks as of `now`: the one formula for
    /// percent, rate and ETA.
    pub fn from_totals(job: &BackfillJob, t: &TaskTotals, now: DateTime<Utc>) -> Self {
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
        Self {
            symbols_total: total,
            symbols_done: t.counts.succeeded,
            symbols_failed: t.counts.failed,
            symbols_running: t.counts.running,
            symbols_queued: t.counts.queued,
            symbols_cancelled: t.counts.cancelled,
            candles_stored: t.candles_stored,
            candles_fetched: t.candles_fetched,
            pages: t.pages,
            requests: t.requests,
            bytes: t.bytes,
            percent,
            elapsed_seconds,
            candles_per_second,
            eta_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use proptest::prelude::*;

    use super::*;
    use crate::{BackfillMode, JobId, JobSpec, Symbol, TaskId, TaskStatus, TaskUnit, Timeframe};

    fn t0() -> DateTime<Utc> {
        "2024-01-01T00:00:00Z".parse().unwrap()
    }

    fn job(n: usize) -> (BackfillJob, Vec<Task>) {
        let range = DateRange::from_instants(t0(), t0() + TimeDelta::days(10)).unwrap();
        let symbols: Vec<Symbol> = (0..n)
            .map(|i| Symbol::parse(&format!("S{i}")).unwrap())
            .collect();
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
            created_at: t0(),
            started_at: Some(t0()),
            finished_at: None,
            error: None,
            simulated: false,
        };
        let tasks = symbols
            .into_iter()
            .enumerate()
            .map(|(i, symbol)| {
                Task::queued(TaskId(i as i64), job.id, TaskUnit::Symbol(symbol), t0())
            })
            .collect();
        (job, tasks)
    }

    #[test]
    fn counts_symbols_and_candles() {
        let (job, mut tasks) = job(4);
        tasks[0].status = TaskStatus::Succeeded;
        tasks[0].candles_stored = 100;
        tasks[1].status = TaskStatus::Failed;
        tasks[2].status = TaskStatus::Running;
        tasks[2].candles_stored = 50;
        let p = JobProgress::derive(&job, &tasks, t0() + TimeDelta::seconds(10));
        assert_eq!(
            (
                p.symbols_total,
                p.symbols_done,
                p.symbols_failed,
                p.symbols_running,
                p.symbols_queued
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(p.candles_stored, 150);
        assert_eq!(p.candles_per_second, Some(15.0));
        assert_eq!(p.percent, 25.0);
    }

    #[test]
    fn running_symbols_count_by_their_checkpoint() {
        let (job, mut tasks) = job(2);
        tasks[0].status = TaskStatus::Running;
        tasks[0].checkpoint = Some(job.spec.range().from() + TimeDelta::days(5));
        let p = JobProgress::derive(&job, &tasks, t0() + TimeDelta::seconds(100));
        assert!((p.percent - 25.0).abs() < 0.01, "{}", p.percent);
        let eta = p.eta_seconds.unwrap();
        assert!((eta - 300.0).abs() < 1.0, "{eta}");
    }

    #[test]
    fn finished_job_has_no_eta_and_fixed_elapsed() {
        let (mut job, mut tasks) = job(1);
        tasks[0].status = TaskStatus::Succeeded;
        job.status = JobStatus::Succeeded;
        job.finished_at = Some(t0() + TimeDelta::seconds(4));
        let p = JobProgress::derive(&job, &tasks, t0() + TimeDelta::days(1));
        assert_eq!(p.percent, 100.0);
        assert_eq!(p.elapsed_seconds, Some(4.0));
        assert_eq!(p.eta_seconds, None);
    }

    proptest! {
        /// Checkpoints move forward, tasks finish, fail and are retried: percent never drops.
        #[test]
        fn percent_never_goes_backwards(steps in proptest::collection::vec((0usize..3, 0u8..4, 0i64..20_000), 1..60)) {
            let (job, mut tasks) = job(3);
            let mut last = JobProgress::derive(&job, &tasks, t0()).percent;
            for (i, action, minutes) in steps {
                let t = &mut tasks[i];
                match action {
                    0 if t.status != TaskStatus::Succeeded => {
                        t.status = TaskStatus::Running;
                        let cp = job.spec.range().from() + TimeDelta::minutes(minutes);
                        t.checkpoint = Some(t.checkpoint.map_or(cp, |old| old.max(cp)));
                    }
                    1 if t.status == TaskStatus::Running => t.status = TaskStatus::Succeeded,
                    2 if t.status == TaskStatus::Running => t.status = TaskStatus::Failed,
                    3 if t.status == TaskStatus::Failed => t.status = TaskStatus::Queued,
                    _ => {}
                }
                let now = JobProgress::derive(&job, &tasks, t0()).percent;
                prop_assert!(now >= last, "{} < {}", now, last);
                prop_assert!((0.0..=100.0).contains(&now));
                last = now;
            }
        }
    }
}
