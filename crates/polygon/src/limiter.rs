//! The client-side request limit of one process: at most `limit` requests in any window, shared
//! by every task that uses one client.

use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::quota::{QuotaUse, RequestQuota, Slot};
use crate::Result;

/// A sliding-window request limiter that also holds everyone back after a 429.
///
/// A request occupies a slot from the moment it is allowed until `window` after its response has
/// been received. Polygon counts a request somewhere between those two instants, so whatever the
/// latency, Polygon never sees more than `limit` requests in any `window`. (A token bucket with a
/// burst, by contrast, lets `burst + refill` requests through in one window.) Waiters are served
/// in arrival order. The clock is tokio's, so tests can pause it. It is the [`RequestQuota`] of
/// one process; processes that share a key need a quota they share.
#[derive(Debug)]
pub struct RateLimiter {
    limit: Option<NonZeroU32>,
    window: Duration,
    state: Mutex<State>,
    changed: Notify,
    queue: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    slots: Vec<Taken>,
    next_id: u64,
    paused_until: Option<Instant>,
}

/// A slot in use: since when it has been free of its request, if it is.
#[derive(Debug)]
struct Taken {
    id: u64,
    done: Option<Instant>,
}

enum Wake {
    At(Instant),
    OnChange,
}

impl RateLimiter {
    /// At most `limit` requests in any `window`.
    pub fn new(limit: NonZeroU32, window: Duration) -> Self {
        Self::build(Some(limit), window)
    }

    /// No limit (429 pauses still apply).
    pub fn unlimited() -> Self {
        Self::build(None, Duration::ZERO)
    }

    /// At most `limit` requests in any `window`, or no limit.
    pub fn with_limit(limit: Option<NonZeroU32>, window: Duration) -> Self {
        match limit {
            Some(limit) => Self::new(limit, window),
            None => Self::unlimited(),
        }
    }

    fn build(limit: Option<NonZeroU32>, window: Duration) -> Self {
        Self {
            limit,
            window,
            state: Mutex::default(),
            changed: Notify::new(),
            queue: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits until a request may be sent and takes a slot for it. Cancel-safe: dropping the
    /// future gives up the place.
    async fn take_slot(&self) -> Slot {
        let start = Instant::now();
        let _turn = self.queue.lock().await;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wake = {
                let mut state = self.lock();
                let now = Instant::now();
                let window = self.window;
                state.slots.retain(|s| {
                    s.done
                        .is_none_or(|d| now.saturating_duration_since(d) < window)
                });
                match (state.paused_until.filter(|p| *p > now), self.limit) {
                    (Some(until), _) => Wake::At(until),
                    (None, Some(limit)) if state.slots.len() >= limit.get() as usize => {
                        match state.slots.iter().filter_map(|s| s.done).min() {
                            Some(done) => Wake::At(done + window),
                            None => Wake::OnChange,
                        }
                    }
                    (None, limit) => {
                        let id = state.next_id;
                        state.next_id += 1;
                        if limit.is_some() {
                            state.slots.push(Taken { id, done: None });
                        }
                        return Slot {
                            id,
                            waited: now.saturating_duration_since(start),
                        };
                    }
                }
            };
            match wake {
                Wake::At(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut changed => {}
                    }
                }
                Wake::OnChange => changed.await,
            }
        }
    }

    /// Holds every request back until `until` (used after a 429).
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.lock();
        if state.paused_until.is_none_or(|p| p < until) {
            state.paused_until = Some(until);
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Marks a slot's request answered: it counts for another window from now.
    fn give_back(&self, id: u64) {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(slot) = state.slots.iter_mut().find(|s| s.id == id) {
            slot.done = Some(now);
        }
        drop(state);
        self.changed.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[async_trait]
impl RequestQuota for RateLimiter {
    async fn acquire(&self) -> Result<Slot> {
        Ok(self.take_slot().await)
    }

    fn release(&self, slot: Slot) {
        self.give_back(slot.id);
    }

    async fn pause(&self, delay: Duration) {
        self.pause_until(Instant::now() + delay);
    }

    fn limit(&self) -> Option<NonZeroU32> {
        self.limit
    }

    fn window(&self) -> Duration {
        self.window
    }

    async fn usage(&self) -> Result<QuotaUse> {
        let now = Instant::now();
        let state = self.lock();
        let in_use = state
            .slots
            .iter()
            .filter(|s| {
                s.done
                    .is_none_or(|d| now.saturating_duration_since(d) < self.window)
            })
            .count();
        Ok(QuotaUse {
            in_use: u32::try_from(in_use).unwrap_or(u32::MAX),
            paused_for: state
                .paused_until
                .filter(|p| *p > now)
                .map(|p| p.saturating_duration_since(now)),
        })
    }

    fn shared(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::quota::Permit;

    #[tokio::test(start_paused = true)]
    async fn usage_counts_slots_until_a_window_after_their_response_and_the_pause() {
        let limiter = RateLimiter::new(NonZeroU32::new(5).unwrap(), Duration::from_secs(60));
        let first = acquired(&limiter).await;
        let second = acquired(&limiter).await;
        assert_eq!(limiter.usage().await.unwrap().in_use, 2);
        drop(first);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            limiter.usage().await.unwrap().in_use,
            2,
            "a window after its answer"
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        let usage = limiter.usage().await.unwrap();
        assert_eq!(usage.in_use, 1, "the first has stopped counting");
        assert_eq!(usage.paused_for, None);
        limiter.pause(Duration::from_secs(10)).await;
        let paused = limiter.usage().await.unwrap().paused_for.unwrap();
        assert!(paused > Duration::from_secs(9) && paused <= Duration::from_secs(10));
        assert!(!limiter.shared());
        drop(second);
    }

    /// A permit of `limiter`, given back when dropped.
    async fn acquired(limiter: &RateLimiter) -> Permit<'_> {
        Permit::acquire(limiter).await.unwrap()
    }

    /// Runs `tasks` tasks that each send `per_task` requests taking `latency`, and returns when
    /// each request started and ended, sorted by start.
    async fn run(
        limiter: Arc<RateLimiter>,
        tasks: usize,
        per_task: usize,
        latency: Duration,
    ) -> Vec<(Instant, Instant)> {
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let limiter = Arc::clone(&limiter);
            handles.push(tokio::spawn(async move {
                let mut spans = Vec::new();
                for _ in 0..per_task {
                    let permit = acquired(&limiter).await;
                    let start = Instant::now();
                    tokio::time::sleep(latency).await;
                    spans.push((start, Instant::now()));
                    drop(permit);
                }
                spans
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all.sort();
        all
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_minute_across_tasks() {
        let limiter = Arc::new(RateLimiter::with_limit(
            NonZeroU32::new(5),
            Duration::from_secs(60),
        ));
        let t0 = Instant::now();
        let spans = run(Arc::clone(&limiter), 4, 6, Duration::ZERO).await;
        assert_eq!(spans.len(), 24);
        for w in spans.windows(6) {
            assert!(
                w[5].0 - w[0].1 >= Duration::from_secs(60),
                "six requests within a minute: {:?} and {:?}",
                w[0].1 - t0,
                w[5].0 - t0
            );
        }
        // And it is not slower than it must be: five at once, then five a minute later, and so on.
        assert_eq!(spans[4].0 - t0, Duration::ZERO);
        assert_eq!(spans[5].0 - t0, Duration::from_secs(60));
        assert_eq!(spans[23].0 - t0, Duration::from_secs(240));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_responses_push_the_window_back() {
        let limiter = Arc::new(RateLimiter::new(
            NonZeroU32::new(3).unwrap(),
            Duration::from_secs(60),
        ));
        let spans = run(limiter, 3, 4, Duration::from_secs(7)).await;
        for w in spans.windows(4) {
            assert!(w[3].0 - w[0].1 >= Duration::from_secs(60));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_does_not_wait_but_pauses_hold_everyone() {
        let limiter = Arc::new(RateLimiter::unlimited());
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(acquired(&limiter).await.waited(), Duration::ZERO);
        }
        limiter.pause_until(t0 + Duration::from_secs(30));
        let spans = run(Arc::clone(&limiter), 3, 1, Duration::ZERO).await;
        assert!(spans
            .iter()
            .all(|(s, _)| *s - t0 == Duration::from_secs(30)));
        // An earlier pause does not shorten a later one.
        limiter.pause_until(Instant::now() + Duration::from_secs(10));
        limiter.pause_until(Instant::now() + Duration::from_secs(5));
        let permit = acquired(&limiter).await;
        assert_eq!(permit.waited(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_gives_up_its_place() {
        let limiter = RateLimiter::new(NonZeroU32::new(1).unwrap(), Duration::from_secs(60));
        let first = acquired(&limiter).await;
        let cancelled = tokio::time::timeout(Duration::from_secs(1), acquired(&limiter)).await;
        assert!(cancelled.is_err());
        drop(first);
        let next = acquired(&limiter).await;
        assert_eq!(next.waited(), Duration::from_secs(60));
    }
}
