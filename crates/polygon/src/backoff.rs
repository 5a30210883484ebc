//! Exponential backoff with full jitter, shared by the REST and Flat Files clients.

use std::time::Duration;

/// The backoff cap before retry number `retry` (1-based): `initial`, doubled at each retry, at
/// most `max`.
pub(crate) fn cap(initial: Duration, max: Duration, retry: u32) -> Duration {
    let doublings = retry.saturating_sub(1).min(31);
    initial.saturating_mul(1u32 << doublings).min(max)
}

/// Full jitter: uniform between zero and the cap.
pub(crate) fn jittered(cap: Duration) -> Duration {
    cap.mul_f64(rand::random_range(0.0..=1.0))
}
