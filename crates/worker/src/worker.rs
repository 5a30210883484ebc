use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backfill_domain::TaskId;
use backfill_storage::{ClaimRequest, ClaimedTask, Lease};
use tokio::task::{JoinError, JoinSet};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use backfill_progress::ProgressBus;

use crate::running::{Ctx, Running, StopReason};
use crate::{task, Result, WorkerConfig, WorkerDeps};

/// A backfill worker. See the crate documentation.
#[derive(Debug, Clone)]
pub struct Worker {
    ctx: Arc<Ctx>,
}

impl Worker {
    /// A worker over `deps` that publishes progress on `bus`.
    pub fn new(deps: WorkerDeps, bus: ProgressBus, config: WorkerConfig) -> Self {
        Self {
            ctx: Arc::new(Ctx { deps, bus, config }),
        }
    }

    /// The worker's configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.ctx.config
    }

    /// Runs until `shutdown` is cancelled: claims tasks while it has free slots, runs them,
    /// extends their leases, and stops tasks whose lease was lost or whose job was cancelled.
    ///
    /// On shutdown it stops claiming, lets in-flight pages commit for up to
    /// `shutdown_grace`, and releases its leases so that another worker resumes at once.
    /// Storage outages while running are logged and retried; they do not end the worker.
    ///
    /// # Errors
    /// Only when releasing the leases at shutdown fails (they then expire on their own).
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let cfg = &self.ctx.config;
        let queue = &self.ctx.deps.queue;
        let mut running = InFlight::default();
        let mut set: JoinSet<()> = JoinSet::new();
        let mut heartbeat = tokio::time::interval(cfg.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut trouble = Trouble::default();
        let mut claim = ClaimRequest {
            worker_id: cfg.id.as_str().to_owned(),
            max: 0,
            lease_ttl: cfg.lease_ttl,
            only_job: cfg.only_job,
            max_attempts: cfg.max_attempts,
        };
        info!(worker = %cfg.id, concurrency = cfg.concurrency, "worker started");

        while !shutdown.is_cancelled() {
            let free = cfg.concurrency.saturating_sub(running.tasks.len());
            if free > 0 && !trouble.pausing() {
                claim.max = u32::try_from(free).unwrap_or(u32::MAX);
                match queue.claim_tasks(&claim).await {
                    Ok(claimed) => {
                        trouble.clear();
                        for c in claimed {
                            self.spawn(c, &mut set, &mut running);
                        }
                    }
                    Err(err) => trouble.note("claiming tasks", &err),
                }
            }
            let want_work = running.tasks.len() < cfg.concurrency;
            let pause = trouble.delay();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(joined) = set.join_next_with_id(), if !set.is_empty() => {
                    self.reap(joined, &mut running).await;
                }
                _ = heartbeat.tick() => self.heartbeat(&running.tasks).await,
                _ = tokio::time::sleep(pause.unwrap_or_default()), if pause.is_some() => {
                    trouble.resume();
                }
                woke = queue.wait_for_work(cfg.idle_poll),
                    if want_work && pause.is_none() && cfg.only_job.is_none() => {
                    if let Err(err) = woke {
                        trouble.note("waiting for work", &err);
                    }
                }
                // Wake-ups announce any job's work, and other jobs' tasks would wake a worker
                // bound to one job again and again: it polls instead.
                _ = tokio::time::sleep(ONE_JOB_POLL),
                    if want_work && pause.is_none() && cfg.only_job.is_some() => {}
            }
            metrics::gauge!("backfill_leases_held").set(running.tasks.len() as f64);
        }

        info!(worker = %cfg.id, in_flight = running.tasks.len(), "shutting down");
        for r in running.tasks.values() {
            r.trigger(StopReason::Shutdown);
        }
        let drain = async {
            loop {
                tokio::select! {
                    joined = set.join_next_with_id() => match joined {
                        Some(joined) => self.reap(joined, &mut running).await,
                        None => break,
                    },
                    _ = heartbeat.tick() => self.heartbeat(&running.tasks).await,
                }
            }
        };
        if tokio::time::timeout(cfg.shutdown_grace, drain)
            .await
            .is_err()
        {
            warn!(
                grace = ?cfg.shutdown_grace,
                "in-flight pages did not commit in time; abandoning them"
            );
            set.shutdown().await;
        }
        let released = queue.release_leases(cfg.id.as_str()).await?;
        metrics::gauge!("backfill_leases_held").set(0.0);
        info!(worker = %cfg.id, released, "worker stopped");
        Ok(())
    }

    fn spawn(&self, claimed: ClaimedTask, set: &mut JoinSet<()>, running: &mut InFlight) {
        let id = claimed.lease.task_id;
        let r = Arc::new(Running::new(claimed.lease.clone(), claimed.job.id));
        running.tasks.insert(id, Arc::clone(&r));
        let ctx = Arc::clone(&self.ctx);
        let handle = set.spawn(task::run(ctx, claimed, r));
        running.by_handle.insert(handle.id(), id);
    }

    async fn reap(&self, joined: Result<(tokio::task::Id, ()), JoinError>, running: &mut InFlight) {
        let (handle, panicked) = match joined {
            Ok((handle, ())) => (handle, None),
            Err(err) => (err.id(), Some(err)),
        };
        let Some(r) = running
            .by_handle
            .remove(&handle)
            .and_then(|id| running.tasks.remove(&id))
        else {
            return;
        };
        if let Some(err) = panicked {
            if err.is_panic() {
                // Record the failure on the task, so that it is retried rather than left to
                // its lease.
                error!(task = %r.lease.task_id, error = %err, "a task panicked");
                task::record_panic(&self.ctx, &r).await;
            }
        }
    }

    /// Extends the leases of the tasks still fetching and storing. A task that is recording its
    /// outcome is left out: completing it ends its lease, which the heartbeat would otherwise
    /// report as lost.
    pub(crate) async fn heartbeat(&self, running: &HashMap<TaskId, Arc<Running>>) {
        let cfg = &self.ctx.config;
        let leases: Vec<Lease> = running
            .values()
            .filter(|r| !r.is_finishing())
            .map(|r| r.lease.clone())
            .collect();
        if leases.is_empty() {
            return;
        }
        match self
            .ctx
            .deps
            .queue
            .heartbeat(cfg.id.as_str(), &leases, cfg.lease_ttl)
            .await
        {
            Ok(report) => {
                for id in report.lost {
                    if let Some(r) = running.get(&id).filter(|r| !r.is_finishing()) {
                        warn!(task = %id, "lease lost; stopping the task");
                        r.trigger(StopReason::LeaseLost);
                    }
                }
                for id in report.cancelled {
                    if let Some(r) = running.get(&id) {
                        info!(task = %id, "job cancelled; stopping the task");
                        r.trigger(StopReason::Cancelled);
                    }
                }
            }
            Err(err) => warn!(error = %err, "heartbeat failed; retrying on the next beat"),
        }
    }
}

/// How often a worker bound to one job looks for its tasks when it has free slots.
const ONE_JOB_POLL: Duration = Duration::from_millis(250);

/// The tasks in flight, by task id and by the id of the tokio task running each.
#[derive(Debug, Default)]
struct InFlight {
    tasks: HashMap<TaskId, Arc<Running>>,
    by_handle: HashMap<tokio::task::Id, TaskId>,
}

/// Storage trouble in the claim loop: after a failure, wait (1 s, doubling to 30 s) before
/// claiming again instead of spinning.
#[derive(Debug, Default)]
struct Trouble {
    failures: u32,
    pausing: bool,
}

impl Trouble {
    fn note(&mut self, what: &str, err: &backfill_storage::Error) {
        self.failures += 1;
        self.pausing = true;
        warn!(error = %err, failures = self.failures, "{what} failed; retrying");
    }

    fn clear(&mut self) {
        self.failures = 0;
        self.pausing = false;
    }

    fn resume(&mut self) {
        self.pausing = false;
    }

    fn pausing(&self) -> bool {
        self.pausing
    }

    fn delay(&self) -> Option<Duration> {
        self.pausing.then(|| {
            let exp = self.failures.saturating_sub(1).min(5);
            Duration::from_secs(1 << exp).min(Duration::from_secs(30))
        })
    }
}
