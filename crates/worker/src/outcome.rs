//! How a task's fetching and storing ended, and the report of each stored page: what symbol
//! tasks (`task.rs`) and day tasks (`day.rs`) share.

use backfill_domain::{BackfillJob, ProgressEvent, TaskUnit};
use backfill_storage::{DayCompletion, IngestOutcome};
use chrono::Utc;

use crate::running::{Ctx, StopReason};

/// How fetching and storing ended, before it is recorded.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every interval of a symbol task was fetched and stored.
    Done,
    /// A day task ended well; this is what to record.
    DayDone(DayCompletion),
    /// Told to stop.
    Stopped(StopReason),
    /// The market data source failed (after its own retries).
    Market(backfill_polygon::Error),
    /// Storage failed with something other than a lost lease.
    Storage(backfill_storage::Error),
    /// This worker cannot serve the task (it lacks what its source needs): a permanent failure
    /// with this message.
    Unavailable(String),
}

/// Counts a stored page in the metrics and tells the bus.
pub(crate) fn report_page(
    ctx: &Ctx,
    job: &BackfillJob,
    unit: &TaskUnit,
    fetched: u64,
    stored: &IngestOutcome,
    checkpoint: chrono::DateTime<Utc>,
) {
    metrics::counter!("backfill_candles_fetched_total").increment(fetched);
    metrics::counter!("backfill_candles_stored_total").increment(stored.stored());
    metrics::counter!("backfill_pages_stored_total").increment(1);
    ctx.bus.publish(ProgressEvent::PageStored {
        job_id: job.id,
        unit: unit.clone(),
        fetched,
        stored: stored.stored(),
        checkpoint,
    });
}
