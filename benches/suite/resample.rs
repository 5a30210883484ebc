//! Section 8 (`resample`): a year of a stock's minutes read as hourly and daily bars through
//! `storage::resampled` (what `GET /api/v1/candles/{symbol}?timeframe=1h&resample_from=1m`
//! does), against reading the same minutes as they are stored, on PostgreSQL and SQLite. The
//! resampling itself must cost little next to the read: the target is at most 1.25 times the
//! plain read's time. Also the in-memory rate of the resampler alone.

use std::time::Instant;

use anyhow::Context;
use backfill_domain::{
    resample, BackfillMode, Candle, DateRange, Hours, JobSpec, RangeBound, Symbol, Timeframe,
};
use backfill_storage::postgres::PgStorage;
use backfill_storage::sqlite::SqliteStorage;
use backfill_storage::{resampled, CandleQuery, ClaimRequest, Fetched, ResampleQuery, Storage};

use crate::db::TempPg;
use crate::report::{per_second, thousands, Row};
use crate::Ctx;

/// The most a resampled read may take against a plain read of the same bars.
const TARGET: f64 = 1.25;
/// Reads of each kind; the fastest is kept (the others warmed caches or met noise).
const RUNS: usize = 3;

/// The section's rows.
pub(crate) async fn rows(ctx: &Ctx) -> Vec<Row> {
    let mut rows = Vec::new();
    let minutes = match year_of_minutes(ctx) {
        Ok(m) => m,
        Err(e) => return vec![Row::failed("Resampling a year of minutes", &e)],
    };
    rows.push(in_memory(&minutes));
    match postgres(ctx, &minutes).await {
        Ok(r) => rows.extend(r),
        Err(e) => rows.push(Row::failed("Resampled reads, PostgreSQL", &e)),
    }
    match sqlite(&minutes).await {
        Ok(r) => rows.extend(r),
        Err(e) => rows.push(Row::failed("Resampled reads, SQLite", &e)),
    }
    rows
}

fn range() -> anyhow::Result<DateRange> {
    Ok(DateRange::new(
        RangeBound::parse("2024-01-01")?,
        RangeBound::parse("2024-12-31")?,
    )?)
}

fn minute() -> Timeframe {
    Timeframe::parse("1m").unwrap_or_else(|_| unreachable!("1m parses"))
}

/// The simulator's minutes of one stock over 2024 (extended hours, weekdays, holidays left out).
fn year_of_minutes(ctx: &Ctx) -> anyhow::Result<Vec<Candle>> {
    let symbol = Symbol::parse("SYM000")?;
    Ok(ctx
        .sim
        .simulator()
        .expected_candles(&symbol, minute(), &range()?, true))
}

fn in_memory(minutes: &[Candle]) -> Row {
    let hour = Timeframe::parse("1h").unwrap_or_else(|_| unreachable!("1h parses"));
    let mut best = f64::MAX;
    let mut built = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        match resample(minutes, minute(), hour, Hours::Extended) {
            Ok(bars) => built = bars.len(),
            Err(e) => return Row::failed("Resampling in memory", &e.into()),
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Row::new(
        format!(
            "Resampling in memory: {} minutes of one stock (2024) to {} hourly bars",
            thousands(minutes.len() as u64),
            thousands(built as u64)
        ),
        format!(
            "{} minutes/s ({:.1} ms)",
            per_second(minutes.len() as u64, best),
            best * 1000.0
        ),
        "-",
        "printed".to_owned(),
        true,
    )
}

/// Stores `minutes` as one job's task would.
async fn store(storage: &dyn Storage, minutes: &[Candle]) -> anyhow::Result<()> {
    let spec = JobSpec::new(
        vec![Symbol::parse("SYM000")?],
        minute(),
        range()?,
        true,
        BackfillMode::Full,
    )?;
    storage.create_job(&spec, None).await?;
    let claimed = storage
        .claim_tasks(&ClaimRequest {
            worker_id: "bench".to_owned(),
            max: 1,
            lease_ttl: std::time::Duration::from_secs(600),
            only_job: None,
            max_attempts: 1,
        })
        .await?;
    let task = claimed.first().context("no task claimed")?;
    for page in minutes.chunks(CandleQuery::MAX_LIMIT as usize) {
        let last = page.last().context("empty page")?.ts();
        storage
            .ingest_page(&task.lease, page, last, Fetched::default())
            .await?;
    }
    storage.complete_task(&task.lease, &[range()?]).await?;
    Ok(())
}

/// The fastest of [`RUNS`] plain reads of the minutes, and of resampled reads to each target.
async fn measure(storage: &dyn Storage, backend: &str, n: usize) -> anyhow::Result<Vec<Row>> {
    let symbol = Symbol::parse("SYM000")?;
    let mut plain = f64::MAX;
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut after = None;
        let mut read = 0;
        loop {
            let page = storage
                .candles(&CandleQuery {
                    symbol: symbol.clone(),
                    timeframe: minute(),
                    adjusted: true,
                    range: range()?,
                    limit: CandleQuery::MAX_LIMIT,
                    after,
                })
                .await?;
            read += page.candles.len();
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        anyhow::ensure!(read == n, "read {read} minutes, stored {n}");
        plain = plain.min(start.elapsed().as_secs_f64());
    }
    let mut rows = Vec::new();
    for (target, hours) in [("1h", Hours::Extended), ("1d", Hours::Regular)] {
        let target = Timeframe::parse(target)?;
        let mut best = f64::MAX;
        let mut built = 0;
        for _ in 0..RUNS {
            let start = Instant::now();
            let mut after = None;
            built = 0;
            loop {
                let page = resampled(
                    storage,
                    &ResampleQuery {
                        symbol: symbol.clone(),
                        source: minute(),
                        target,
                        hours,
                        adjusted: true,
                        range: range()?,
                        limit: CandleQuery::MAX_LIMIT,
                        after,
                    },
                )
                .await?;
                built += page.candles.len();
                match page.next_cursor {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        let ratio = best / plain;
        rows.push(Row::new(
            format!(
                "Resampled read, {backend}: a year of one stock's minutes ({}) as {} {target} \
                 bars ({} hours), `storage::resampled`",
                thousands(n as u64),
                thousands(built as u64),
                hours.as_str()
            ),
            format!(
                "{:.0} ms ({} minutes/s)",
                best * 1000.0,
                per_second(n as u64, best)
            ),
            format!(
                "{:.0} ms: the same minutes read as stored, pages of 50,000",
                plain * 1000.0
            ),
            format!("{ratio:.2} of the plain read (target <= {TARGET})"),
            ratio <= TARGET,
        ));
    }
    Ok(rows)
}

async fn postgres(ctx: &Ctx, minutes: &[Candle]) -> anyhow::Result<Vec<Row>> {
    let db = TempPg::create(&ctx.admin_url, "resample").await?;
    let result = async {
        let storage = PgStorage::connect_with(db.options.clone()).await?;
        storage.migrate().await?;
        store(&storage, minutes).await?;
        let rows = measure(&storage, "PostgreSQL", minutes.len()).await;
        storage.pool().close().await;
        rows
    }
    .await;
    db.drop_db().await?;
    result
}

async fn sqlite(minutes: &[Candle]) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let storage = SqliteStorage::open(dir.path().join("resample.db")).await?;
    store(&storage, minutes).await?;
    measure(&storage, "SQLite", minutes.len()).await
}
