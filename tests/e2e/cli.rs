//! The command line: validation and messages that name the bad value.

use std::process::Command;

fn backfill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_backfill"))
        .args(args)
        .output()
        .expect("the backfill binary runs")
}

#[test]
fn plan_prints_the_validated_job_and_its_request_count() {
    let out = backfill(&[
        "plan",
        "aapl",
        "X:BTCUSD",
        "AAPL",
        "--timeframe",
        "1m",
        "--from",
        "2024-01-01",
        "--to",
        "2024-03-31",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["job"]["symbols"], serde_json::json!(["AAPL", "X:BTCUSD"]));
    assert_eq!(v["job"]["timeframe"], "1m");
    assert_eq!(v["job"]["adjusted"], true);
    assert_eq!(v["job"]["mode"], "missing");
    // 91 New York days, one hour shorter for the change to daylight saving time.
    let minutes: u64 = 91 * 24 * 60 - 60;
    assert_eq!(v["base_aggregates_at_most_per_symbol"], minutes);
    // Crypto trades round the clock: 130,980 minutes in three requests of at most 50,000.
    assert_eq!(v["per_symbol"][1]["symbol"], "X:BTCUSD");
    assert_eq!(v["per_symbol"][1]["session"], "around_the_clock");
    assert_eq!(v["per_symbol"][1]["requests"], minutes.div_ceil(50_000));
    // AAPL trades 16 hours on each of 65 weekdays: 62,400 minutes, two requests.
    assert_eq!(v["per_symbol"][0]["symbol"], "AAPL");
    assert_eq!(v["per_symbol"][0]["session"], "extended_hours");
    assert_eq!(
        v["per_symbol"][0]["requests"],
        (65u64 * 960).div_ceil(50_000)
    );
    assert_eq!(v["requests"], 3 + 2);
}

#[test]
fn plan_names_the_bad_value() {
    for (args, needle) in [
        (
            vec![
                "plan",
                "AA PL",
                "--from",
                "2024-01-01",
                "--to",
                "2024-01-02",
            ],
            "\"AA PL\"",
        ),
        (
            vec![
                "plan",
                "AAPL",
                "-t",
                "7x",
                "--from",
                "2024-01-01",
                "--to",
                "2024-01-02",
            ],
            "\"7x\"",
        ),
        (
            vec!["plan", "AAPL", "--from", "2024-02-30", "--to", "2024-03-01"],
            "\"2024-02-30\"",
        ),
        (
            vec!["plan", "AAPL", "--from", "2024-03-01", "--to", "2024-01-01"],
            "must not be after",
        ),
        (
            vec!["plan", "AAPL", "--from", "2024-01-01", "--to", "2999-01-01"],
            "tomorrow",
        ),
    ] {
        let out = backfill(&args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn flags_can_come_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_backfill"))
        .args(["plan", "AAPL"])
        .env("BACKFILL_TIMEFRAME", "1h")
        .env("BACKFILL_FROM", "2024-01-02")
        .env("BACKFILL_TO", "2024-01-03")
        .env("BACKFILL_ADJUSTED", "false")
        .env("BACKFILL_MODE", "full")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["job"]["timeframe"], "1h");
    assert_eq!(v["job"]["adjusted"], false);
    assert_eq!(v["job"]["mode"], "full");
    // Two New York days of minute bases.
    assert_eq!(v["base_aggregates_at_most_per_symbol"], 2 * 24 * 60);
}

/// `backfill plan` with the S3 credentials given or not.
fn plan_with(args: &[&str], credentials: bool) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backfill"));
    cmd.arg("plan").args(args);
    if credentials {
        cmd.env("POLYGON_S3_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("POLYGON_S3_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-example");
    } else {
        cmd.env_remove("POLYGON_S3_ACCESS_KEY_ID")
            .env_remove("POLYGON_S3_SECRET_ACCESS_KEY");
    }
    cmd.output().expect("the backfill binary runs")
}

const WHOLE_MARKET_MINUTES: &[&str] = &[
    "--all-tickers",
    "-t",
    "1m",
    "--adjusted",
    "false",
    "--from",
    "2024-01-02",
    "--to",
    "2024-01-31",
];

#[test]
fn plan_chooses_a_source_and_prints_every_sources_cost() {
    // The whole market's raw minutes: only Flat Files can, one download per weekday.
    let out = plan_with(WHOLE_MARKET_MINUTES, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "flatfiles");
    assert_eq!(v["job"]["universe"], "all");
    assert_eq!(v["tasks"], 22);
    let costs = v["costs"].as_array().unwrap();
    let files = costs.iter().find(|c| c["source"] == "flatfiles").unwrap();
    assert_eq!(files["calls"], 22);
    assert!(files["estimated_bytes"].as_u64().unwrap() > 0);
    let grouped = costs.iter().find(|c| c["source"] == "grouped").unwrap();
    assert!(grouped["unavailable"].as_str().unwrap().contains("1d"));
    // The secrets are never printed.
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("wJalrXUtnFEMI") && !all.contains("AKIDEXAMPLE"));
}

#[test]
fn plan_names_the_fix_for_a_source_that_cannot_serve() {
    for (args, credentials, needle) in [
        (
            vec![
                "AAPL",
                "--source",
                "ftp",
                "--from",
                "2024-01-02",
                "--to",
                "2024-01-03",
            ],
            true,
            "\"ftp\"",
        ),
        (
            vec![
                "AAPL",
                "--source",
                "flatfiles",
                "-t",
                "1m",
                "--from",
                "2024-01-02",
                "--to",
                "2024-01-03",
            ],
            true,
            "--adjusted false",
        ),
        (
            WHOLE_MARKET_MINUTES.to_vec(),
            false,
            "POLYGON_S3_ACCESS_KEY_ID",
        ),
        (
            vec![
                "--all-tickers",
                "--source",
                "rest",
                "--from",
                "2024-01-02",
                "--to",
                "2024-01-03",
            ],
            true,
            "whole market",
        ),
    ] {
        let out = plan_with(&args, credentials);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
