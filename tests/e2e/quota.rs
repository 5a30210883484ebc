//! One request quota for the whole fleet: four `backfill worker` processes and a `backfill
//! serve` with its embedded worker share one PostgreSQL database and one key, against a
//! simulator that refuses (429) any request over the key's limit and records when each request
//! arrived. Together they must never exceed the limit in any window, and must still use it.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use backfill_domain::{BackfillMode, DateRange, JobSpec, JobStatus, RangeBound, Symbol, Timeframe};
use backfill_polygon_sim::{SimConfig, Simulator};
use backfill_storage::postgres::PgStorage;
use backfill_storage::JobRepository;
use tokio::time::Instant;

use crate::helpers::{eventually, ServeProcess, TestDb, WorkerProcess};

/// The key's limit: 20 requests in any 2 seconds (a minute's window, shortened for the test).
const LIMIT: usize = 20;
const WINDOW: Duration = Duration::from_secs(2);

/// Twenty stocks' minutes of one day, six pages each (960 bars, 160 to a page): 120 requests,
/// about ten seconds at the limit.
fn spec() -> JobSpec {
    let symbols = [
        "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "INTC", "ORCL", "IBM",
        "CSCO", "ADBE", "CRM", "QCOM", "TXN", "AVGO", "MU", "NFLX", "PYPL",
    ];
    JobSpec::new(
        symbols.iter().map(|s| Symbol::parse(s).unwrap()).collect(),
        Timeframe::parse("1m").unwrap(),
        DateRange::new(
            RangeBound::parse("2024-04-01").unwrap(),
            RangeBound::parse("2024-04-01").unwrap(),
        )
        .unwrap(),
        true,
        BackfillMode::Missing,
    )
    .unwrap()
}

/// The share of the limit used. Under the limit, every request arrives at least a window after
/// the one `LIMIT` requests before it, and at full use exactly a window after it, whether
/// requests come in bursts or evenly spaced: so the share is the window over the mean time
/// between each arrival and the `LIMIT`-th after it.
fn used_share(arrivals: &[Instant]) -> f64 {
    let gaps: Vec<Duration> = arrivals
        .iter()
        .zip(&arrivals[LIMIT..])
        .map(|(earlier, later)| *later - *earlier)
        .collect();
    let mean = gaps.iter().sum::<Duration>().as_secs_f64() / gaps.len() as f64;
    WINDOW.as_secs_f64() / mean
}

#[test]
fn four_workers_and_a_server_sharing_a_key_stay_under_its_limit_and_use_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = TestDb::create().await;
        let sim = Simulator::new(
            SimConfig::new()
                .api_key("e2e-key")
                .max_page_size(160)
                .rate_limit(LIMIT as u32, WINDOW)
                .retry_after(Some(1)),
        )
        .spawn("127.0.0.1:0")
        .await
        .unwrap();
        let storage = PgStorage::connect(&db.url).await.unwrap();
        storage.migrate().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let limit = LIMIT.to_string();
        let flags = [
            "--requests-per-minute",
            &limit,
            "--rate-window",
            "2s",
            "--concurrency",
            "2",
        ];
        let workers: Vec<WorkerProcess> = (0..4)
            .map(|_| WorkerProcess::spawn_ready(dir.path(), &db.url, sim.base_url(), &flags))
            .collect();
        let serve = ServeProcess::spawn(
            dir.path(),
            &[
                ("DATABASE_URL", db.url.as_str()),
                ("POLYGON_API_KEY", "e2e-key"),
                ("POLYGON_BASE_URL", sim.base_url()),
            ],
            &flags,
        );
        let spec = spec();
        let job = storage.create_job(&spec, None).await.unwrap().job.id;

        // Every process takes part: each is seen holding tasks while the job runs.
        let mut tags: Vec<String> = workers.iter().map(WorkerProcess::pid_tag).collect();
        tags.push(format!(":{}:", serve.child.id()));
        let seen = RefCell::new(BTreeSet::new());
        let (storage_ref, tags_ref, seen_ref) = (&storage, &tags, &seen);
        let details = eventually(60, "the job to end", move || async move {
            let d = storage_ref.get_job(job).await.ok()?;
            for task in &d.tasks {
                let holder = task.worker_id.as_deref().unwrap_or_default();
                let holders = tags_ref.iter().filter(|tag| holder.contains(tag.as_str()));
                seen_ref.borrow_mut().extend(holders.cloned());
            }
            (d.job.status.is_terminal() && d.progress.symbols_running == 0).then_some(d)
        })
        .await;
        let seen = seen.into_inner();
        assert_eq!(
            details.job.status,
            JobStatus::Succeeded,
            "{:?}",
            details.tasks
        );
        assert_eq!(
            seen.len(),
            5,
            "processes seen holding tasks: {seen:?} of {tags:?}"
        );

        let stats = sim.stats();
        let mut arrivals = stats.arrivals.clone();
        arrivals.sort();
        assert_eq!(
            stats.with_status(429),
            0,
            "the simulator never had to refuse"
        );
        assert_eq!(stats.total(), 120, "six pages a symbol, nothing retried");
        let most = stats.max_in_window(WINDOW);
        assert!(most <= LIMIT, "{most} requests within one window");
        let share = used_share(&arrivals);
        eprintln!(
            "fleet quota: {} requests over {:.2} s, at most {most} in any {WINDOW:?}, \
             {:.1} % of the limit used",
            arrivals.len(),
            (*arrivals.last().unwrap() - arrivals[0]).as_secs_f64(),
            share * 100.0
        );
        assert!(share >= 0.9, "{:.1} % of the limit used", share * 100.0);

        // The server reports the fleet's quota and its own use of it.
        let metrics = reqwest::get(serve.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        };
        assert_eq!(
            value("backfill_quota_limit"),
            Some(LIMIT as f64),
            "{metrics}"
        );
        assert!(
            value("backfill_quota_slots_taken_total").is_some_and(|n| n >= 1.0),
            "{metrics}"
        );
        assert!(
            value("backfill_quota_wait_seconds_total").is_some_and(|s| s > 0.0),
            "{metrics}"
        );

        // And the API says so: the fleet's quota, at its limit and window.
        let quota: serde_json::Value = reqwest::get(serve.url("/api/v1/quota"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(quota["scope"], "fleet", "{quota}");
        assert_eq!(quota["limit"], LIMIT, "{quota}");
        assert_eq!(
            quota["window_seconds"].as_f64(),
            Some(WINDOW.as_secs_f64()),
            "{quota}"
        );
        assert!(quota["in_use"].as_u64().is_some(), "{quota}");

        for worker in workers {
            worker.terminate();
        }
        serve.terminate();
        storage.pool().close().await;
        db.drop_db().await;
    });
}
