use std::time::Duration;

use backfill_domain::JobId;

use crate::{Backoff, WorkerId};

/// How a worker runs. Built by the binary from its flags; [`WorkerConfig::new`] documents the
/// defaults.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The lease holder's name in storage.
    pub id: WorkerId,
    /// Tasks run at the same time (they share one market data client and its rate limit).
    pub concurrency: usize,
    /// How long a claim lasts without a heartbeat. A worker that dies loses its tasks to other
    /// workers after this long.
    pub lease_ttl: Duration,
    /// How often leases are extended and cancellations noticed.
    pub heartbeat_interval: Duration,
    /// The longest an idle worker waits before looking for work again, whatever wake-ups say.
    pub idle_poll: Duration,
    /// Attempts of a task before a transient failure, or its worker dying mid-task (a lease that
    /// expired on the last attempt), fails it for good.
    pub max_attempts: u32,
    /// The wait before a task whose transient failure outlived the client's retries runs again.
    pub retry_backoff: Backoff,
    /// At shutdown, how long in-flight pages may take to commit before they are abandoned.
    pub shutdown_grace: Duration,
    /// Work only on this job's tasks (a one-shot `backfill run`); `None` takes any job's.
    pub only_job: Option<JobId>,
}

impl WorkerConfig {
    /// Defaults: 4 tasks at a time, 30 s leases with a heartbeat every second (so a
    /// cancellation is noticed within two seconds), an idle poll of 5 s, 5 attempts, retry
    /// waits from 5 s doubling to 5 min with full jitter, and 10 s for in-flight pages at
    /// shutdown, any job's tasks.
    pub fn new(id: WorkerId) -> Self {
        Self {
            id,
            concurrency: 4,
            lease_ttl: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(1),
            idle_poll: Duration::from_secs(5),
            max_attempts: 5,
            retry_backoff: Backoff {
                base: Duration::from_secs(5),
                max: Duration::from_secs(300),
                min: Duration::from_millis(500),
            },
            shutdown_grace: Duration::from_secs(10),
            only_job: None,
        }
    }
}
