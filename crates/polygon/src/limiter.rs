//! The client-side request limit: at most `limit` requests in any window, shared by every task
//! that uses one client.

use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A sliding-window request limiter that also holds everyone back after a 429.
///
/// A request occupies a slot from the moment it is allowed until `window` after its response has
/// been received. Polygon counts a request somewhere between those two instants, so whatever the
/// latency, Polygon never sees more than `limit` requests in any `window`. (A token bucket with a
/// burst, by contrast, lets `burst + refill` requests through in one window.) Waiters are served
/// in arrival order. The clock is tokio's, so tests can pause it.
#[derive(Debug)]
pub struct RateLimiter {
    limit: Option<usize>,
    window: Duration,
    state: Mutex<State>,
    changed: Notify,
    queue: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    slots: Vec<Slot>,
    next_id: u64,
    paused_until: Option<Instant>,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    done: Option<Instant>,
}

/// Permission to send one request; drop it when the response has been read.
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a RateLimiter,
    slot: Option<u64>,
    waited: Duration,
}

impl Permit<'_> {
    /// How long the caller waited for this permit.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.slot {
            let now = Instant::now();
            let mut state = self.limiter.lock();
            if let Some(slot) = state.slots.iter_mut().find(|s| s.id == id) {
                slot.done = Some(now);
            }
            drop(state);
            self.limiter.changed.notify_waiters();
        }
    }
}

enum Wake {
    At(Instant),
    OnChange,
}

impl RateLimiter {
    /// At most `limit` requests in any `window`.
    pub fn new(limit: NonZeroU32, window: Duration) -> Self {
        Self::build(Some(limit.get() as usize), window)
    }

    /// No limit (429 pauses still apply).
    pub fn unlimited() -> Self {
        Self::build(None, Duration::ZERO)
    }

    /// At most `limit` requests in any 60 seconds, or no limit.
    pub fn per_minute(limit: Option<NonZeroU32>) -> Self {
        match limit {
            Some(limit) => Self::new(limit, Duration::from_secs(60)),
            None => Self::unlimited(),
        }
    }

    fn build(limit: Option<usize>, window: Duration) -> Self {
        Self {
            limit,
            window,
            state: Mutex::default(),
            changed: Notify::new(),
            queue: tokio::sync::Mutex::new(()),
        }
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The window the limit applies to.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Waits until a request may be sent. Cancel-safe: dropping the future gives up the place.
    pub async fn acquire(&self) -> Permit<'_> {
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
                    (None, Some(limit)) if state.slots.len() >= limit => {
                        match state.slots.iter().filter_map(|s| s.done).min() {
                            Some(done) => Wake::At(done + window),
                            None => Wake::OnChange,
                        }
                    }
                    (None, limit) => {
                        let slot = limit.map(|_| {
                            let id = state.next_id;
                            state.next_id += 1;
                            state.slots.push(Slot { id, done: None });
                            id
                        });
                        return Permit {
                            limiter: self,
                            slot,
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

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

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
                    let permit = limiter.acquire().await;
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
        let limiter = Arc::new(RateLimiter::per_minute(NonZeroU32::new(5)));
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
            assert_eq!(limiter.acquire().await.waited(), Duration::ZERO);
        }
        limiter.pause_until(t0 + Duration::from_secs(30));
        let spans = run(Arc::clone(&limiter), 3, 1, Duration::ZERO).await;
        assert!(spans
            .iter()
            .all(|(s, _)| *s - t0 == Duration::from_secs(30)));
        // An earlier pause does not shorten a later one.
        limiter.pause_until(Instant::now() + Duration::from_secs(10));
        limiter.pause_until(Instant::now() + Duration::from_secs(5));
        let permit = limiter.acquire().await;
        assert_eq!(permit.waited(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_gives_up_its_place() {
        let limiter = RateLimiter::new(NonZeroU32::new(1).unwrap(), Duration::from_secs(60));
        let first = limiter.acquire().await;
        let cancelled = tokio::time::timeout(Duration::from_secs(1), limiter.acquire()).await;
        assert!(cancelled.is_err());
        drop(first);
        let next = limiter.acquire().await;
        assert_eq!(next.waited(), Duration::from_secs(60));
    }
}
