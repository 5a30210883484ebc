//! The bulk sources over real HTTP and real storage: every source stores the same candles as
//! REST for the same days.

use std::sync::Arc;
use std::time::Duration;

use backfill_domain::{
    BackfillMode, Candle, Chosen, DateRange, JobSpec, JobStatus, Ohlcv, RangeBound, Source, Symbol,
    TaskUnit, Timeframe,
};
use backfill_polygon::{FlatFiles, FlatFilesClient, FlatFilesConfig};
use backfill_polygon_sim::{
    RunningSimulator, SimConfig, Simulator, DEFAULT_S3_ACCESS_KEY_ID, DEFAULT_S3_SECRET_ACCESS_KEY,
};
use backfill_storage::{CandleQuery, Storage};
use chrono::NaiveDate;
use secrecy::SecretString;

use super::{client, config, events, start, start_with_files, KEY};
use crate::Db;

/// A market holiday inside the test's days.
const HOLIDAY: &str = "2024-01-15";

async fn market_sim() -> RunningSimulator {
    Simulator::new(
        SimConfig::new()
            .api_key(KEY)
            .market(12)
            .holiday(HOLIDAY.parse::<NaiveDate>().unwrap()),
    )
    .spawn("127.0.0.1:0")
    .await
    .unwrap()
}

fn range(from: &str, to: &str) -> DateRange {
    DateRange::new(
        RangeBound::parse(from).unwrap(),
        RangeBound::parse(to).unwrap(),
    )
    .unwrap()
}

/// A raw (unadjusted) job of `source` over `symbols` (`None`: the whole market).
fn raw_job(
    source: Source,
    symbols: Option<&[Symbol]>,
    timeframe: &str,
    days: DateRange,
    mode: BackfillMode,
) -> JobSpec {
    JobSpec::with_source(
        symbols.map(<[Symbol]>::to_vec),
        Timeframe::parse(timeframe).unwrap(),
        days,
        false,
        mode,
        Chosen {
            source,
            reason: format!("asked for: {source}"),
        },
    )
    .unwrap()
}

/// Every stored raw candle of `symbol` in `range`.
async fn stored_raw(
    storage: &Arc<dyn Storage>,
    symbol: &Symbol,
    timeframe: Timeframe,
    range: DateRange,
) -> Vec<Candle> {
    let page = storage
        .candles(&CandleQuery {
            symbol: symbol.clone(),
            timeframe,
            adjusted: false,
            range,
            limit: 50_000,
            after: None,
        })
        .await
        .unwrap();
    assert!(page.next_cursor.is_none());
    page.candles
}

/// Runs a job to its end; returns (status, candles stored by it).
async fn run_job(
    storage: &Arc<dyn Storage>,
    ev: &mut super::Events,
    spec: &JobSpec,
) -> (JobStatus, u64) {
    let job = storage.create_job(spec, None).await.unwrap().job;
    ev.job_finished(job.id).await;
    let details = storage.get_job(job.id).await.unwrap();
    (details.job.status, details.progress.candles_stored)
}

/// Day bars of the same days from REST, from the grouped endpoint and (later) from Flat Files
/// are the same candles: each source alone stores exactly the simulator's bars, and a second
/// source over days the first stored finds every bar identical.
pub(crate) async fn rest_and_grouped_store_identical_day_bars(db: Db) {
    let sim = market_sim().await;
    let storage = db.open().await;
    let w = start(
        &storage,
        client(&sim, KEY),
        config("w", 4, Duration::from_secs(30)),
    );
    let mut ev = events(&[&w]);
    let tickers: Vec<Symbol> = sim
        .market_tickers()
        .iter()
        .map(|t| Symbol::parse(t).unwrap())
        .collect();
    let daily = Timeframe::parse("1d").unwrap();
    let first = range("2024-01-08", "2024-01-12");
    let second = range("2024-01-15", "2024-01-19");
    let both = range("2024-01-08", "2024-01-19");

    // The whole market from the grouped endpoint: exactly the simulator's day bars, vwap
    // included; the holiday's task ends with a note.
    let spec = raw_job(Source::Grouped, None, "1d", first, BackfillMode::Missing);
    assert_eq!(
        run_job(&storage, &mut ev, &spec).await.0,
        JobStatus::Succeeded
    );
    for symbol in &tickers {
        let expected = sim.expected_candles(symbol, daily, &first, false);
        assert_eq!(expected.len(), 5, "{symbol}");
        assert_eq!(
            stored_raw(&storage, symbol, daily, first).await,
            expected,
            "{symbol}"
        );
    }
    // REST over the second week for every ticker: the same, through the other endpoint.
    let spec = raw_job(
        Source::Rest,
        Some(&tickers),
        "1d",
        second,
        BackfillMode::Missing,
    );
    assert_eq!(
        run_job(&storage, &mut ev, &spec).await.0,
        JobStatus::Succeeded
    );
    for symbol in &tickers {
        let expected = sim.expected_candles(symbol, daily, &second, false);
        assert_eq!(expected.len(), 4, "{symbol}: a holiday has no bar");
        assert_eq!(stored_raw(&storage, symbol, daily, second).await, expected);
    }
    // Each source again over both weeks, in full mode: every bar found identical.
    for source in [Source::Grouped, Source::Rest] {
        let symbols = (source == Source::Rest).then_some(tickers.as_slice());
        let spec = raw_job(source, symbols, "1d", both, BackfillMode::Full);
        let (status, stored) = run_job(&storage, &mut ev, &spec).await;
        assert_eq!((status, stored), (JobStatus::Succeeded, 0), "{source}");
    }
    // The holiday's grouped task says why it stored nothing.
    let listed = storage.list_jobs(10, None).await.unwrap();
    let grouped_both = listed
        .iter()
        .find(|j| j.job.spec.source() == Source::Grouped && j.job.spec.range() == both)
        .unwrap();
    let details = storage.get_job(grouped_both.job.id).await.unwrap();
    let holiday = details
        .tasks
        .iter()
        .find(|t| t.unit == TaskUnit::Day(HOLIDAY.parse().unwrap()))
        .unwrap();
    assert!(
        holiday
            .note
            .as_deref()
            .unwrap()
            .contains("not a trading day"),
        "{:?}",
        holiday.note
    );
    assert_eq!(details.progress.symbols_total, 10, "one task per weekday");
    assert_eq!(
        details.progress.requests, 10,
        "one grouped request per weekday"
    );
    w.stop().await;
}

/// A worker that reads the simulator's Flat Files too.
fn files_client(sim: &RunningSimulator) -> Arc<dyn FlatFiles> {
    let mut config = FlatFilesConfig::new(
        SecretString::from(DEFAULT_S3_ACCESS_KEY_ID.to_owned()),
        SecretString::from(DEFAULT_S3_SECRET_ACCESS_KEY.to_owned()),
    )
    .with_endpoint(sim.base_url());
    config.initial_backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(10);
    Arc::new(FlatFilesClient::new(config).unwrap())
}

/// The candles as Flat Files carry them: no vwap.
fn without_vwap(candles: Vec<Candle>) -> Vec<Candle> {
    candles
        .into_iter()
        .map(|c| {
            Candle::new(
                c.symbol().clone(),
                c.timeframe(),
                c.ts(),
                Ohlcv {
                    vwap: None,
                    ..*c.values()
                },
            )
            .unwrap()
        })
        .collect()
}

/// Minute and day bars from Flat Files are REST's bars without vwap: each file alone stores
/// exactly them; REST over the same days then only adds the vwap, and the files again change
/// nothing. An unchanged file is not downloaded twice, a replaced one is stored again, and a
/// holiday has no file.
pub(crate) async fn flat_files_store_the_same_candles_as_rest(db: Db) {
    let sim = market_sim().await;
    let storage = db.open().await;
    let w = start_with_files(
        &storage,
        client(&sim, KEY),
        Some(files_client(&sim)),
        config("w", 4, Duration::from_secs(30)),
    );
    let mut ev = events(&[&w]);
    let tickers: Vec<Symbol> = sim
        .market_tickers()
        .iter()
        .map(|t| Symbol::parse(t).unwrap())
        .collect();
    let minute = Timeframe::parse("1m").unwrap();
    let daily = Timeframe::parse("1d").unwrap();
    let days = range("2024-01-11", "2024-01-16"); // Thursday to Tuesday, Monday a holiday

    // The whole market's minutes from the files: REST's bars without vwap, exactly.
    let files = raw_job(Source::FlatFiles, None, "1m", days, BackfillMode::Missing);
    let job = storage.create_job(&files, None).await.unwrap().job;
    ev.job_finished(job.id).await;
    let details = storage.get_job(job.id).await.unwrap();
    assert_eq!(details.job.status, JobStatus::Succeeded);
    let mut total = 0;
    for symbol in &tickers {
        let expected = without_vwap(sim.expected_candles(symbol, minute, &days, false));
        let got = stored_raw(&storage, symbol, minute, days).await;
        assert_eq!(got.len(), expected.len(), "{symbol}");
        assert!(
            got == expected,
            "{symbol}: stored minutes differ from REST's"
        );
        total += expected.len() as u64;
    }
    assert_eq!(details.progress.candles_stored, total);
    let holiday = details
        .tasks
        .iter()
        .find(|t| t.unit == TaskUnit::Day(HOLIDAY.parse().unwrap()))
        .unwrap();
    assert!(
        holiday.note.as_deref().unwrap().contains("no file"),
        "{:?}",
        holiday.note
    );
    // Three files downloaded (a HEAD and a GET each), one HEAD for the holiday.
    assert_eq!(details.progress.requests, 3 * 2 + 1);
    assert!(details.progress.bytes > 0);

    // REST over the same days only adds the vwap; the files again change nothing (the vwap
    // they lack is kept), and in missing mode are not even downloaded.
    let rest = raw_job(Source::Rest, Some(&tickers), "1m", days, BackfillMode::Full);
    let (status, stored) = run_job(&storage, &mut ev, &rest).await;
    assert_eq!((status, stored), (JobStatus::Succeeded, total));
    for symbol in &tickers {
        let expected = sim.expected_candles(symbol, minute, &days, false);
        assert!(
            stored_raw(&storage, symbol, minute, days).await == expected,
            "{symbol}"
        );
    }
    let again = raw_job(Source::FlatFiles, None, "1m", days, BackfillMode::Full);
    assert_eq!(
        run_job(&storage, &mut ev, &again).await,
        (JobStatus::Succeeded, 0)
    );
    sim.reset_stats();
    let unchanged = raw_job(Source::FlatFiles, None, "1m", days, BackfillMode::Missing);
    let job = storage.create_job(&unchanged, None).await.unwrap().job;
    ev.job_finished(job.id).await;
    let details = storage.get_job(job.id).await.unwrap();
    assert_eq!(details.progress.candles_fetched, 0, "nothing downloaded");
    assert!(details
        .tasks
        .iter()
        .filter(|t| t.unit != TaskUnit::Day(HOLIDAY.parse().unwrap()))
        .all(|t| t.note.as_deref().unwrap_or_default().contains("unchanged")));
    assert_eq!(sim.stats().s3_bytes_served, 0);

    // A file replaced upstream (a revised day) is stored again, with what it now says.
    let friday: chrono::NaiveDate = "2024-01-12".parse().unwrap();
    sim.revise_day(friday);
    let revised = raw_job(Source::FlatFiles, None, "1m", days, BackfillMode::Missing);
    let (status, stored) = run_job(&storage, &mut ev, &revised).await;
    assert_eq!(status, JobStatus::Succeeded);
    let friday_range = DateRange::ny_day(friday);
    let mut changed = 0;
    for symbol in &tickers {
        let expected = without_vwap(sim.expected_candles(symbol, minute, &friday_range, false));
        let got = without_vwap(stored_raw(&storage, symbol, minute, friday_range).await);
        assert!(got == expected, "{symbol}: the revised day is not stored");
        changed += expected.len() as u64;
    }
    assert_eq!(
        stored, changed,
        "every bar of the revised day changed, no other"
    );

    // Day bars from the day files: REST's day bars without vwap.
    let day_files = raw_job(
        Source::FlatFiles,
        Some(&tickers),
        "1d",
        days,
        BackfillMode::Missing,
    );
    assert_eq!(
        run_job(&storage, &mut ev, &day_files).await.0,
        JobStatus::Succeeded
    );
    for symbol in &tickers {
        let expected = without_vwap(sim.expected_candles(symbol, daily, &days, false));
        assert_eq!(expected.len(), 3, "{symbol}: three trading days");
        assert_eq!(
            stored_raw(&storage, symbol, daily, days).await,
            expected,
            "{symbol}"
        );
    }
    w.stop().await;
}
