//! What a client waits on before each request: a [`RequestQuota`], held by one process
//! ([`RateLimiter`](crate::RateLimiter)) or shared by every process that uses one key (an
//! implementation over a database, which the binary puts together).

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

/// The right to send requests under a key's limit: at most [`RequestQuota::limit`] requests in
/// any [`RequestQuota::window`].
///
/// A request takes a slot before it is sent and gives it back once its response has been read
/// ([`RequestQuota::release`]); the slot stays taken for `window` after that. Polygon counts a
/// request somewhere between those two instants, so whatever the latency it never sees more than
/// `limit` requests in any `window`. A 429 pauses every holder of the quota
/// ([`RequestQuota::pause`]).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RequestQuota: Send + Sync {
    /// Waits until one more request may be sent and takes a slot for it. Use [`Permit::acquire`]
    /// to give the slot back when the permit is dropped.
    ///
    /// # Errors
    /// [`Error::Quota`](crate::Error::Quota) when the quota cannot be read (its database is
    /// unreachable, say): no request may be sent then. The error is transient.
    async fn acquire(&self) -> Result<Slot>;

    /// Gives a slot back: its request has been answered (or has failed). It counts for another
    /// `window` from now. Must not block: an implementation that needs I/O does it in the
    /// background, and a slot whose release is lost stops counting when its implementation
    /// gives up on it.
    fn release(&self, slot: Slot);

    /// Holds every request back for `delay` from now (after a 429), every holder of the quota
    /// included. A pause never shortens a longer one. Failures are logged: the client has
    /// already been told to wait.
    async fn pause(&self, delay: Duration);

    /// The most requests in one window, if there is a limit.
    fn limit(&self) -> Option<NonZeroU32>;

    /// The window the limit applies to.
    fn window(&self) -> Duration;

    /// How much of the quota is used now, by every holder (the whole fleet for a shared one).
    ///
    /// # Errors
    /// [`Error::Quota`](crate::Error::Quota) when a shared quota cannot be read.
    async fn usage(&self) -> Result<QuotaUse>;

    /// Whether other processes share this quota.
    fn shared(&self) -> bool;
}

/// How much of a quota is used: the slots that count now (requests in flight, and requests
/// answered less than a window ago), and the pause after a 429, if one holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUse {
    pub in_use: u32,
    pub paused_for: Option<Duration>,
}

/// A slot taken by [`RequestQuota::acquire`], to be given back with [`RequestQuota::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Which slot, in the quota's own numbering.
    pub id: u64,
    /// How long the caller waited for it.
    pub waited: Duration,
}

/// A slot that is given back when the permit is dropped, so that a request abandoned half-way
/// (its task cancelled) still frees its slot.
pub struct Permit<'a> {
    quota: &'a dyn RequestQuota,
    slot: Option<Slot>,
}

impl<'a> Permit<'a> {
    /// Waits for a slot of `quota`.
    ///
    /// # Errors
    /// As [`RequestQuota::acquire`].
    pub async fn acquire(quota: &'a dyn RequestQuota) -> Result<Self> {
        let slot = quota.acquire().await?;
        Ok(Self {
            quota,
            slot: Some(slot),
        })
    }

    /// How long the caller waited for this permit.
    pub fn waited(&self) -> Duration {
        self.slot.map_or(Duration::ZERO, |s| s.waited)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.quota.release(slot);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("slot", &self.slot).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dropped_permit_gives_its_slot_back_once() {
        let mut quota = MockRequestQuota::new();
        let slot = Slot {
            id: 7,
            waited: Duration::from_millis(3),
        };
        quota.expect_acquire().times(1).returning(move || Ok(slot));
        quota
            .expect_release()
            .withf(move |s| *s == slot)
            .times(1)
            .return_const(());
        let permit = Permit::acquire(&quota).await.unwrap();
        assert_eq!(permit.waited(), Duration::from_millis(3));
        drop(permit);
    }

    #[tokio::test]
    async fn a_failed_acquire_holds_nothing() {
        let mut quota = MockRequestQuota::new();
        quota.expect_acquire().times(1).returning(|| {
            Err(crate::Error::Quota {
                message: "database unreachable".to_owned(),
            })
        });
        quota.expect_release().never();
        let err = Permit::acquire(&quota).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
}
