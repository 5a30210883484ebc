use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter for rescheduling a task whose transient failure outlived
/// the market data client's own retries: attempt `n` waits a random time in
/// `[0, min(max, base * 2^(n-1))]`, but never less than `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub min: Duration,
}

impl Backoff {
    /// The ceiling of the wait after `attempt` failed attempts (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.base
            .saturating_mul(1u32 << exp)
            .min(self.max)
            .max(self.min)
    }

    /// A random wait for `attempt` failed attempts.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = rand::rng().random_range(Duration::ZERO..=ceiling);
        jittered.max(self.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_secs(5),
        max: Duration::from_secs(300),
        min: Duration::from_millis(500),
    };

    #[test]
    fn ceiling_doubles_up_to_the_maximum() {
        assert_eq!(B.ceiling(1), Duration::from_secs(5));
        assert_eq!(B.ceiling(2), Duration::from_secs(10));
        assert_eq!(B.ceiling(4), Duration::from_secs(40));
        assert_eq!(B.ceiling(10), Duration::from_secs(300));
        assert_eq!(B.ceiling(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn delays_stay_within_bounds() {
        for attempt in 1..20 {
            for _ in 0..50 {
                let d = B.delay(attempt);
                assert!(d >= B.min && d <= B.ceiling(attempt), "{attempt}: {d:?}");
            }
        }
    }
}
