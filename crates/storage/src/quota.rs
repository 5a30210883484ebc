//! A request quota kept in the database, so that every process using one upstream key stays
//! under the key's limit together: a sliding window of slots, one per request.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;

/// One key's limit: at most `limit` requests in any `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// Whose quota: a name for the upstream key that can be stored and shown (a hash of it),
    /// never the key itself.
    pub key: String,
    /// The most requests in any window.
    pub limit: NonZeroU32,
    /// The window the limit applies to.
    pub window: Duration,
    /// The longest a request can take from its slot being taken to its response (the client's
    /// timeouts). A slot never given back (its process died) stops counting this long plus
    /// `window` after it was taken.
    pub max_request: Duration,
}

/// A slot of a quota, taken for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotaSlot(pub i64);

/// The answer of [`QuotaStore::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// A slot was taken: the request may be sent.
    Slot(QuotaSlot),
    /// Every slot is taken, or the quota is paused: no slot can be free sooner than this. Try
    /// again then.
    Wait(Duration),
}

/// How much of a quota is in use, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Slots that count now: requests in flight, and requests answered less than a window ago.
    pub in_use: u32,
    /// How long the quota stays paused after a 429, if it is.
    pub paused_for: Option<Duration>,
}

/// Request quotas shared through the database by every process that uses it. Time is the
/// database's, so the hosts' clocks do not matter.
///
/// A slot is taken before a request is sent and counts until `window` after it was given back
/// ([`QuotaStore::release`]); so however long requests take, no more than `limit` of them are
/// sent in any `window`, whichever processes send them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Takes a slot of `quota` when fewer than `quota.limit` count and the quota is not paused;
    /// otherwise says how long no slot can become free. Concurrent callers, in any process,
    /// never take more than `limit` slots of one key between them.
    ///
    /// # Errors
    /// Only database errors: no slot was taken.
    async fn try_acquire(&self, quota: &Quota) -> Result<Acquired>;

    /// Gives a slot back: its request has been answered or has failed. It counts for another
    /// `quota.window` from now. A slot that stopped counting already is left alone.
    ///
    /// # Errors
    /// Only database errors: the slot then counts until it is stale.
    async fn release(&self, quota: &Quota, slot: QuotaSlot) -> Result<()>;

    /// Holds every slot of `quota` back for `delay` from now (the upstream answered 429). A
    /// pause never shortens a longer one.
    ///
    /// # Errors
    /// Only database errors.
    async fn pause(&self, quota: &Quota, delay: Duration) -> Result<()>;

    /// How much of `quota` is in use now.
    ///
    /// # Errors
    /// Only database errors.
    async fn usage(&self, quota: &Quota) -> Result<QuotaUsage>;
}
