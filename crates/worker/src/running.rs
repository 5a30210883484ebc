//! What a worker and its tasks share: the worker's context, and each task in flight with the
//! means to stop it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use backfill_domain::JobId;
use backfill_progress::ProgressBus;
use backfill_storage::Lease;
use tokio_util::sync::CancellationToken;

use crate::{WorkerConfig, WorkerDeps};

/// A worker's dependencies, progress bus and configuration, shared by its tasks.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) deps: WorkerDeps,
    pub(crate) bus: ProgressBus,
    pub(crate) config: WorkerConfig,
}

/// Why a running task was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Its job was cancelled: store nothing more, mark the task cancelled.
    Cancelled,
    /// Another worker holds it now, or it finished elsewhere: write nothing more.
    LeaseLost,
    /// The worker is shutting down: leave the task to be released.
    Shutdown,
}

/// One task in flight: its lease and the means to stop it.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) lease: Lease,
    pub(crate) job_id: JobId,
    pub(crate) stop: CancellationToken,
    pub(crate) reason: OnceLock<StopReason>,
    /// Set when the task has stopped fetching and storing and records its outcome, which ends
    /// the lease: heartbeats leave it alone from then on.
    finishing: AtomicBool,
}

impl Running {
    pub(crate) fn new(lease: Lease, job_id: JobId) -> Self {
        Self {
            lease,
            job_id,
            stop: CancellationToken::new(),
            reason: OnceLock::new(),
            finishing: AtomicBool::new(false),
        }
    }

    /// Asks the task to stop after the page it is storing. The first reason given wins.
    pub(crate) fn trigger(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.stop.cancel();
    }

    /// Marks the task as recording its outcome.
    pub(crate) fn finish(&self) {
        self.finishing.store(true, Ordering::Release);
    }

    pub(crate) fn is_finishing(&self) -> bool {
        self.finishing.load(Ordering::Acquire)
    }

    pub(crate) fn reason(&self) -> StopReason {
        self.reason.get().copied().unwrap_or(StopReason::Shutdown)
    }
}
