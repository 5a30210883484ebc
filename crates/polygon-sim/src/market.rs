//! The market universe: a deterministic list of stock tickers that the whole-market endpoints
//! (grouped daily, flat files) cover, each with a liquidity.
//!
//! The `i`-th ticker depends only on `i`, so a small universe is the start of a larger one. The
//! tickers are two to five upper-case letters; they never start with `ZZZ` (which the simulator
//! treats as unknown) and never are one of [`RESERVED`], the names that this workspace's tests,
//! benchmarks and examples use with the data of tickers outside the universe.

use std::collections::HashSet;

use crate::hash::{fnv, hash, mix, unit};

/// The smallest share of minutes with a bar that a universe ticker has.
pub(crate) const MIN_LIQUIDITY: f64 = 0.03;

/// Tickers the universe never contains, so that their data stays what it was before the universe
/// existed: well-known names and the ones used across the workspace.
const RESERVED: &[&str] = &[
    "AAPL", "AAPM", "AMD", "AMZN", "BRK", "DENY", "DIA", "GOOG", "GOOGL", "IBM", "INTC", "IWM",
    "META", "MSFT", "NFLX", "NOPE", "NVDA", "QQQ", "SPY", "TSLA", "VOO",
];

/// The first `n` tickers of the universe, in index order (not sorted).
pub(crate) fn tickers(n: usize) -> Vec<String> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    for index in 0..n as u64 {
        let mut attempt = 0u64;
        loop {
            let candidate = candidate(index, attempt);
            attempt += 1;
            if candidate.starts_with("ZZZ") || RESERVED.contains(&candidate.as_str()) {
                continue;
            }
            if seen.insert(candidate.clone()) {
                out.push(candidate);
                break;
            }
        }
    }
    out
}

/// The share of minutes (and seconds) in which a universe ticker trades, between
/// [`MIN_LIQUIDITY`] and 1. Most tickers are illiquid, as in a real market, where a day's
/// minute file holds about 150 bars per ticker out of 960 possible minutes.
pub(crate) fn liquidity(seed: u64, ticker: &str) -> f64 {
    let u = unit(hash(&[seed, fnv(ticker.as_bytes()), 0x4C49_5155]));
    MIN_LIQUIDITY + (1.0 - MIN_LIQUIDITY) * u.powi(7)
}

/// One candidate name for the ticker at `index`: mostly three or four letters.
fn candidate(index: u64, attempt: u64) -> String {
    let w = hash(&[0x5449_434B, index, attempt]);
    let len = match w % 100 {
        0..=4 => 2,
        5..=39 => 3,
        40..=89 => 4,
        _ => 5,
    };
    (0..len)
        .map(|i| char::from(b'A' + (mix(w ^ (i + 1)) % 26) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickers_are_unique_upper_case_and_stable_by_index() {
        let big = tickers(5_000);
        assert_eq!(big.len(), 5_000);
        assert_eq!(big.iter().collect::<HashSet<_>>().len(), 5_000);
        for t in &big {
            assert!((2..=5).contains(&t.len()), "{t}");
            assert!(t.bytes().all(|b| b.is_ascii_uppercase()), "{t}");
            assert!(!t.starts_with("ZZZ") && !RESERVED.contains(&t.as_str()));
        }
        assert_eq!(tickers(25), big[..25]);
    }

    #[test]
    fn liquidity_is_skewed_towards_illiquid_tickers() {
        let all: Vec<f64> = tickers(2_000).iter().map(|t| liquidity(42, t)).collect();
        assert!(all.iter().all(|l| (MIN_LIQUIDITY..=1.0).contains(l)));
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        assert!((0.12..0.19).contains(&mean), "{mean}");
        assert!(all.iter().any(|l| *l > 0.9) && all.iter().any(|l| *l < 0.05));
        assert_eq!(liquidity(42, "ABC"), liquidity(42, "ABC"));
        assert_ne!(liquidity(42, "ABC"), liquidity(43, "ABC"));
    }
}
