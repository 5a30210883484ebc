//! What happens to a job as its tasks end, and to a task when an attempt fails: the policies
//! that every storage backend applies inside its transactions, written once here.

use crate::{JobStatus, Source, Task, TaskStatus};

/// How many of a job's tasks are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub queued: usize,
    pub running: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl TaskCounts {
    /// Counts `n` more tasks in `status`.
    pub fn add(&mut self, status: TaskStatus, n: usize) {
        match status {
            TaskStatus::Queued => self.queued += n,
            TaskStatus::Running => self.running += n,
            TaskStatus::Succeeded => self.succeeded += n,
            TaskStatus::Failed => self.failed += n,
            TaskStatus::Cancelled => self.cancelled += n,
        }
    }

    /// The counts of these tasks.
    pub fn of(tasks: &[Task]) -> Self {
        let mut counts = Self::default();
        for t in tasks {
            counts.add(t.status, 1);
        }
        counts
    }

    /// Every task.
    pub fn total(&self) -> usize {
        self.queued + self.running + self.succeeded + self.failed + self.cancelled
    }

    /// Tasks that are still to run or running.
    pub fn unfinished(&self) -> usize {
        self.queued + self.running
    }
}

/// A job none of whose tasks is left to run: the status it ends in, and why, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub status: JobStatus,
    /// Set when some symbols were not stored ("2 of 5 symbols failed, 1 cancelled").
    pub error: Option<String>,
    /// True when the job changes status now (it was queued or running); false when it had
    /// already ended (a cancelled job whose last running task has just stopped).
    pub changes: bool,
}

impl JobStatus {
    /// What a job in this status becomes now that its tasks are as `counts` says, once none of
    /// them is queued or running: a queued or running job settles in
    /// [`JobStatus::settled`]'s status (cancelled tasks count as not stored); a job that had
    /// already ended keeps its status. `None` while tasks remain to run, or for a job without
    /// tasks. `source` names the tasks in the error text (symbols or days).
    pub fn settle(self, counts: &TaskCounts, source: Source) -> Option<Settlement> {
        if counts.unfinished() > 0 || counts.total() == 0 {
            return None;
        }
        if self.is_terminal() {
            return Some(Settlement {
                status: self,
                error: None,
                changes: false,
            });
        }
        let unfinished = counts.failed + counts.cancelled;
        let error = (unfinished > 0).then(|| {
            let noun = if source.is_bulk() { "days" } else { "symbols" };
            let mut msg = format!("{} of {} {noun} failed", counts.failed, counts.total());
            if counts.cancelled > 0 {
                msg.push_str(&format!(", {} cancelled", counts.cancelled));
            }
            msg
        });
        Some(Settlement {
            status: Self::settled(counts.succeeded, unfinished),
            error,
            changes: true,
        })
    }
}

impl TaskStatus {
    /// The status of a running task after a failed attempt, its `attempts`-th: cancelled when
    /// its job was cancelled meanwhile, queued again when a retry is wanted and attempts
    /// remain, failed otherwise. Every outcome is a legal transition from running.
    pub fn after_failed_attempt(
        job: JobStatus,
        attempts: u32,
        retry_wanted: bool,
        max_attempts: u32,
    ) -> Self {
        if job == JobStatus::Cancelled {
            Self::Cancelled
        } else if retry_wanted && attempts < max_attempts {
            Self::Queued
        } else {
            Self::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(
        queued: usize,
        running: usize,
        succeeded: usize,
        failed: usize,
        cancelled: usize,
    ) -> TaskCounts {
        TaskCounts {
            queued,
            running,
            succeeded,
            failed,
            cancelled,
        }
    }

    #[test]
    fn settles_only_when_all_tasks_are_terminal() {
        assert_eq!(
            JobStatus::Running.settle(&c(1, 0, 2, 0, 0), Source::Rest),
            None
        );
        assert_eq!(
            JobStatus::Running.settle(&c(0, 1, 2, 0, 0), Source::Rest),
            None
        );
        assert_eq!(
            JobStatus::Running.settle(&TaskCounts::default(), Source::Rest),
            None
        );
        assert_eq!(
            JobStatus::Running.settle(&c(0, 0, 2, 0, 0), Source::Rest),
            Some(Settlement {
                status: JobStatus::Succeeded,
                error: None,
                changes: true
            })
        );
        assert_eq!(
            JobStatus::Queued
                .settle(&c(0, 0, 0, 2, 0), Source::Rest)
                .map(|s| s.status),
            Some(JobStatus::Failed)
        );
        let s = JobStatus::Running
            .settle(&c(0, 0, 1, 1, 1), Source::Rest)
            .unwrap();
        assert_eq!(s.status, JobStatus::CompletedWithErrors);
        assert_eq!(
            s.error.as_deref(),
            Some("1 of 3 symbols failed, 1 cancelled")
        );
    }

    #[test]
    fn an_ended_job_keeps_its_status() {
        let s = JobStatus::Cancelled
            .settle(&c(0, 0, 2, 0, 1), Source::Rest)
            .unwrap();
        assert_eq!(
            s,
            Settlement {
                status: JobStatus::Cancelled,
                error: None,
                changes: false
            }
        );
        assert_eq!(
            JobStatus::Cancelled.settle(&c(0, 1, 2, 0, 1), Source::Rest),
            None
        );
    }

    #[test]
    fn a_failed_attempt_retries_while_attempts_remain() {
        use JobStatus::{Cancelled, Running};
        let after = TaskStatus::after_failed_attempt;
        assert_eq!(after(Running, 1, true, 3), TaskStatus::Queued);
        assert_eq!(after(Running, 3, true, 3), TaskStatus::Failed);
        assert_eq!(after(Running, 1, false, 3), TaskStatus::Failed);
        assert_eq!(after(Cancelled, 1, true, 3), TaskStatus::Cancelled);
        for next in [
            TaskStatus::Queued,
            TaskStatus::Failed,
            TaskStatus::Cancelled,
        ] {
            assert!(TaskStatus::Running.can_become(next));
        }
    }

    #[test]
    fn counts_tasks_by_status() {
        let mut counts = TaskCounts::default();
        counts.add(TaskStatus::Running, 2);
        counts.add(TaskStatus::Cancelled, 1);
        assert_eq!((counts.total(), counts.unfinished()), (3, 2));
    }
}
