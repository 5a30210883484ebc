//! Polygon requests per symbol against the minimum: what the simulator served to the worker in
//! the runs of the other sections.
//!
//! The minimum for a symbol is `ceil(base bars / 50,000)`: Polygon's `limit` counts base
//! aggregates, and one request returns at most 50,000 of them. The simulator counts responses by
//! path, and the path names the ticker, so requests are counted per symbol. It does not count the
//! responses that carried a `next_url` (pages the server split off); they are told from the
//! served paths instead: for one-minute bars (one base aggregate each) a response to a request
//! with `limit=50000` carries a `next_url` exactly when its range holds more than 50,000 bars.

use backfill_domain::{RangeBound, Timeframe};
use backfill_polygon_sim::{SimStats, Simulator, MAX_LIMIT};

use crate::report::{thousands, Row};

/// What the simulator served during one worker run.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// The run, as the table names it.
    pub(crate) label: String,
    pub(crate) symbols: Vec<String>,
    /// Base (one-minute) bars of each symbol over the run's range, as the simulator serves them.
    pub(crate) base_bars: Vec<u64>,
    pub(crate) stats: SimStats,
}

/// Counts of one symbol.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    requests: u64,
    ok: u64,
    split: u64,
    minimum: u64,
}

/// One row per recorded run.
pub(crate) fn rows(sim: &Simulator, runs: &[Recorded]) -> Vec<Row> {
    runs.iter().map(|r| row(sim, r)).collect()
}

fn row(sim: &Simulator, run: &Recorded) -> Row {
    let mut counts: Vec<Counts> = run
        .base_bars
        .iter()
        .map(|bars| Counts {
            minimum: bars.div_ceil(MAX_LIMIT),
            ..Counts::default()
        })
        .collect();
    let mut unattributed = 0;
    for ((path, status), n) in &run.stats.served {
        let Some(req) = parse_path(path) else {
            unattributed += n;
            continue;
        };
        let Some(i) = run.symbols.iter().position(|s| *s == req.ticker) else {
            unattributed += n;
            continue;
        };
        let c = &mut counts[i];
        c.requests += n;
        if *status == 200 {
            c.ok += n;
            if server_split(sim, &req) {
                c.split += n;
            }
        }
    }
    let sum = |f: fn(&Counts) -> u64| counts.iter().map(f).sum::<u64>();
    let (requests, ok, split, minimum) = (
        sum(|c| c.requests),
        sum(|c| c.ok),
        sum(|c| c.split),
        sum(|c| c.minimum),
    );
    let spread = |f: fn(&Counts) -> u64| {
        let lo = counts.iter().map(f).min().unwrap_or(0);
        let hi = counts.iter().map(f).max().unwrap_or(0);
        if lo == hi {
            thousands(lo)
        } else {
            format!("{} to {}", thousands(lo), thousands(hi))
        }
    };
    let bars = {
        let lo = run.base_bars.iter().min().copied().unwrap_or(0);
        let hi = run.base_bars.iter().max().copied().unwrap_or(0);
        if lo == hi {
            thousands(lo)
        } else {
            format!("{} to {}", thousands(lo), thousands(hi))
        }
    };
    let pass = unattributed == 0 && counts.iter().all(|c| c.requests == c.minimum + c.split);
    let target = minimum + split;
    Row::new(
        format!("Polygon requests per symbol, {} (the run above)", run.label),
        format!(
            "{} per symbol ({} in all, {} of them not 200; {} naming no symbol of the run); \
             pages the server split off (`next_url`): {}",
            spread(|c| c.requests),
            thousands(requests),
            thousands(requests - ok),
            thousands(unattributed),
            thousands(split)
        ),
        format!(
            "minimum {} per symbol = ceil({bars} base bars / {}) ({} in all), plus {} split \
             pages",
            spread(|c| c.minimum),
            thousands(MAX_LIMIT),
            thousands(minimum),
            thousands(split)
        ),
        format!(
            "{:.2} x (minimum + split pages) (target: 1.00, equal)",
            (requests + unattributed) as f64 / target.max(1) as f64
        ),
        pass,
    )
}

/// The parts of `/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`.
#[derive(Debug)]
struct AggsPath {
    ticker: String,
    multiplier: String,
    timespan: String,
    from: String,
    to: String,
}

fn parse_path(path: &str) -> Option<AggsPath> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["", "v2", "aggs", "ticker", ticker, "range", multiplier, timespan, from, to] => {
            Some(AggsPath {
                ticker: ticker.replace("%3A", ":").replace("%3a", ":"),
                multiplier: (*multiplier).to_owned(),
                timespan: (*timespan).to_owned(),
                from: (*from).to_owned(),
                to: (*to).to_owned(),
            })
        }
        _ => None,
    }
}

/// Whether the simulator answered this (one-minute, `limit=50000`) request with a `next_url`.
fn server_split(sim: &Simulator, req: &AggsPath) -> bool {
    if req.multiplier != "1" || req.timespan != "minute" {
        return false;
    }
    let (Ok(from), Ok(to), Ok(tf)) = (
        RangeBound::parse(&req.from),
        RangeBound::parse(&req.to),
        Timeframe::parse("1m"),
    ) else {
        return false;
    };
    let from_ms = from.start().timestamp_millis();
    let from_ms = from_ms - from_ms.rem_euclid(60_000);
    let to_ms = to.end().timestamp_millis();
    // A range of at most 50,000 minutes cannot hold more than 50,000 one-minute bars.
    if to_ms < from_ms || (to_ms - from_ms) / 60_000 < MAX_LIMIT as i64 {
        return false;
    }
    sim.generator()
        .bars(&req.ticker, tf, from_ms, to_ms, true)
        .len() as u64
        > MAX_LIMIT
}
