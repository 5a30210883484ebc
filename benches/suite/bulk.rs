//! Section 7 (`bulk`): a whole-market backfill from Flat Files. The simulator serves a market of
//! `bulk_tickers` tickers as one gzipped CSV per trading day over S3 (as Polygon/Massive do); the
//! worker (`backfill run --all-tickers --source flatfiles`, its own process) downloads, decodes
//! and stores every row on PostgreSQL, and is compared with binary `COPY` of the identical rows
//! into an empty table. Also: the worker's peak resident memory, and the upstream calls it made
//! against the REST requests the same candles would take at least.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use backfill_domain::{requests_needed, DateRange, RangeBound, Session, Symbol, Timeframe};
use backfill_polygon_sim::{Dataset, RunningSimulator, SimConfig, Simulator};
use chrono::NaiveDate;
use sqlx::{Connection, Executor, PgConnection};

use crate::db::{checkpoint, TempPg};
use crate::report::{per_second, thousands, Row};
use crate::worker;
use crate::Ctx;

/// The target ratio of the worker's rate to binary COPY's.
const TARGET_RATIO: f64 = 0.8;
/// The worker's peak resident memory target, in bytes (MB: 10^6).
const TARGET_RSS: u64 = 200_000_000;
/// Rows per COPY of the reference: a page of the aggregates endpoint (the worker pages files by
/// 20,000 rows).
const PAGE: usize = 50_000;
/// The simulator's S3 credentials.
const ACCESS_KEY: &str = "bench-access-key";
const SECRET_KEY: &str = "bench-secret-key";

/// The section's rows.
pub(crate) async fn rows(ctx: &Ctx) -> Vec<Row> {
    let name = format!(
        "Whole-market ingest from Flat Files, PostgreSQL: `backfill run --all-tickers --source \
         flatfiles -t 1m --adjusted false` (concurrency {}), {} tickers x {} trading days of \
         minutes from the simulator's S3 bucket over loopback HTTP",
        ctx.sizes.concurrency,
        thousands(ctx.sizes.bulk_tickers as u64),
        ctx.sizes.bulk_days
    );
    match measure(ctx).await {
        Ok(m) => m.rows(name),
        Err(e) => vec![Row::failed(name, &e)],
    }
}

struct Measured {
    wall_secs: f64,
    stored: u64,
    expected: u64,
    reference_secs: f64,
    peak_rss: Option<u64>,
    /// Requests the simulator's bucket answered (HEADs and GETs), and bytes it served.
    s3_requests: u64,
    s3_bytes: u64,
    rest_minimum: u64,
    tickers: usize,
    days: usize,
}

impl Measured {
    fn rows(&self, name: String) -> Vec<Row> {
        let ratio =
            (self.stored as f64 / self.wall_secs) / (self.expected as f64 / self.reference_secs);
        let rss = self.peak_rss.unwrap_or(u64::MAX);
        vec![
            Row::new(
                name,
                format!(
                    "{} candles/s ({} candles in {:.2} s: the process's wall time, \
                     migrations applied before)",
                    per_second(self.stored, self.wall_secs),
                    thousands(self.stored),
                    self.wall_secs
                ),
                format!(
                    "{} candles/s: binary `COPY ... FROM STDIN` of the identical rows into an \
                     empty `(LIKE candles INCLUDING ALL)` table, fresh database, one COPY per \
                     {} rows, encoding included ({:.2} s)",
                    per_second(self.expected, self.reference_secs),
                    thousands(PAGE as u64),
                    self.reference_secs
                ),
                format!("{ratio:.2} (target >= {TARGET_RATIO})"),
                ratio >= TARGET_RATIO,
            ),
            Row::new(
                "Candles stored by the whole-market run above = the rows of the simulator's files",
                format!("{} rows in `candles`", thousands(self.stored)),
                format!("{} (`Simulator::flat_file_rows`)", thousands(self.expected)),
                "equal",
                self.stored == self.expected,
            ),
            Row::new(
                "Peak resident memory of the whole-market run above",
                match self.peak_rss {
                    Some(b) => format!("{:.1} MB (the worker process's VmHWM)", b as f64 / 1e6),
                    None => "not reported".to_owned(),
                },
                "-",
                format!(
                    "{:.2} of the target (target <= 200 MB)",
                    rss as f64 / TARGET_RSS as f64
                ),
                rss <= TARGET_RSS,
            ),
            Row::new(
                "Upstream calls of the whole-market run above",
                format!(
                    "{} S3 requests (a HEAD and a GET per file, {} files), {:.1} MB downloaded",
                    thousands(self.s3_requests),
                    self.days,
                    self.s3_bytes as f64 / 1e6
                ),
                format!(
                    "{} REST requests at least for the same candles ({} tickers, each \
                     ceil(base aggregates / 50,000))",
                    thousands(self.rest_minimum),
                    thousands(self.tickers as u64)
                ),
                format!(
                    "{:.0}x fewer calls (target: at most 2 per trading day)",
                    self.rest_minimum as f64 / self.s3_requests.max(1) as f64
                ),
                self.s3_requests <= 2 * self.days as u64,
            ),
        ]
    }
}

/// The trading days of the section: the first `n` weekdays from 2024-01-02.
fn days(n: usize) -> Vec<NaiveDate> {
    let first: NaiveDate = "2024-01-02".parse().unwrap_or_default();
    first
        .iter_days()
        .filter(|d| {
            !matches!(
                chrono::Datelike::weekday(d),
                chrono::Weekday::Sat | chrono::Weekday::Sun
            )
        })
        .take(n)
        .collect()
}

async fn measure(ctx: &Ctx) -> anyhow::Result<Measured> {
    let days = days(ctx.sizes.bulk_days);
    let (first, last) = (
        *days.first().context("no day")?,
        *days.last().context("no day")?,
    );
    let sim = Simulator::new(
        SimConfig::new()
            .api_key(crate::API_KEY)
            .market(ctx.sizes.bulk_tickers)
            .s3_credentials(ACCESS_KEY, SECRET_KEY)
            .cached_files(days.len() + 2, 4 << 30),
    )
    .spawn("127.0.0.1:0")
    .await
    .context("starting the simulator of the bulk section")?;
    // The files are generated (and cached) before the run, so that the simulator's CPU does not
    // count against the worker; the same rows feed the reference.
    let rows = expected_rows(&sim, &days).await?;
    let expected = rows.len() as u64;
    let outcome = run_worker(ctx, &sim, first, last).await;
    let stats = sim.stats();
    let (wall_secs, stored, peak_rss) = outcome?;
    let reference_secs = reference(ctx, &rows).await?;
    let range = DateRange::new(RangeBound::Date(first), RangeBound::Date(last))?;
    let minute = Timeframe::parse("1m")?;
    let rest_minimum: u64 = sim
        .market_tickers()
        .iter()
        .map(|t| {
            let symbol = Symbol::parse(t)?;
            anyhow::Ok(u64::from(requests_needed(
                &range,
                minute,
                Session::of(&symbol),
            )))
        })
        .sum::<anyhow::Result<u64>>()?;
    let tickers = sim.market_tickers().len();
    sim.shutdown().await?;
    Ok(Measured {
        wall_secs,
        stored,
        expected,
        reference_secs,
        peak_rss,
        s3_requests: stats.matching("/flatfiles"),
        s3_bytes: stats.s3_bytes_served,
        rest_minimum,
        tickers,
        days: days.len(),
    })
}

/// One candle row of the reference: (series id, candle).
type RefRow = (i32, backfill_domain::Candle);

/// Every row of the days' minute files, with series ids by ticker, in file order.
async fn expected_rows(sim: &RunningSimulator, days: &[NaiveDate]) -> anyhow::Result<Vec<RefRow>> {
    let sim = sim.simulator().clone();
    let days = days.to_vec();
    tokio::task::spawn_blocking(move || {
        let ids: std::collections::HashMap<String, i32> = {
            let mut tickers = sim.market_tickers().to_vec();
            tickers.sort();
            tickers
                .into_iter()
                .enumerate()
                .map(|(i, t)| (t, i as i32 + 1))
                .collect()
        };
        let mut rows = Vec::new();
        for day in days {
            for candle in sim.flat_file_rows(Dataset::MinuteAggs, day) {
                let id = ids.get(candle.symbol().as_str()).copied().unwrap_or(0);
                rows.push((id, candle));
            }
        }
        rows
    })
    .await
    .context("reading the simulator's files")
}

/// `backfill run` of the whole market's minutes from the simulator's Flat Files on a fresh
/// database; returns (wall seconds, rows stored, peak RSS).
async fn run_worker(
    ctx: &Ctx,
    sim: &RunningSimulator,
    first: NaiveDate,
    last: NaiveDate,
) -> anyhow::Result<(f64, u64, Option<u64>)> {
    let db = TempPg::create(&ctx.admin_url, "bulk_worker").await?;
    let measured = async {
        let dir = tempfile::tempdir()?;
        worker::migrate(&db.url, dir.path()).await?;
        checkpoint(&db.options).await;
        sim.reset_stats();
        let args = [
            "--all-tickers",
            "--source",
            "flatfiles",
            "-t",
            "1m",
            "--adjusted",
            "false",
            "--from",
            &first.to_string(),
            "--to",
            &last.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let env = [
            ("POLYGON_S3_ENDPOINT", sim.base_url()),
            ("POLYGON_S3_ACCESS_KEY_ID", ACCESS_KEY),
            ("POLYGON_S3_SECRET_ACCESS_KEY", SECRET_KEY),
        ];
        let run = worker::run_with(
            &db.url,
            sim.base_url(),
            args,
            &env,
            ctx.sizes.concurrency,
            dir.path(),
        )
        .await?;
        let mut conn = PgConnection::connect_with(&db.options).await?;
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM candles")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        anyhow::Ok((run.wall_secs, u64::try_from(stored)?, run.peak_rss_bytes))
    }
    .await;
    db.drop_db().await?;
    measured
}

/// Binary COPY of `rows` into an empty copy of the candles table, one COPY per page.
async fn reference(ctx: &Ctx, rows: &[RefRow]) -> anyhow::Result<f64> {
    let db = TempPg::create(&ctx.admin_url, "bulk_copy").await?;
    let measured = async {
        let dir = tempfile::tempdir()?;
        worker::migrate(&db.url, dir.path()).await?;
        let mut conn = PgConnection::connect_with(&db.options).await?;
        conn.execute("CREATE TABLE candles_copy (LIKE candles INCLUDING ALL)")
            .await?;
        checkpoint(&db.options).await;
        let statement = "COPY candles_copy (ts, open, high, low, close, volume, vwap, trades, \
                         series_id) FROM STDIN (FORMAT binary)";
        let began = Instant::now();
        for page in rows.chunks(PAGE) {
            let bytes = encode(page);
            let copy = async {
                let mut copy = conn.copy_in_raw(statement).await?;
                copy.send(bytes).await?;
                copy.finish().await
            };
            tokio::time::timeout(Duration::from_secs(120), copy)
                .await
                .context("a COPY of one page took more than two minutes")??;
        }
        let secs = began.elapsed().as_secs_f64();
        let copied: i64 = sqlx::query_scalar("SELECT count(*) FROM candles_copy")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        ensure!(copied as usize == rows.len(), "COPY stored {copied} rows");
        anyhow::Ok(secs)
    }
    .await;
    db.drop_db().await?;
    measured
}

/// PostgreSQL's binary COPY encoding of candle rows (the column order of `candles`).
fn encode(page: &[RefRow]) -> Vec<u8> {
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let mut buf = Vec::with_capacity(21 + page.len() * 100);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0");
    let field = |buf: &mut Vec<u8>, bytes: Option<[u8; 8]>| match bytes {
        Some(b) => {
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&b);
        }
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
    };
    for (series_id, c) in page {
        buf.extend_from_slice(&9i16.to_be_bytes());
        let micros = c.ts().timestamp_micros() - PG_EPOCH_MICROS;
        field(&mut buf, Some(micros.to_be_bytes()));
        for v in [c.open(), c.high(), c.low(), c.close(), c.volume()] {
            field(&mut buf, Some(v.to_be_bytes()));
        }
        field(&mut buf, c.vwap().map(f64::to_be_bytes));
        field(
            &mut buf,
            c.trades()
                .and_then(|n| i64::try_from(n).ok())
                .map(i64::to_be_bytes),
        );
        buf.extend_from_slice(&4i32.to_be_bytes());
        buf.extend_from_slice(&series_id.to_be_bytes());
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}
