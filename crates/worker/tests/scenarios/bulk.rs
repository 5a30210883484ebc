//! The bulk sources over real HTTP and real storage: every source stores the same candles as
//! REST for the same days.

use std::sync::Arc;
use std::time::Duration;

use backfill_domain::{
    BackfillMode, Candle, Chosen, DateRange, JobSpec, JobStatus, RangeBound, Source, Symbol,
    TaskUnit, Timeframe,
};
use backfill_polygon_sim::{RunningSimulator, SimConfig, Simulator};
use backfill_storage::{CandleQuery, Storage};
use chrono::NaiveDate;

use super::{client, config, events, start, KEY};
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
