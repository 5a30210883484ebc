//! What a shared request quota must do, whatever the database: each check takes a fresh,
//! migrated store. Time is real (the database's clock), so windows are short; waits are the
//! ones the store answers, never guesses.

use std::num::NonZeroU32;
use std::time::Duration;

use backfill_storage::{Acquired, Quota, QuotaSlot, QuotaStore};
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn quota(key: &str, limit: u32, window: Duration, max_request: Duration) -> Quota {
    Quota {
        key: key.to_owned(),
        limit: NonZeroU32::new(limit).unwrap(),
        window,
        max_request,
    }
}

/// Takes a slot, sleeping for each wait the store answers; returns it, when the call that took
/// it returned, and the waits answered on the way.
pub(crate) async fn take(
    store: &dyn QuotaStore,
    quota: &Quota,
) -> (QuotaSlot, Instant, Vec<Duration>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut waits = Vec::new();
    loop {
        match store.try_acquire(quota).await.unwrap() {
            Acquired::Slot(slot) => return (slot, Instant::now(), waits),
            Acquired::Wait(wait) => {
                assert!(wait > Duration::ZERO, "a wait of zero would spin");
                assert!(Instant::now() < deadline, "no slot within 30 s");
                waits.push(wait);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The largest number of the half-open intervals `[from, to)` that hold at one instant.
fn max_overlap(intervals: &[(Instant, Instant)]) -> usize {
    let mut edges: Vec<(Instant, i32)> = intervals
        .iter()
        .flat_map(|(from, to)| [(*from, 1), (*to, -1)])
        .collect();
    // An interval that ends when another starts does not overlap it.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, edge) in edges {
        now += edge;
        most = most.max(now);
    }
    most as usize
}

/// Twelve takers, each taking and giving back three slots of a quota of 4 in any 300 ms: at
/// no instant do more than 4 slots count, where a slot counts from the moment it was taken
/// until a window after it was given back. (Measured from outside, a slot is known to count at
/// least from when `try_acquire` returned until a window after `release` was called, so more
/// than 4 of those at once would be a breach.)
pub(crate) async fn concurrent_takers_never_hold_more_than_the_limit(store: &dyn QuotaStore) {
    let quota = &quota("concurrent", 4, ms(300), Duration::from_secs(60));
    let taker = |_| async move {
        let mut held = Vec::new();
        for _ in 0..3 {
            let (slot, taken, _) = take(store, quota).await;
            let given = Instant::now();
            store.release(quota, slot).await.unwrap();
            held.push((taken, given + quota.window));
        }
        held
    };
    let held: Vec<(Instant, Instant)> = futures::future::join_all((0..12).map(taker))
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(held.len(), 36);
    assert_eq!(max_overlap(&held), 4, "{held:?}");
}

/// A full quota answers how long no slot can free: a window, while its slots are in flight or
/// were just given back. Keys are apart.
pub(crate) async fn a_full_quota_says_how_long_to_wait(store: &dyn QuotaStore) {
    let window = Duration::from_secs(60);
    let q = quota("full", 2, window, Duration::from_secs(60));
    let (first, _, _) = take(store, &q).await;
    take(store, &q).await;
    let in_window = |acquired: Acquired| match acquired {
        Acquired::Wait(wait) => wait > window - Duration::from_secs(5) && wait <= window,
        Acquired::Slot(_) => false,
    };
    let answer = store.try_acquire(&q).await.unwrap();
    assert!(in_window(answer), "{answer:?}");
    store.release(&q, first).await.unwrap();
    let answer = store.try_acquire(&q).await.unwrap();
    assert!(
        in_window(answer),
        "a slot given back counts a window longer: {answer:?}"
    );
    let usage = store.usage(&q).await.unwrap();
    assert_eq!((usage.in_use, usage.paused_for), (2, None));
    let other = quota("other key", 2, window, Duration::from_secs(60));
    assert!(matches!(
        store.try_acquire(&other).await.unwrap(),
        Acquired::Slot(_)
    ));
}

/// A slot given back frees a window after it was given back, not before.
pub(crate) async fn a_slot_frees_a_window_after_it_is_given_back(store: &dyn QuotaStore) {
    let q = quota("one", 1, ms(300), Duration::from_secs(60));
    let (slot, _, _) = take(store, &q).await;
    let given = Instant::now();
    store.release(&q, slot).await.unwrap();
    let (_, taken, waits) = take(store, &q).await;
    assert!(taken >= given + q.window, "{:?}", taken - given);
    assert!(
        !waits.is_empty() && waits.iter().all(|w| *w <= q.window),
        "{waits:?}"
    );
}

/// The slot of a process that died (never given back) stops counting once its request must
/// have ended (`max_request`) and a window has passed; until then the answered waits are a
/// window at most, as a release could come at any moment.
pub(crate) async fn a_slot_never_given_back_goes_stale(store: &dyn QuotaStore) {
    let q = quota("stale", 1, ms(100), ms(300));
    let asked = Instant::now();
    take(store, &q).await;
    let (_, taken, waits) = take(store, &q).await;
    assert!(
        taken >= asked + q.max_request + q.window,
        "{:?}",
        taken - asked
    );
    assert!(waits.iter().all(|w| *w <= q.window), "{waits:?}");
}

/// A pause (a 429) holds the key back however many slots are free, and a shorter one does not
/// shorten it; other keys go on.
pub(crate) async fn a_pause_holds_the_key_back_and_never_shortens(store: &dyn QuotaStore) {
    let long = Duration::from_secs(60);
    let q = quota("paused", 10, ms(100), Duration::from_secs(60));
    store.pause(&q, long).await.unwrap();
    store.pause(&q, Duration::from_secs(1)).await.unwrap();
    let answer = store.try_acquire(&q).await.unwrap();
    assert!(
        matches!(answer, Acquired::Wait(w) if w > long - Duration::from_secs(5) && w <= long),
        "{answer:?}"
    );
    let paused = store.usage(&q).await.unwrap().paused_for;
    assert!(
        paused.is_some_and(|p| p <= long && p > long - Duration::from_secs(5)),
        "{paused:?}"
    );
    let other = quota("not paused", 10, ms(100), Duration::from_secs(60));
    assert!(matches!(
        store.try_acquire(&other).await.unwrap(),
        Acquired::Slot(_)
    ));
}
