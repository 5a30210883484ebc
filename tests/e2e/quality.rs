//! `backfill quality` on a demo backfill: the report matches what the simulator served.

use std::collections::HashSet;

use backfill_domain::{Candle, DateRange, RangeBound, Symbol, Timeframe};
use backfill_polygon_sim::{SimConfig, Simulator};
use chrono::Timelike;

use crate::helpers::{backfill, stderr};

fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = backfill(dir).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

#[test]
fn the_quality_report_of_a_demo_backfill_counts_the_simulators_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = ("2024-03-04", "2024-03-08");
    for tf in ["1m", "1d"] {
        run(
            dir.path(),
            &[
                "run", "AAPL", "-t", tf, "--from", from, "--to", to, "--demo",
            ],
        );
    }
    let out = run(
        dir.path(),
        &[
            "quality", "AAPL", "-t", "1m", "--from", from, "--to", to, "--demo", "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let sim = Simulator::new(SimConfig::new());
    let range = DateRange::new(
        RangeBound::parse(from).unwrap(),
        RangeBound::parse(to).unwrap(),
    )
    .unwrap();
    let aapl = Symbol::parse("AAPL").unwrap();
    let minutes: Vec<Candle> =
        sim.expected_candles(&aapl, Timeframe::parse("1m").unwrap(), &range, true);
    assert_eq!(report["bars"], minutes.len());
    assert_eq!(report["days"]["covered"], 5);
    // Every minute of the regular session on days with bars, less those the simulator left
    // without a bar (no trades).
    let ny = |c: &Candle| c.ts().with_timezone(&chrono_tz::America::New_York);
    let days: HashSet<_> = minutes.iter().map(|c| ny(c).date_naive()).collect();
    let regular: usize = minutes
        .iter()
        .filter(|c| {
            let t = ny(c);
            let m = t.hour() * 60 + t.minute();
            (9 * 60 + 30..16 * 60).contains(&m)
        })
        .count();
    assert_eq!(report["days"]["with_bars"], days.len());
    assert_eq!(report["session_gaps"]["regular_minutes"], days.len() * 390);
    assert_eq!(
        report["session_gaps"]["regular_missing"],
        days.len() * 390 - regular
    );
    assert_eq!(report["ohlc"]["violations"], 0);
    // Day bars are stored: each day's minutes are compared with them.
    assert_eq!(report["day_agreement"]["days_compared"], days.len());
    assert_eq!(report["day_agreement"]["days_without_day_bar"], 0);

    // The text form says the same for people.
    let out = run(
        dir.path(),
        &[
            "quality", "AAPL", "-t", "1m", "--from", from, "--to", to, "--demo",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("bars       {}", minutes.len())),
        "{text}"
    );
    assert!(text.contains("regular session:"), "{text}");

    // A bad value is named.
    let out = backfill(dir.path())
        .args(["quality", "AAPL", "-t", "7x", "--demo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("7x"), "{}", stderr(&out));
}
