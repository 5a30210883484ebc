//! Faults of whole processes and of the database, on PostgreSQL: `kill -9` of a worker process
//! and connections cut by the server. The job must still end with exactly the simulator's candles,
//! each stored once.

use backfill_domain::{
    BackfillMode, DateRange, JobId, JobSpec, JobStatus, RangeBound, Symbol, Timeframe,
};
use backfill_polygon_sim::{RunningSimulator, SimConfig, Simulator};
use backfill_storage::postgres::PgStorage;
use backfill_storage::{CandleQuery, CandleStore, JobRepository};

use crate::helpers::{eventually, TestDb, WorkerProcess};

fn spec() -> JobSpec {
    JobSpec::new(
        ["AAPL", "MSFT", "X:BTCUSD", "NVDA"]
            .iter()
            .map(|s| Symbol::parse(s).unwrap())
            .collect(),
        Timeframe::parse("1m").unwrap(),
        DateRange::new(
            RangeBound::parse("2024-04-01").unwrap(),
            RangeBound::parse("2024-04-04").unwrap(),
        )
        .unwrap(),
        true,
        BackfillMode::Missing,
    )
    .unwrap()
}

async fn sim() -> RunningSimulator {
    Simulator::new(SimConfig::new().api_key("e2e-key").max_page_size(500))
        .spawn("127.0.0.1:0")
        .await
        .unwrap()
}

/// Waits for the job to end and checks that it stored exactly the simulator's candles, once.
async fn assert_finished_exactly(
    storage: &PgStorage,
    sim: &RunningSimulator,
    job: JobId,
    spec: &JobSpec,
) {
    let details = eventually(90, "the job to end", || async {
        storage
            .get_job(job)
            .await
            .ok()
            .filter(|d| d.job.status.is_terminal() && d.progress.symbols_running == 0)
    })
    .await;
    assert_eq!(
        details.job.status,
        JobStatus::Succeeded,
        "{:?}",
        details.tasks
    );
    let mut total = 0u64;
    for symbol in spec.symbols() {
        let expected = sim.expected_candles(symbol, spec.timeframe(), &spec.range(), true);
        let page = storage
            .candles(&CandleQuery {
                symbol: symbol.clone(),
                timeframe: spec.timeframe(),
                adjusted: true,
                range: spec.range(),
                limit: CandleQuery::MAX_LIMIT,
                after: None,
            })
            .await
            .unwrap();
        assert!(page.next_cursor.is_none());
        assert_eq!(page.candles.len(), expected.len(), "{symbol}");
        assert!(page.candles == expected, "{symbol}: candles differ");
        total += expected.len() as u64;
    }
    assert!(total > 0);
    assert_eq!(
        details.progress.candles_stored, total,
        "every candle counted once"
    );
}

#[test]
fn a_worker_process_killed_with_sigkill_loses_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = TestDb::create().await;
        let sim = sim().await;
        let storage = PgStorage::connect(&db.url).await.unwrap();
        storage.migrate().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Four requests a second each, so that the job is still running when one is killed.
        let flags = [
            "--lease-seconds",
            "3",
            "--requests-per-minute",
            "240",
            "--concurrency",
            "2",
        ];
        let a = WorkerProcess::spawn(dir.path(), &db.url, sim.base_url(), &flags);
        let b = WorkerProcess::spawn(dir.path(), &db.url, sim.base_url(), &flags);
        let spec = spec();
        let job = storage.create_job(&spec, None).await.unwrap().job.id;
        // Kill A once it holds a task that has stored something.
        let tag = a.pid_tag();
        eventually(60, "worker A to store a page", || async {
            let d = storage.get_job(job).await.ok()?;
            d.tasks
                .iter()
                .any(|t| {
                    t.worker_id.as_deref().is_some_and(|w| w.contains(&tag)) && t.candles_stored > 0
                })
                .then_some(())
        })
        .await;
        a.kill_9();
        assert_finished_exactly(&storage, &sim, job, &spec).await;
        // B took over A's tasks: some task needed a second attempt.
        let d = storage.get_job(job).await.unwrap();
        assert!(d.tasks.iter().any(|t| t.attempts >= 2), "{:?}", d.tasks);
        b.terminate();
        storage.pool().close().await;
        db.drop_db().await;
    });
}

#[test]
fn a_worker_reconnects_after_the_database_cuts_its_connections() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = TestDb::create().await;
        let sim = sim().await;
        let storage = PgStorage::connect(&db.url).await.unwrap();
        storage.migrate().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let flags = ["--lease-seconds", "3", "--requests-per-minute", "240"];
        let w = WorkerProcess::spawn(dir.path(), &db.url, sim.base_url(), &flags);
        let spec = spec();
        let job = storage.create_job(&spec, None).await.unwrap().job.id;
        eventually(60, "the worker to store a page", || async {
            let d = storage.get_job(job).await.ok()?;
            (d.progress.candles_stored > 0).then_some(())
        })
        .await;
        // Cut every connection to the database but this one.
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
            .await
            .unwrap();
        let cut: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(cut.iter().filter(|(ok,)| *ok).count() >= 1, "{cut:?}");
        // The test's own pool lost its connections too; it reconnects like the worker.
        assert_finished_exactly(&storage, &sim, job, &spec).await;
        w.terminate();
        storage.pool().close().await;
        db.drop_db().await;
    });
}

#[test]
fn a_restart_of_serve_mid_job_resumes_from_the_checkpoints() {
    use crate::helpers::ServeProcess;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = TestDb::create().await;
        let sim = sim().await;
        let storage = PgStorage::connect(&db.url).await.unwrap();
        storage.migrate().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let envs = [
            ("DATABASE_URL", db.url.as_str()),
            ("POLYGON_API_KEY", "e2e-key"),
            ("POLYGON_BASE_URL", sim.base_url()),
            // Four requests a second, so that the job is still running at the restart.
            ("POLYGON_REQUESTS_PER_MINUTE", "240"),
        ];
        let first = ServeProcess::spawn(dir.path(), &envs, &[]);
        let client = reqwest::Client::new();
        let body = serde_json::json!({
            "symbols": ["AAPL", "MSFT", "X:BTCUSD", "NVDA"],
            "timeframe": "1m", "from": "2024-04-01", "to": "2024-04-04",
        });
        let created: serde_json::Value = client
            .post(first.url("/api/v1/backfill"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let job: JobId = created["job"]["id"].as_str().unwrap().parse().unwrap();
        let stored_before = eventually(60, "the first server to store pages", || async {
            let d = storage.get_job(job).await.ok()?;
            (d.progress.candles_stored > 0).then_some(d.progress.candles_stored)
        })
        .await;
        first.terminate();
        let paused = storage.get_job(job).await.unwrap();
        assert!(!paused.job.status.is_terminal(), "the restart came mid-job");
        assert!(paused.progress.candles_stored >= stored_before);
        assert!(
            paused.tasks.iter().all(|t| t.worker_id.is_none()),
            "leases were released"
        );

        let second = ServeProcess::spawn(dir.path(), &envs, &[]);
        assert_finished_exactly(&storage, &sim, job, &spec()).await;
        second.terminate();
        storage.pool().close().await;
        db.drop_db().await;
    });
}
