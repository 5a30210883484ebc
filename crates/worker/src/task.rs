//! One task's life: plan, fetch and store page by page, then record how it ended.

use std::sync::Arc;
use std::time::Instant;

use backfill_domain::{
    BackfillJob, DateRange, JobStatus, ProgressEvent, Symbol, Task, TaskStatus, TaskUnit,
};
use backfill_polygon::AggregatesRequest;
use backfill_storage::{ClaimedTask, Fetched, Lease, Recorded};
use chrono::{TimeDelta, Utc};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::day;
use crate::intervals_to_fetch;
use crate::outcome::{report_page, Outcome};
use crate::running::{Ctx, Running, StopReason};

/// Runs one claimed task to its end and records the result. Never panics on bad data or
/// failures: every outcome is written to the task, where people can read it.
pub(crate) async fn run(ctx: Arc<Ctx>, claimed: ClaimedTask, running: Arc<Running>) {
    let ClaimedTask { lease, task, job } = claimed;
    let span = info_span!(
        "task",
        job_id = %job.id,
        unit = %task.unit,
        attempt = task.attempts,
        worker = %ctx.config.id,
    );
    async move {
        ctx.bus.publish(ProgressEvent::TaskStarted {
            job_id: job.id,
            unit: task.unit.clone(),
            attempt: task.attempts,
        });
        let started = Instant::now();
        let fetch_started = Utc::now();
        let outcome = match &task.unit {
            TaskUnit::Symbol(symbol) => {
                fetch_and_store(&ctx, &lease, &task, symbol, &job, &running).await
            }
            TaskUnit::Day(day) => {
                day::fetch_and_store(&ctx, &lease, &task, *day, &job, &running, fetch_started).await
            }
        };
        running.finish();
        let recorded = record(&ctx, &lease, &task, &job, outcome, fetch_started).await;
        let elapsed = started.elapsed().as_secs_f64();
        if let Some(Reported {
            status,
            error,
            job_ended,
        }) = recorded
        {
            metrics::histogram!("backfill_task_duration_seconds", "status" => status.as_str())
                .record(elapsed);
            metrics::counter!("backfill_tasks_finished_total", "status" => status.as_str())
                .increment(1);
            ctx.bus.publish(ProgressEvent::TaskFinished {
                job_id: job.id,
                unit: task.unit.clone(),
                status,
                error,
            });
            if let Some(status) = job_ended {
                info!(%status, "job finished");
                ctx.bus.publish(ProgressEvent::JobFinished {
                    job_id: job.id,
                    status,
                });
            }
        }
    }
    .instrument(span)
    .await;
}

async fn fetch_and_store(
    ctx: &Ctx,
    lease: &Lease,
    task: &Task,
    symbol: &Symbol,
    job: &BackfillJob,
    running: &Running,
) -> Outcome {
    let spec = &job.spec;
    let deps = &ctx.deps;
    let coverage = match spec.mode() {
        backfill_domain::BackfillMode::Full => Vec::new(),
        backfill_domain::BackfillMode::Missing => {
            match deps
                .candles
                .coverage(symbol, spec.timeframe(), spec.adjusted())
                .await
            {
                Ok(c) => c,
                Err(e) => return Outcome::Storage(e),
            }
        }
    };
    let intervals = intervals_to_fetch(spec.range(), spec.mode(), &coverage, task.checkpoint);
    debug!(intervals = intervals.len(), "planned");
    for interval in intervals {
        let request = AggregatesRequest {
            symbol: symbol.clone(),
            timeframe: spec.timeframe(),
            range: interval,
            adjusted: spec.adjusted(),
        };
        let mut cursor = None;
        loop {
            let page = tokio::select! {
                biased;
                _ = running.stop.cancelled() => return Outcome::Stopped(running.reason()),
                page = deps.market.fetch_page(&request, cursor.take()) => page,
            };
            let page = match page {
                Ok(p) => p,
                Err(e) => return Outcome::Market(e),
            };
            // Storing is not interrupted: the page and the checkpoint commit together.
            let fetched = Fetched {
                requests: page.requests,
                bytes: page.bytes,
            };
            let stored = match deps
                .candles
                .ingest_page(lease, &page.candles, page.covered_through, fetched)
                .await
            {
                Ok(o) => o,
                Err(backfill_storage::Error::LeaseLost { .. }) => {
                    return Outcome::Stopped(StopReason::LeaseLost)
                }
                Err(e) => return Outcome::Storage(e),
            };
            report_page(
                ctx,
                job,
                &task.unit,
                page.candles.len() as u64,
                &stored,
                page.covered_through,
            );
            if stored.job_cancelled {
                running.trigger(StopReason::Cancelled);
            }
            if running.stop.is_cancelled() {
                return Outcome::Stopped(running.reason());
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Outcome::Done
}

/// What [`record`] reports: the task's new status and error for the progress event, and the
/// job's status when the job ended with this task.
#[derive(Debug)]
struct Reported {
    status: TaskStatus,
    error: Option<String>,
    job_ended: Option<JobStatus>,
}

impl Reported {
    fn new(recorded: Recorded, error: Option<String>) -> Self {
        Self {
            status: recorded.task,
            error,
            job_ended: recorded.job_ended,
        }
    }
}

/// Writes the outcome to the task. Returns what to report, or `None` when the task is no longer
/// this worker's to report.
async fn record(
    ctx: &Ctx,
    lease: &Lease,
    task: &Task,
    job: &BackfillJob,
    outcome: Outcome,
    fetch_started: chrono::DateTime<Utc>,
) -> Option<Reported> {
    let queue = &ctx.deps.queue;
    let cfg = &ctx.config;
    let result = match outcome {
        Outcome::Done => {
            // Bars after the moment fetching began may still appear upstream, so coverage
            // stops there.
            let range = job.spec.range();
            let covered: Vec<DateRange> =
                DateRange::from_instants(range.from(), range.to().min(fetch_started))
                    .into_iter()
                    .collect();
            queue
                .complete_task(lease, &covered)
                .await
                .map(|r| Reported::new(r, None))
        }
        Outcome::DayDone(completion) => queue
            .complete_day(lease, &completion)
            .await
            .map(|r| Reported::new(r, None)),
        Outcome::Stopped(StopReason::Cancelled) => queue
            .cancel_task(lease, "the job was cancelled")
            .await
            .map(|r| Reported::new(r, None)),
        Outcome::Stopped(StopReason::Shutdown) => {
            info!("stopped for shutdown; the lease will be released");
            return Some(Reported {
                status: TaskStatus::Queued,
                error: None,
                job_ended: None,
            });
        }
        Outcome::Stopped(StopReason::LeaseLost) => {
            warn!("lease lost; another worker owns this task now");
            return None;
        }
        Outcome::Unavailable(message) => {
            warn!(error = %message, "cannot serve the task");
            queue
                .fail_task(lease, &message, None, cfg.max_attempts)
                .await
                .map(|r| Reported::new(r, Some(message)))
        }
        Outcome::Market(err) if err.is_permanent() => {
            let message = err.to_string();
            warn!(error = %message, "permanent failure");
            queue
                .fail_task(lease, &message, None, cfg.max_attempts)
                .await
                .map(|r| Reported::new(r, Some(message)))
        }
        Outcome::Market(err) => {
            let wait = cfg
                .retry_backoff
                .delay(task.attempts)
                .max(err.retry_after().unwrap_or_default());
            retry_later(ctx, lease, err.to_string(), wait).await
        }
        Outcome::Storage(err) => {
            let wait = cfg.retry_backoff.delay(task.attempts);
            retry_later(ctx, lease, format!("storage failed: {}", chain(&err)), wait).await
        }
    };
    match result {
        Ok(done) => Some(done),
        Err(backfill_storage::Error::LeaseLost { .. }) => {
            warn!("lease lost before the outcome could be recorded");
            None
        }
        Err(err) => {
            warn!(error = %chain(&err), "could not record the outcome; the lease will expire");
            None
        }
    }
}

async fn retry_later(
    ctx: &Ctx,
    lease: &Lease,
    message: String,
    wait: std::time::Duration,
) -> backfill_storage::Result<Reported> {
    let retry_at = Utc::now() + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
    warn!(error = %message, ?wait, "transient failure");
    metrics::counter!("backfill_task_retries_total").increment(1);
    ctx.deps
        .queue
        .fail_task(lease, &message, Some(retry_at), ctx.config.max_attempts)
        .await
        .map(|r| Reported::new(r, Some(message)))
}

/// Records a panicked task as a transient failure, so that it is retried.
pub(crate) async fn record_panic(ctx: &Ctx, running: &Running) {
    let retry_at = Utc::now() + TimeDelta::seconds(5);
    let recorded = ctx
        .deps
        .queue
        .fail_task(
            &running.lease,
            "internal error: the task panicked",
            Some(retry_at),
            ctx.config.max_attempts,
        )
        .await;
    match recorded {
        Ok(Recorded {
            job_ended: Some(status),
            ..
        }) => ctx.bus.publish(ProgressEvent::JobFinished {
            job_id: running.job_id,
            status,
        }),
        Ok(_) => {}
        Err(err) => {
            warn!(error = %chain(&err), "could not record the panic; the lease will expire");
        }
    }
}

/// An error with its sources, for logs and task errors.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
