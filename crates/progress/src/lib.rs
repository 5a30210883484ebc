//! The in-process progress bus. Workers publish [`ProgressEvent`]s on a [`ProgressBus`]; the
//! API's Server-Sent Events and the CLI's progress bars subscribe. It is a crate of its own so
//! that the API can follow a worker's progress without depending on the worker (nor on the
//! market data client the worker brings).

use backfill_domain::ProgressEvent;
use tokio::sync::broadcast;

pub use tokio::sync::broadcast::error::RecvError;
pub use tokio::sync::broadcast::Receiver;

/// An in-process broadcast of [`ProgressEvent`]s. Cloning gives another handle to the same
/// channel. Publishing never blocks: a subscriber that falls behind loses the oldest events
/// (and is told so by [`RecvError::Lagged`]), which is harmless because events only say
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
    pub fn subscribe(&self) -> Receiver<ProgressEvent> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use backfill_domain::{JobId, JobStatus, Symbol, TaskUnit};

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
            unit: TaskUnit::Symbol(Symbol::parse("AAPL").unwrap()),
            attempt: 1,
        });
        bus.publish(finished.clone());
        assert!(matches!(
            rx.recv().await.unwrap(),
            ProgressEvent::TaskStarted { .. }
        ));
        assert_eq!(rx.recv().await.unwrap(), finished);
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let bus = ProgressBus::new(1);
        let mut rx = bus.subscribe();
        for status in [JobStatus::Failed, JobStatus::Succeeded] {
            bus.publish(ProgressEvent::JobFinished {
                job_id: JobId::new(),
                status,
            });
        }
        assert!(matches!(rx.recv().await, Err(RecvError::Lagged(1))));
        assert!(matches!(
            rx.recv().await,
            Ok(ProgressEvent::JobFinished {
                status: JobStatus::Succeeded,
                ..
            })
        ));
    }
}
