//! One request quota for the whole fleet: the Polygon client's [`RequestQuota`] kept in the
//! database's [`QuotaStore`], so that every `serve`, `worker` and `run` process that shares a
//! PostgreSQL database and a key stays under the key's limit together.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backfill_polygon::{QuotaUse, RequestQuota, Slot};
use backfill_storage::{Acquired, Quota, QuotaSlot, QuotaStore, QuotaUsage};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

/// How long a stopping process waits for the slots it gave back to reach the database.
const SETTLE: Duration = Duration::from_secs(5);

/// The fleet's quota of one key, as one process sees it.
pub(crate) struct FleetQuota {
    store: Arc<dyn QuotaStore>,
    quota: Arc<Quota>,
    /// The tasks of this process ask the database one at a time, in the order they came, so
    /// that a full quota costs the database one waiting taker per process.
    turn: tokio::sync::Mutex<()>,
    /// This process's own pause after a 429, which holds it back even when the database could
    /// not record the fleet's.
    paused_until: Mutex<Option<Instant>>,
    /// Where slots are given back: the runtime this was built on, which lives as long as the
    /// process (a worker embedded in `serve` runs on a runtime that ends before it).
    runtime: Option<Handle>,
    /// Slots being given back, so that a stopping process can wait for them.
    releasing: Mutex<Vec<JoinHandle<()>>>,
}

impl FleetQuota {
    /// The quota of `store`; slots are given back on the current runtime, if any.
    pub(crate) fn new(store: Arc<dyn QuotaStore>, quota: Quota) -> Self {
        Self {
            store,
            quota: Arc::new(quota),
            turn: tokio::sync::Mutex::new(()),
            paused_until: Mutex::new(None),
            runtime: Handle::try_current().ok(),
            releasing: Mutex::new(Vec::new()),
        }
    }

    /// Waits (a few seconds at most) until the slots given back so far have reached the
    /// database, so that a process that stops does not leave them counting until they go
    /// stale. Call it once the process's requests have ended.
    pub(crate) async fn settle(&self) {
        let pending = std::mem::take(&mut *lock(&self.releasing));
        let all = async {
            for release in pending {
                let _ = release.await;
            }
        };
        if tokio::time::timeout(SETTLE, all).await.is_err() {
            warn!("quota slots not given back within {SETTLE:?}; they count until they go stale");
        }
    }

    /// The end of this process's pause, if it has not passed.
    fn paused(&self) -> Option<Instant> {
        let until = *lock(&self.paused_until);
        until.filter(|until| *until > Instant::now())
    }

    /// How much of the quota the fleet uses now.
    pub(crate) async fn usage(&self) -> backfill_storage::Result<QuotaUsage> {
        self.store.usage(&self.quota).await
    }
}

impl std::fmt::Debug for FleetQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetQuota")
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RequestQuota for FleetQuota {
    async fn acquire(&self) -> backfill_polygon::Result<Slot> {
        let start = Instant::now();
        let _turn = self.turn.lock().await;
        loop {
            if let Some(until) = self.paused() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            match self.store.try_acquire(&self.quota).await {
                Ok(Acquired::Slot(QuotaSlot(id))) => {
                    let waited = start.elapsed();
                    metrics::counter!("backfill_quota_slots_taken_total").increment(1);
                    metrics::gauge!("backfill_quota_wait_seconds_total")
                        .increment(waited.as_secs_f64());
                    // Identity values are positive.
                    let id = u64::try_from(id).unwrap_or_default();
                    return Ok(Slot { id, waited });
                }
                // No slot can free sooner: sleeping is the protocol, not a guess.
                Ok(Acquired::Wait(wait)) => tokio::time::sleep(wait).await,
                Err(err) => {
                    metrics::counter!("backfill_quota_errors_total").increment(1);
                    return Err(backfill_polygon::Error::Quota {
                        message: chain(err),
                    });
                }
            }
        }
    }

    fn release(&self, slot: Slot) {
        let Some(runtime) = self.runtime.clone().or_else(|| Handle::try_current().ok()) else {
            warn!("no runtime to give a quota slot back on; it counts until it goes stale");
            return;
        };
        let store = Arc::clone(&self.store);
        let quota = Arc::clone(&self.quota);
        let slot = QuotaSlot(i64::try_from(slot.id).unwrap_or(i64::MAX));
        let release = runtime.spawn(async move {
            if let Err(err) = store.release(&quota, slot).await {
                warn!(error = %chain(err), "could not give a quota slot back; it counts until it goes stale");
            }
        });
        let mut releasing = lock(&self.releasing);
        releasing.retain(|r| !r.is_finished());
        releasing.push(release);
    }

    async fn usage(&self) -> backfill_polygon::Result<QuotaUse> {
        let usage =
            self.store
                .usage(&self.quota)
                .await
                .map_err(|err| backfill_polygon::Error::Quota {
                    message: chain(err),
                })?;
        Ok(QuotaUse {
            in_use: usage.in_use,
            paused_for: usage.paused_for,
        })
    }

    fn shared(&self) -> bool {
        true
    }

    async fn pause(&self, delay: Duration) {
        let until = Instant::now() + delay;
        {
            let mut paused = lock(&self.paused_until);
            if paused.is_none_or(|p| p < until) {
                *paused = Some(until);
            }
        }
        if let Err(err) = self.store.pause(&self.quota, delay).await {
            warn!(error = %chain(err), "could not pause the fleet's quota; this process pauses alone");
        }
    }

    fn limit(&self) -> Option<NonZeroU32> {
        Some(self.quota.limit)
    }

    fn window(&self) -> Duration {
        self.quota.window
    }
}

/// A storage error with its causes, for a message.
fn chain(err: backfill_storage::Error) -> String {
    format!("{:#}", anyhow::Error::new(err))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `GET /api/v1/quota` over the client's quota, whichever it is.
pub(crate) struct ClientQuota(pub(crate) Arc<dyn RequestQuota>);

#[async_trait]
impl backfill_api::QuotaView for ClientQuota {
    async fn quota(&self) -> Result<backfill_api::QuotaBody, String> {
        let usage = self.0.usage().await.map_err(|e| e.to_string())?;
        Ok(backfill_api::QuotaBody {
            scope: if self.0.shared() {
                backfill_api::QuotaScope::Fleet
            } else {
                backfill_api::QuotaScope::Process
            },
            limit: self.0.limit().map(NonZeroU32::get),
            window_seconds: self.0.window().as_secs_f64(),
            in_use: usage.in_use,
            paused_for_seconds: usage.paused_for.map(|d| d.as_secs_f64()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use backfill_storage::{Error, MockQuotaStore};

    use super::*;

    fn quota() -> Quota {
        Quota {
            key: "key-id".to_owned(),
            limit: NonZeroU32::new(2).unwrap(),
            window: Duration::from_secs(60),
            max_request: Duration::from_secs(70),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_as_long_as_the_database_answers_then_takes_the_slot() {
        let mut store = MockQuotaStore::new();
        let calls = AtomicU32::new(0);
        store.expect_try_acquire().times(2).returning(move |_| {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(Acquired::Wait(Duration::from_secs(7))),
                _ => Ok(Acquired::Slot(QuotaSlot(42))),
            }
        });
        let fleet = FleetQuota::new(Arc::new(store), quota());
        let slot = fleet.acquire().await.unwrap();
        assert_eq!(
            slot,
            Slot {
                id: 42,
                waited: Duration::from_secs(7)
            }
        );
        assert_eq!(fleet.limit(), NonZeroU32::new(2));
        assert_eq!(fleet.window(), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn a_slot_is_given_back_in_the_background_and_settle_waits_for_it() {
        let mut store = MockQuotaStore::new();
        let given = Arc::new(AtomicU32::new(0));
        let count = Arc::clone(&given);
        store
            .expect_release()
            .withf(|q, slot| q.key == "key-id" && *slot == QuotaSlot(42))
            .times(1)
            .returning(move |_, _| {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        let fleet = FleetQuota::new(Arc::new(store), quota());
        fleet.release(Slot {
            id: 42,
            waited: Duration::ZERO,
        });
        fleet.settle().await;
        assert_eq!(given.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_database_is_a_quota_error_and_a_429_still_holds_this_process_back() {
        let mut store = MockQuotaStore::new();
        let calls = AtomicU32::new(0);
        store.expect_try_acquire().times(2).returning(move |_| {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Error::database("connection refused", true)),
                _ => Ok(Acquired::Slot(QuotaSlot(1))),
            }
        });
        store
            .expect_pause()
            .times(1)
            .returning(|_, _| Err(Error::database("connection refused", true)));
        let fleet = FleetQuota::new(Arc::new(store), quota());
        let err = fleet.acquire().await.unwrap_err();
        assert!(
            matches!(&err, backfill_polygon::Error::Quota { message } if message.contains("connection refused")),
            "{err}"
        );
        assert!(err.is_transient());
        fleet.pause(Duration::from_secs(30)).await;
        let slot = fleet.acquire().await.unwrap();
        assert_eq!(slot.waited, Duration::from_secs(30));
    }
}
