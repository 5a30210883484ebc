//! Schedules end to end: the CLI creates them through a running server, the server's scheduler
//! fires them into ordinary jobs that its worker runs, and several processes sharing one
//! PostgreSQL fire each due time exactly once.

use std::collections::HashSet;

use serde_json::Value;

use crate::helpers::{backfill, eventually, stderr, ServeProcess, TestDb, WorkerProcess};

fn cli(dir: &std::path::Path, server: &ServeProcess, args: &[&str]) -> std::process::Output {
    backfill(dir)
        .args(args)
        .env("BACKFILL_SERVER", &server.base_url)
        .output()
        .unwrap()
}

fn ok_json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_cli_keeps_a_universe_current_with_a_schedule_whose_runs_are_ordinary_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(dir.path(), &[], &["--demo"]);
    let run = |args: &[&str]| cli(dir.path(), &server, args);

    let out = run(&["universes", "set", "tech", "aapl", "MSFT", "AAPL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("symbols    2"), "{text}");

    // Every second, so that the test sees runs; 1d bars of the last three days.
    let out = run(&[
        "schedules",
        "create",
        "tech-daily",
        "--universe",
        "tech",
        "-t",
        "1d,1h",
        "--trigger",
        "* * * * * *",
        "--lookback-days",
        "3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("universe tech") && text.contains("1d,1h"),
        "{text}"
    );

    // Bad input: the server's error code reaches the user, and nothing is created.
    let out = run(&["schedules", "create", "bad", "AAPL", "--trigger", "at noon"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid_schedule"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("at noon"), "{}", stderr(&out));
    let out = run(&["schedules", "create", "twice", "MSFT", "-t", "1h"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("conflict") && stderr(&out).contains("tech-daily"),
        "{}",
        stderr(&out)
    );
    let out = run(&["schedules", "create", "ghost", "--universe", "nope"]);
    assert!(
        stderr(&out).contains("unknown_universe"),
        "{}",
        stderr(&out)
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let fired = rt.block_on(eventually(60, "the schedule's first run", || async {
        let s = ok_json(&run(&["schedules", "show", "tech-daily", "--json"]));
        let fired = s["last_run"]["job_ids"]
            .as_array()
            .is_some_and(|ids| !ids.is_empty());
        fired.then_some(s)
    }));
    let run_ = &fired["last_run"];
    assert_eq!(run_["error"], Value::Null);
    let jobs: Vec<String> = run_["job_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(jobs.len(), 2, "one job per timeframe: {fired}");
    let due: chrono::DateTime<chrono::Utc> = run_["due_at"].as_str().unwrap().parse().unwrap();
    let due_day = due
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive();
    let mut timeframes = HashSet::new();
    for id in &jobs {
        // The worker of the same server runs the run's jobs to the end.
        let status = rt.block_on(eventually(60, "the run's job to end", || async {
            let s = ok_json(&run(&["jobs", "status", id, "--json"]));
            (s["job"]["status"] == "succeeded").then_some(s)
        }));
        let spec = &status["job"];
        assert_eq!(spec["mode"], "missing");
        assert_eq!(spec["symbols"], serde_json::json!(["AAPL", "MSFT"]));
        let to: chrono::DateTime<chrono::Utc> =
            spec["range"]["to"].as_str().unwrap().parse().unwrap();
        let from: chrono::DateTime<chrono::Utc> =
            spec["range"]["from"].as_str().unwrap().parse().unwrap();
        let ny = |t: chrono::DateTime<chrono::Utc>| {
            t.with_timezone(&chrono_tz::America::New_York).date_naive()
        };
        assert_eq!(ny(to), due_day, "{spec}");
        assert_eq!(ny(from), due_day - chrono::TimeDelta::days(2), "{spec}");
        timeframes.insert(spec["timeframe"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        timeframes,
        HashSet::from(["1d".to_owned(), "1h".to_owned()])
    );

    // Paused, it is not due; the universe cannot go while the schedule names it.
    let out = run(&["schedules", "pause", "tech-daily"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("next due   paused"));
    let out = run(&["schedules", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tech-daily") && text.contains("paused"),
        "{text}"
    );
    let out = run(&["universes", "delete", "tech"]);
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));
    let out = run(&["schedules", "delete", "tech-daily"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["universes", "delete", "tech"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = ok_json(&run(&["universes", "list", "--json"]));
    assert_eq!(list["universes"], serde_json::json!([]));

    // Refreshed from the reference tickers of the demo's simulator: every listed and delisted
    // ticker as of a past day, exactly once each.
    let out = run(&[
        "universes",
        "refresh",
        "as-of-2020",
        "--status",
        "all",
        "--date",
        "2020-01-02",
        "--json",
    ]);
    let refreshed = ok_json(&out);
    let got: HashSet<String> = refreshed["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got.len(), refreshed["symbols"].as_array().unwrap().len());
    let sim = backfill_polygon_sim::Simulator::new(backfill_polygon_sim::SimConfig::new());
    let date = chrono::NaiveDate::from_ymd_opt(2020, 1, 2);
    let expected: HashSet<String> = [true, false]
        .into_iter()
        .flat_map(|active| sim.reference_tickers(active, date))
        .map(|t| t.ticker)
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        refreshed["origin"],
        "reference: market=stocks, status=all, date=2020-01-02"
    );
    let out = run(&["universes", "refresh", "x", "--date", "2020-13-40"]);
    assert!(stderr(&out).contains("2020-13-40"), "{}", stderr(&out));
    server.terminate();
}

/// Two API-only servers and a worker share one PostgreSQL and all run the scheduler: each due
/// time of a schedule firing every second makes its jobs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_postgres_fire_each_due_time_once() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.url.as_str())];
    let servers: Vec<ServeProcess> = (0..2)
        .map(|_| ServeProcess::spawn(dir.path(), &env, &["--no-worker"]))
        .collect();
    // Its tasks fail (nothing answers there); it is here to fire schedules too.
    let worker = WorkerProcess::spawn(dir.path(), &db.url, "http://127.0.0.1:9", &[]);
    let client = reqwest::Client::new();
    let created = client
        .post(servers[1].url("/api/v1/schedules"))
        .json(&serde_json::json!({
            "name": "every-second", "symbols": ["AAPL"], "timeframes": ["1d", "1h"],
            "trigger": "* * * * * *", "lookback_days": 1
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let runs = eventually(60, "six runs", || async {
        let s: Value = client
            .get(servers[1].url("/api/v1/schedules/every-second"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (s["runs"].as_u64()? >= 6).then_some(())
    });
    runs.await;
    let paused = client
        .post(servers[0].url("/api/v1/schedules/every-second/pause"))
        .send()
        .await
        .unwrap();
    assert!(paused.status().is_success());

    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let (runs, due_times): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT due_at) FROM schedule_runs")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let (jobs, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT (idempotency_key)) FROM jobs WHERE schedule_id IS NOT NULL",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(runs >= 6, "{runs}");
    assert_eq!(runs, due_times, "a due time fired twice");
    assert_eq!(jobs, runs * 2, "one job per timeframe and run");
    assert_eq!(jobs, distinct);
    for server in servers {
        server.terminate();
    }
    worker.terminate();
    drop(conn);
    db.drop_db().await;
}
