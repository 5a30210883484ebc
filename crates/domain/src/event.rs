//! What a worker reports as it goes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{JobId, JobStatus, TaskStatus, TaskUnit};

/// What a worker reports as it goes. The API's Server-Sent Events and the CLI's progress bars
/// subscribe to these; they carry enough to redraw a line, and readers that need the whole
/// picture re-read the job from storage (progress is derived there, never accumulated here).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A worker claimed a task (a symbol, or a day of a bulk source) and began fetching.
    TaskStarted {
        job_id: JobId,
        #[serde(flatten)]
        unit: TaskUnit,
        attempt: u32,
    },
    /// A page of candles and the task's checkpoint were committed.
    PageStored {
        job_id: JobId,
        #[serde(flatten)]
        unit: TaskUnit,
        /// Bars in the page.
        fetched: u64,
        /// Bars written (new or changed).
        stored: u64,
        /// Every bar at or before this instant is stored (symbol tasks; for a day task the
        /// day's last instant once the day is stored, its first before).
        checkpoint: DateTime<Utc>,
    },
    /// A task stopped: succeeded, failed, cancelled, or queued again for a later attempt.
    TaskFinished {
        job_id: JobId,
        #[serde(flatten)]
        unit: TaskUnit,
        status: TaskStatus,
        error: Option<String>,
    },
    /// The job reached a terminal status and none of its tasks is left to run.
    JobFinished { job_id: JobId, status: JobStatus },
}

impl ProgressEvent {
    /// The job the event belongs to.
    pub fn job_id(&self) -> JobId {
        match self {
            Self::TaskStarted { job_id, .. }
            | Self::PageStored { job_id, .. }
            | Self::TaskFinished { job_id, .. }
            | Self::JobFinished { job_id, .. } => *job_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Symbol;

    #[test]
    fn events_serialise_with_their_type() {
        let job_id = JobId::new();
        let finished = ProgressEvent::JobFinished {
            job_id,
            status: JobStatus::Succeeded,
        };
        assert_eq!(finished.job_id(), job_id);
        let json = serde_json::to_value(&finished).unwrap();
        assert_eq!(json["type"], "job_finished");
        assert_eq!(json["status"], "succeeded");
        let started = ProgressEvent::TaskStarted {
            job_id,
            unit: TaskUnit::Symbol(Symbol::parse("AAPL").unwrap()),
            attempt: 2,
        };
        let json = serde_json::to_value(&started).unwrap();
        assert_eq!(json["type"], "task_started");
        assert_eq!(json["symbol"], "AAPL");
        let day = ProgressEvent::TaskFinished {
            job_id,
            unit: TaskUnit::Day("2024-01-02".parse().unwrap()),
            status: TaskStatus::Succeeded,
            error: None,
        };
        let json = serde_json::to_value(&day).unwrap();
        assert_eq!(json["day"], "2024-01-02");
        assert_eq!(json["status"], "succeeded");
    }
}
