//! What the traits return about jobs, assembled from rows: a job's details in the order of its
//! symbols, listed jobs with their progress, claimed tasks with their leases.

use std::collections::HashMap;

use backfill_domain::{BackfillJob, JobId, JobProgress, Task, TaskTotals, TaskUnit};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::types::{ClaimedTask, JobDetails, JobSummary, Lease};

/// Tasks sorted into the order of their job's units (its symbols, or its days).
pub(crate) fn order_tasks(job: &BackfillJob, mut tasks: Vec<Task>) -> Vec<Task> {
    let units = job.spec.units();
    let position: HashMap<&TaskUnit, usize> =
        units.iter().enumerate().map(|(i, u)| (u, i)).collect();
    tasks.sort_by_key(|t| (position.get(&t.unit).copied().unwrap_or(usize::MAX), t.id));
    tasks
}

/// A job's details: its tasks in the order of its symbols and the progress derived from them.
pub(crate) fn job_details(job: BackfillJob, tasks: Vec<Task>) -> JobDetails {
    let tasks = order_tasks(&job, tasks);
    let progress = JobProgress::derive(&job, &tasks, Utc::now());
    JobDetails {
        job,
        tasks,
        progress,
    }
}

/// A listed job with its progress as of `now`, from the totals of its tasks.
pub(crate) fn job_summary(job: BackfillJob, totals: &TaskTotals, now: DateTime<Utc>) -> JobSummary {
    let progress = JobProgress::from_totals(&job, totals, now);
    JobSummary { job, progress }
}

/// Pairs claimed tasks (with their new fencing tokens) with their jobs, oldest job first.
pub(crate) fn claimed_tasks(
    worker_id: &str,
    tasks: Vec<(Task, i64)>,
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
