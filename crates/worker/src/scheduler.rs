//! The scheduler: fires due schedules, each due time exactly once across every process that runs
//! one (storage's `fire_due` guarantees that), so every `serve` and `worker` may run it. With a
//! split watch, the runs that keep split-adjusted series are followed by a check for splits
//! that made stored series stale (see [`SplitWatch`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backfill_domain::Sources;
use backfill_storage::{ScheduleRun, ScheduleStore};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::splits::{SplitCheck, SplitWatch, WatchScope};

/// Schedule runs fired, by outcome (`created` jobs or `failed`).
pub const SCHEDULE_RUNS_TOTAL: &str = "backfill_schedule_runs_total";
/// When the earliest active schedule is next due, in Unix seconds (0 when none is).
pub const SCHEDULE_NEXT_DUE_SECONDS: &str = "backfill_schedule_next_due_timestamp_seconds";

/// Fires due schedules: at each schedule's due time (or within `poll` of it, for schedules
/// another process created) and once at start-up, which catches up what a downtime missed.
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn ScheduleStore>,
    available: Sources,
    poll: Duration,
    retry: Duration,
    watch: Option<SplitWatch>,
    /// A split check the runs asked for that could not be done yet (upstream or storage
    /// failed): retried on each look until it succeeds.
    pending: Arc<Mutex<Option<PendingCheck>>>,
}

/// A split check asked for: the symbols, and the latest end of the runs that asked.
type PendingCheck = (WatchScope, DateTime<Utc>);

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("available", &self.available)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// How long the scheduler sleeps at most before it looks again (schedules created or
    /// resumed elsewhere are fired at most this late).
    pub const DEFAULT_POLL: Duration = Duration::from_secs(5);
    /// The wait after a storage error before the next attempt.
    pub const DEFAULT_RETRY: Duration = Duration::from_secs(5);

    /// A scheduler over `store` whose runs' jobs use the sources this deployment has.
    pub fn new(store: Arc<dyn ScheduleStore>, available: Sources) -> Self {
        Self {
            store,
            available,
            poll: Self::DEFAULT_POLL,
            retry: Self::DEFAULT_RETRY,
            watch: None,
            pending: Arc::default(),
        }
    }

    /// Follows the runs that keep split-adjusted series with a split check.
    pub fn with_split_watch(mut self, watch: SplitWatch) -> Self {
        self.watch = Some(watch);
        self
    }

    /// The longest sleep between two looks (default 5 s).
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// Fires what is due at `now` and reports it (logs and metrics).
    ///
    /// # Errors
    /// Storage errors; nothing was fired then, and the next tick fires it.
    pub async fn tick(&self, now: DateTime<Utc>) -> crate::Result<Vec<ScheduleRun>> {
        let runs = self.store.fire_due(now, self.available).await?;
        for run in &runs {
            let outcome = match &run.error {
                None => {
                    info!(
                        schedule = %run.schedule, due_at = %run.due_at, jobs = ?run.job_ids,
                        "schedule fired"
                    );
                    "created"
                }
                Some(error) => {
                    warn!(
                        schedule = %run.schedule, due_at = %run.due_at, %error,
                        "schedule fired but created no job"
                    );
                    "failed"
                }
            };
            metrics::counter!(SCHEDULE_RUNS_TOTAL, "outcome" => outcome).increment(1);
        }
        if let Some(watch) = &self.watch {
            if let Err(err) = self.ask_for_check(watch, &runs).await {
                warn!(error = %err, "split watch: the runs' schedules could not be read");
            }
        }
        Ok(runs)
    }

    /// Adds what the runs keep to the pending check.
    async fn ask_for_check(&self, watch: &SplitWatch, runs: &[ScheduleRun]) -> crate::Result<()> {
        if let Some((scope, until)) = watch.scope_of(runs).await? {
            self.wait_for(scope, until);
        }
        Ok(())
    }

    /// Adds a scope to the pending check.
    fn wait_for(&self, scope: WatchScope, until: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.as_mut() {
            Some((waiting, at)) => {
                waiting.widen(scope);
                *at = (*at).max(until);
            }
            None => *pending = Some((scope, until)),
        }
    }

    /// Runs the pending split check, if any; it stays pending when it fails.
    ///
    /// # Errors
    /// The check's: upstream or storage failed.
    pub async fn check_splits(&self, now: DateTime<Utc>) -> crate::Result<Option<SplitCheck>> {
        let Some(watch) = &self.watch else {
            return Ok(None);
        };
        let asked = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some((scope, until)) = asked else {
            return Ok(None);
        };
        match watch.check(&scope, until, now).await {
            Ok(check) => Ok(Some(check)),
            Err(err) => {
                self.wait_for(scope, until);
                Err(err)
            }
        }
    }

    /// Fires due schedules until `shutdown` is cancelled. Storage errors are logged and retried.
    ///
    /// # Errors
    /// None so far: the result leaves room for errors that should end the process.
    pub async fn run(&self, shutdown: CancellationToken) -> crate::Result<()> {
        info!(poll = ?self.poll, "scheduler started");
        while !shutdown.is_cancelled() {
            let wait = match self.step().await {
                Ok(wait) => wait,
                Err(err) => {
                    warn!(error = %err, retry_in = ?self.retry, "scheduler: storage failed");
                    self.retry
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        info!("scheduler stopped");
        Ok(())
    }

    /// One look: fire what is due, then say how long to sleep.
    async fn step(&self) -> crate::Result<Duration> {
        let now = Utc::now();
        self.tick(now).await?;
        if let Err(err) = self.check_splits(now).await {
            warn!(error = %err, retry_in = ?self.retry, "split watch: the check failed");
            return Ok(self.retry);
        }
        let next = self.store.next_due().await?;
        metrics::gauge!(SCHEDULE_NEXT_DUE_SECONDS)
            .set(next.map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0));
        Ok(sleep_for(next, Utc::now(), self.poll))
    }
}

/// How long to sleep at `now` when the next due time is `next`: until it, but at most `poll`.
fn sleep_for(next: Option<DateTime<Utc>>, now: DateTime<Utc>, poll: Duration) -> Duration {
    next.map_or(poll, |next| {
        (next - now).to_std().unwrap_or(Duration::ZERO).min(poll)
    })
}

/// Describes the scheduler's metrics to the installed recorder.
pub fn describe_scheduler_metrics() {
    metrics::describe_counter!(
        SCHEDULE_RUNS_TOTAL,
        "Schedule runs fired by this process, by outcome (created jobs, or failed)"
    );
    metrics::describe_gauge!(
        SCHEDULE_NEXT_DUE_SECONDS,
        metrics::Unit::Seconds,
        "When the earliest active schedule is next due, as a Unix time (0: none is)"
    );
    metrics::describe_counter!(
        crate::SPLIT_REFETCHES_TOTAL,
        "Full jobs created by the split watch to fetch a stale adjusted series again"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use backfill_domain::{JobId, Name};
    use backfill_storage::MockScheduleStore;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn sleeps_until_the_next_due_time_but_at_most_the_poll() {
        let now = at("2024-03-08T20:00:00Z");
        let poll = Duration::from_secs(5);
        assert_eq!(sleep_for(None, now, poll), poll);
        assert_eq!(
            sleep_for(Some(at("2024-03-08T20:00:02Z")), now, poll),
            Duration::from_secs(2)
        );
        assert_eq!(sleep_for(Some(at("2024-03-08T21:00:00Z")), now, poll), poll);
        assert_eq!(
            sleep_for(Some(at("2024-03-08T19:00:00Z")), now, poll),
            Duration::ZERO
        );
    }

    #[tokio::test]
    async fn tick_fires_with_the_deployments_sources() {
        let mut store = MockScheduleStore::new();
        let now = at("2024-03-08T21:30:00Z");
        store
            .expect_fire_due()
            .withf(move |t, s| *t == now && s.flat_files)
            .times(1)
            .returning(|t, _| {
                Ok(vec![ScheduleRun {
                    schedule: Name::parse("nightly").unwrap(),
                    due_at: t,
                    fired_at: t,
                    job_ids: vec![JobId::new()],
                    error: None,
                }])
            });
        let scheduler = Scheduler::new(Arc::new(store), Sources { flat_files: true });
        let runs = scheduler.tick(now).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].job_ids.len(), 1);
    }

    /// The loop fires at start, fires again when the next due time comes, keeps going after a
    /// storage error, and stops on shutdown.
    #[tokio::test(start_paused = true)]
    async fn run_fires_at_start_and_at_each_due_time_and_survives_errors() {
        let shutdown = CancellationToken::new();
        let fired = Arc::new(Mutex::new(Vec::new()));
        let mut store = MockScheduleStore::new();
        let calls = Arc::new(Mutex::new(0_u32));
        {
            let fired = Arc::clone(&fired);
            let calls = Arc::clone(&calls);
            let shutdown = shutdown.clone();
            store.expect_fire_due().returning(move |now, _| {
                let mut n = calls.lock().unwrap();
                *n += 1;
                fired.lock().unwrap().push(now);
                match *n {
                    2 => Err(backfill_storage::Error::InvalidData("flaky".into())),
                    4 => {
                        shutdown.cancel();
                        Ok(Vec::new())
                    }
                    _ => Ok(Vec::new()),
                }
            });
        }
        // Due again one second from whenever it is asked.
        store
            .expect_next_due()
            .returning(|| Ok(Some(Utc::now() + chrono::TimeDelta::seconds(1))));
        let scheduler = Scheduler::new(Arc::new(store), Sources { flat_files: false });
        scheduler.run(shutdown).await.unwrap();
        assert_eq!(fired.lock().unwrap().len(), 4);
    }
}
