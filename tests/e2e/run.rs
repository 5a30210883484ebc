//! `backfill run`, `worker` and `migrate` as processes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use backfill_domain::{DateRange, RangeBound, Symbol, Timeframe};
use backfill_polygon_sim::{SimConfig, Simulator};

use crate::helpers::{backfill, stderr};

#[test]
fn run_demo_stores_exactly_the_simulated_candles_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "AAPL",
        "X:BTCUSD",
        "--timeframe",
        "5m",
        "--from",
        "2024-02-01",
        "--to",
        "2024-02-29",
        "--demo",
        "--json",
    ];
    let out = backfill(dir.path()).args(args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(
        summary["simulated"], true,
        "the job record says the data is simulated"
    );
    let sim = Simulator::new(SimConfig::new());
    let range = DateRange::new(
        RangeBound::parse("2024-02-01").unwrap(),
        RangeBound::parse("2024-02-29").unwrap(),
    )
    .unwrap();
    let tf = Timeframe::parse("5m").unwrap();
    let expected: usize = ["AAPL", "X:BTCUSD"]
        .iter()
        .map(|s| {
            sim.expected_candles(&Symbol::parse(s).unwrap(), tf, &range, true)
                .len()
        })
        .sum();
    assert!(expected > 0);
    assert_eq!(summary["candles_stored"], expected);
    assert_eq!(summary["symbols"][1]["symbol"], "X:BTCUSD");
    assert!(summary["peak_rss_bytes"].as_u64().unwrap() > 0);
    // The demo keeps its own database, apart from real data.
    assert!(dir.path().join("backfill-demo.db").exists());
    assert!(!dir.path().join("backfill.db").exists());

    // Again, in missing mode: nothing new to fetch or store.
    let out = backfill(dir.path()).args(args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["candles_fetched"], 0);
    assert_eq!(again["candles_stored"], 0);
}

#[test]
fn run_without_a_key_or_demo_stops_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["run", "worker", "serve"] {
        let mut cmd = backfill(dir.path());
        cmd.arg(command);
        if command == "run" {
            cmd.args(["AAPL", "--from", "2024-01-02", "--to", "2024-01-03"]);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("POLYGON_API_KEY") && err.contains("--demo"),
            "{command}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{command}: {err}");
    }
    assert!(
        !dir.path().join("backfill.db").exists(),
        "nothing was created"
    );
}

#[test]
fn a_failed_symbol_makes_run_exit_non_zero_with_the_reason() {
    // A simulator that wants another key: every symbol fails with 401.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(Simulator::new(SimConfig::new().api_key("right")).spawn("127.0.0.1:0"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = backfill(dir.path())
        .args([
            "run",
            "AAPL",
            "--from",
            "2024-01-02",
            "--to",
            "2024-01-05",
            "--json",
        ])
        .env("POLYGON_API_KEY", "wrong-secret-key")
        .env("POLYGON_BASE_URL", sim.base_url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "failed");
    assert_eq!(summary["simulated"], false);
    let error = summary["symbols"][0]["error"].as_str().unwrap();
    assert!(error.contains("401"), "{error}");
    let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(!all.contains("wrong-secret-key"), "the key never appears");
}

#[test]
fn migrate_creates_the_database_named_by_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let out = backfill(dir.path())
        .arg("migrate")
        .env("DATABASE_URL", "sqlite://custom.db")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("custom.db").exists());
    let out = backfill(dir.path())
        .arg("migrate")
        .env("DATABASE_URL", "mysql://nope")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("\"mysql\""), "{}", stderr(&out));
}

#[test]
fn worker_shuts_down_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = backfill(dir.path())
        .args(["worker", "--demo"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the worker says it started, then ask it to stop.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("worker started"));
    assert!(started);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("worker stopped")),
        "{rest:?}"
    );
}

#[test]
fn run_works_only_on_its_own_job() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Another job waits in the same database, for a `backfill worker` to take.
    let other = rt.block_on(async {
        use backfill_domain::{BackfillMode, JobSpec};
        use backfill_storage::JobRepository;
        let db = backfill_storage::sqlite::SqliteStorage::open(dir.path().join("backfill-demo.db"))
            .await
            .unwrap();
        let range = DateRange::new(
            RangeBound::parse("2024-01-02").unwrap(),
            RangeBound::parse("2024-01-03").unwrap(),
        )
        .unwrap();
        let spec = JobSpec::new(
            vec![Symbol::parse("MSFT").unwrap()],
            Timeframe::parse("1h").unwrap(),
            range,
            true,
            BackfillMode::Missing,
        )
        .unwrap();
        db.create_job(&spec, None).await.unwrap().job.id
    });
    let out = backfill(dir.path())
        .args([
            "run",
            "AAPL",
            "--from",
            "2024-01-02",
            "--to",
            "2024-01-05",
            "--demo",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let status = rt.block_on(async {
        use backfill_storage::JobRepository;
        let db = backfill_storage::sqlite::SqliteStorage::open(dir.path().join("backfill-demo.db"))
            .await
            .unwrap();
        db.get_job(other).await.unwrap().job.status
    });
    assert_eq!(status, backfill_domain::JobStatus::Queued);
}
