//! The split watch over real HTTP and real storage: a schedule that keeps adjusted series
//! current also finds the series a new split made stale and fetches them again, once.

use std::sync::Arc;
use std::time::Duration;

use backfill_domain::{
    new_york_date, BackfillMode, JobStatus, Name, ScheduleSpec, Sources, Symbol, Tickers,
    Timeframe, Trigger,
};
use backfill_polygon::{ActionData, PolygonClient, PolygonConfig};
use backfill_polygon_sim::Fault;
use backfill_worker::{Scheduler, SplitWatch, WatchScope};
use chrono::{TimeDelta, Utc};
use secrecy::SecretString;

use super::{assert_exact, config, events, sim, spec, start, KEY};
use crate::Db;

pub(crate) async fn the_scheduler_refetches_series_a_split_made_stale(db: Db) {
    let sim = sim(500).await;
    let storage = db.open().await;
    let market = PolygonClient::new(
        PolygonConfig::new(SecretString::from(KEY)).with_base_url(sim.base_url()),
    )
    .unwrap();
    let w = start(
        &storage,
        Arc::new(market.clone()),
        config("w", 2, Duration::from_secs(30)),
    );
    let mut ev = events(&[&w]);
    let march = spec(
        &["AAPL", "MSFT"],
        "1d",
        "2024-03-01",
        "2024-03-29",
        BackfillMode::Missing,
    );
    let job = storage.create_job(&march, None).await.unwrap().job;
    ev.job_finished(job.id).await;
    assert_exact(&storage, &sim, &march).await;
    let aapl = Symbol::parse("AAPL").unwrap();
    let msft = Symbol::parse("MSFT").unwrap();
    let daily = Timeframe::parse("1d").unwrap();
    let fetched_at = |symbol: Symbol| {
        let storage = storage.clone();
        async move {
            storage.adjusted_series(&symbol).await.unwrap()[0]
                .fetched_at
                .unwrap()
        }
    };
    let (fetched, msft_fetched) = (
        fetched_at(aapl.clone()).await,
        fetched_at(msft.clone()).await,
    );

    // A schedule keeps AAPL's adjusted day bars current (MSFT is in no schedule).
    storage
        .create_schedule(
            &ScheduleSpec::new(
                Name::parse("aapl-daily").unwrap(),
                Tickers::Symbols(vec![aapl.clone()]),
                vec![daily],
                true,
                None,
                Trigger::parse("* * * * *").unwrap(),
                1,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let source: Arc<dyn ActionData> = Arc::new(market);
    let watch = SplitWatch::new(source, storage.clone());
    let scheduler = Scheduler::new(storage.clone(), Sources { flat_files: false })
        .with_split_watch(watch.clone());

    // Nothing split since the fetch: the run's check finds nothing to do.
    let now = Utc::now() + TimeDelta::minutes(2);
    let runs = scheduler.tick(now).await.unwrap();
    assert_eq!(runs.len(), 1);
    let check = scheduler.check_splits(now).await.unwrap().expect("a check");
    assert!(check.refetches.is_empty(), "{check:?}");
    // Only asked for by runs: none is pending now.
    assert_eq!(scheduler.check_splits(now).await.unwrap(), None);

    // Both split 4-for-1 two days from now; the next run's check is made three days from now
    // (the run itself is due now: a run's range cannot reach past tomorrow).
    let split_day = new_york_date(Utc::now()) + TimeDelta::days(2);
    sim.add_split("AAPL", split_day, 1.0, 4.0);
    sim.add_split("MSFT", split_day, 1.0, 4.0);
    let runs = scheduler.tick(now + TimeDelta::minutes(2)).await.unwrap();
    assert_eq!(runs.len(), 1);
    let later = Utc::now() + TimeDelta::days(3);
    // Upstream refuses the listing once: the check fails, stays pending, and is done next time.
    sim.inject_on("/v3/reference/splits", [Fault::Status(403)]);
    let err = scheduler.check_splits(later).await.unwrap_err();
    assert!(matches!(err, backfill_worker::Error::Actions(_)), "{err}");
    assert!(storage.splits(&aapl).await.unwrap().is_empty());
    let check = scheduler
        .check_splits(later)
        .await
        .unwrap()
        .expect("a check");
    // Both splits are listed and stored; only the schedule's AAPL is fetched again.
    assert!(check.listed >= 2 && check.stored >= 2, "{check:?}");
    assert!(storage
        .splits(&msft)
        .await
        .unwrap()
        .iter()
        .any(|s| s.execution_date == split_day));
    let [refetch] = check.refetches.as_slice() else {
        panic!("one refetch: {check:?}");
    };
    assert_eq!((&refetch.symbol, refetch.timeframe), (&aapl, daily));
    assert_eq!(refetch.split.execution_date, split_day);
    assert!(refetch.created);
    let job = storage.get_job(refetch.job_id).await.unwrap().job;
    assert_eq!(job.spec.mode(), BackfillMode::Full);
    assert!(job.spec.adjusted());
    assert_eq!(job.spec.symbols(), std::slice::from_ref(&aapl));
    assert_eq!(job.spec.range().from(), march.range().from());

    // Another process checking the same split finds the same job, and makes no second one.
    let scope = WatchScope::Symbols([aapl.clone()].into_iter().collect());
    let again = watch
        .check(&scope, job.spec.range().to(), later)
        .await
        .unwrap();
    assert_eq!(again.refetches.len(), 1);
    assert_eq!(again.refetches[0].job_id, refetch.job_id);
    assert!(!again.refetches[0].created);
    // Nor does a run that reaches further (a day later): the split's job stands.
    let jobs = storage.list_jobs(100, None).await.unwrap().len();
    let further = watch
        .check(&scope, job.spec.range().to() + TimeDelta::days(1), later)
        .await
        .unwrap();
    assert!(further.refetches.is_empty(), "{further:?}");
    assert_eq!(storage.list_jobs(100, None).await.unwrap().len(), jobs);

    // The job stores AAPL's series on the new basis; MSFT keeps the old one.
    ev.job_finished(refetch.job_id).await;
    let details = storage.get_job(refetch.job_id).await.unwrap();
    assert_eq!(details.job.status, JobStatus::Succeeded);
    let aapl_march = spec(
        &["AAPL"],
        "1d",
        "2024-03-01",
        "2024-03-29",
        BackfillMode::Full,
    );
    assert_exact(&storage, &sim, &aapl_march).await;
    assert!(fetched_at(aapl.clone()).await > fetched);
    assert_eq!(fetched_at(msft.clone()).await, msft_fetched);
    w.stop().await;
}
