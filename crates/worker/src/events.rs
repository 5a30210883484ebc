use backfill_domain::{JobId, JobStatus, Symbol, TaskStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

/// What a worker reports as it goes. The API's Server-Sent Events and the CLI's progress bars
/// subscribe to these; they carry enough to redraw a line, and readers that need the whole
/// picture re-read the job from storage (progress is derived there, never accumulated here).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A worker claimed a symbol's task and began fetching.
    TaskStarted {
        job_id: JobId,
        symbol: Symbol,
        attempt: u32,
    },
    /// A page of candles and the task's checkpoint were committed.
    PageStored {
        job_id: JobId,
        symbol: Symbol,
        /// Bars in the page.
        fetched: u64,
        /// Bars written (new or changed).
        stored: u64,
        /// Every bar at or before this instant is stored.
        checkpoint: DateTime<Utc>,
    },
    /// A task stopped: succeeded, failed, cancelled, or queued again for a later attempt.
    TaskFinished {
        job_id: JobId,
        symbol: Symbol,
        status: TaskStatus,
        error: Option<String>,
    },
    /// The job reached a terminal status.
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

/// An in-process broadcast of [`ProgressEvent`]s. Cloning gives another handle to the same
/// channel. Publishing never blocks: a subscriber that falls behind loses the oldest events
/// (and is told so by `RecvError::Lagged`), which is harmless because events only say
/// "something changed" and the truth is in storage.
#[derive(Debug, Clone)]
pub struct ProgressBus {
    sender: broadcast::Sender<ProgressEvent>,
}

impl ProgressBus {
    /// A bus that keeps up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// Publishes an event to every current subscriber.
    pub fn publish(&self, event: ProgressEvent) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.sender.send(event);
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ProgressEvent> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_published_events_in_order() {
        let bus = ProgressBus::new(8);
        let mut rx = bus.subscribe();
        let job_id = JobId::new();
        let finished = ProgressEvent::JobFinished {
            job_id,
            status: JobStatus::Succeeded,
        };
        bus.publish(ProgressEvent::TaskStarted {
            job_id,
            symbol: Symbol::parse("AAPL").unwrap(),
            attempt: 1,
        });
        bus.publish(finished.clone());
        assert!(matches!(
            rx.recv().await.unwrap(),
            ProgressEvent::TaskStarted { .. }
        ));
        let got = rx.recv().await.unwrap();
        assert_eq!(got.job_id(), job_id);
        assert_eq!(got, finished);
        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(json["type"], "job_finished");
        assert_eq!(json["status"], "succeeded");
    }
}
