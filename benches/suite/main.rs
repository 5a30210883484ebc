//! The benchmark suite: every figure the project has a target for, measured in one run and
//! printed as one markdown table with a header line describing the machine.
//!
//! ```text
//! cargo bench --bench suite
//! BENCH_QUICK=1 cargo bench --bench suite          # small sizes, for a quick look
//! BENCH_ONLY=postgres,requests cargo bench --bench suite
//! ```
//!
//! PostgreSQL comes from `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! each measurement gets a database of its own, created for it and dropped afterwards. The
//! Polygon simulator is served from this process over loopback HTTP; the worker is the real
//! `backfill` binary, run as its own process.
//!
//! Sections (`BENCH_ONLY` takes a comma-separated list of their names):
//! 1. `postgres`: end-to-end ingest by `backfill run` against binary COPY of the identical rows.
//! 2. `sqlite`: the same on SQLite, against multi-row INSERTs (SQLite has no COPY).
//! 3. `memory`: the worker's peak resident memory, 50 symbols x one year of minutes.
//! 4. `api`: status latency with 200 concurrent clients while a job ingests (`backfill serve`
//!    on PostgreSQL, then SQLite).
//! 5. `requests`: Polygon requests per symbol against the minimum, for the runs of 1 and 3.
//! 6. `wide`: a job of 1,000 symbols of day bars (one request each) against one of 100: the time
//!    per symbol must not grow with the size of the job (both backends).
//! 7. `bulk`: the whole market's minutes from Flat Files (5,000 tickers x 20 trading days from the
//!    simulator's S3 bucket) against binary COPY of the same rows; peak memory; upstream calls
//!    against the REST minimum.
//! 8. `resample`: a year of one stock's minutes read as hourly and daily bars through
//!    `storage::resampled`, against reading the minutes as stored (both backends); and the
//!    resampler's own rate in memory.
//! 9. `export`: `backfill export` of section 1's rows (stored on PostgreSQL by `backfill run`) to
//!    Parquet and to CSV, rows per second against `COPY (SELECT ...) TO STDOUT` of the same rows.
//!
//! Environment: `BENCH_QUICK=1` (2 symbols x 10,000 bars; 2 symbols x January 2024),
//! `BENCH_SYMBOLS`, `BENCH_BARS`, `BENCH_RUNS` (sections 1 and 2; the median of `BENCH_RUNS`
//! runs, default 3, is shown), `BENCH_MEMORY_SYMBOLS`, `BENCH_MEMORY_TO`
//! (section 3, a date in 2024), `BENCH_CONCURRENCY` (the worker's, default 4),
//! `BENCH_BULK_TICKERS` and `BENCH_BULK_DAYS` (section 7).
#![expect(clippy::print_stdout, reason = "a benchmark prints its results")]

mod api;
mod bulk;
mod db;
mod export;
mod ingest;
mod machine;
mod memory;
mod report;
mod requests;
mod resample;
mod wide;
mod worker;

use std::str::FromStr;
use std::sync::OnceLock;

use anyhow::Context;
use backfill_domain::{DateRange, RangeBound, Symbol, Timeframe};
use backfill_polygon_sim::{RunningSimulator, SimConfig, Simulator};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use sqlx::postgres::PgConnectOptions;

use crate::report::{thousands, Row};

/// The key the simulator requires and the worker sends.
pub(crate) const API_KEY: &str = "bench";

/// Crypto pairs: they trade around the clock in the simulator (tickers starting `X:`).
const CRYPTO: [&str; 20] = [
    "X:BTCUSD",
    "X:ETHUSD",
    "X:SOLUSD",
    "X:XRPUSD",
    "X:ADAUSD",
    "X:DOGEUSD",
    "X:DOTUSD",
    "X:LTCUSD",
    "X:LINKUSD",
    "X:AVAXUSD",
    "X:UNIUSD",
    "X:ATOMUSD",
    "X:XLMUSD",
    "X:BCHUSD",
    "X:ETCUSD",
    "X:FILUSD",
    "X:AAVEUSD",
    "X:ALGOUSD",
    "X:NEARUSD",
    "X:TRXUSD",
];

/// How big each measurement is.
#[derive(Debug, Clone)]
pub(crate) struct Sizes {
    pub(crate) quick: bool,
    /// Sections 1 and 2: `X:` symbols, and one-minute bars each.
    pub(crate) crypto_symbols: usize,
    pub(crate) crypto_bars: i64,
    /// Sections 1 and 2: runs (worker and reference each), of which the median ratio is shown.
    pub(crate) ingest_runs: usize,
    /// Section 3: stock-like symbols over 2024-01-01 to `stock_to`.
    pub(crate) stock_symbols: usize,
    pub(crate) stock_to: String,
    /// The worker's `--concurrency`.
    pub(crate) concurrency: u32,
    /// Section 7: tickers of the simulated market, and trading days of minute files.
    pub(crate) bulk_tickers: usize,
    pub(crate) bulk_days: usize,
    /// The sections to run (all when `None`).
    pub(crate) only: Option<Vec<String>>,
}

impl Sizes {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let num = |name: &str, default: u64| {
            var(name)
                .and_then(|v| v.replace('_', "").parse::<u64>().ok())
                .unwrap_or(default)
        };
        let quick = var("BENCH_QUICK").is_some_and(|v| v != "0");
        Self {
            quick,
            crypto_symbols: num("BENCH_SYMBOLS", if quick { 2 } else { 20 }).max(1) as usize,
            crypto_bars: num("BENCH_BARS", if quick { 10_000 } else { 100_000 }).max(1) as i64,
            ingest_runs: num("BENCH_RUNS", if quick { 1 } else { 3 }).clamp(1, 99) as usize,
            stock_symbols: num("BENCH_MEMORY_SYMBOLS", if quick { 2 } else { 50 }).max(1) as usize,
            stock_to: var("BENCH_MEMORY_TO")
                .unwrap_or_else(|| if quick { "2024-01-31" } else { "2024-12-31" }.to_owned()),
            concurrency: num("BENCH_CONCURRENCY", 4).clamp(1, 1_000) as u32,
            bulk_tickers: num("BENCH_BULK_TICKERS", if quick { 200 } else { 5_000 }).max(1)
                as usize,
            bulk_days: num("BENCH_BULK_DAYS", if quick { 3 } else { 20 }).clamp(1, 250) as usize,
            only: var("BENCH_ONLY").map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
        }
    }
}

/// The symbols and range of one worker run, with what the simulator serves for them.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// As the table names it: `20 X: symbols x 100,000 1m bars (...)`.
    pub(crate) label: String,
    pub(crate) symbols: Vec<String>,
    /// `--from` and `--to` as given to `backfill run`.
    pub(crate) from: String,
    pub(crate) to: String,
    /// One-minute candles the simulator serves for each symbol over the range (adjusted).
    pub(crate) expected: Vec<u64>,
}

impl Workload {
    fn new(
        sim: &Simulator,
        label: String,
        symbols: Vec<String>,
        (from, to): (String, String),
    ) -> anyhow::Result<Self> {
        let range = DateRange::new(RangeBound::parse(&from)?, RangeBound::parse(&to)?)?;
        let tf = Timeframe::parse("1m")?;
        let expected = symbols
            .iter()
            .map(|s| {
                let symbol = Symbol::parse(s)?;
                anyhow::Ok(sim.expected_candles(&symbol, tf, &range, true).len() as u64)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            label,
            symbols,
            from,
            to,
            expected,
        })
    }

    pub(crate) fn expected_total(&self) -> u64 {
        self.expected.iter().sum()
    }
}

/// What every section needs: the database server, the simulator, the sizes.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// `DATABASE_URL` (the server's admin database; fresh databases are made next to it).
    pub(crate) admin_url: String,
    pub(crate) admin: PgConnectOptions,
    /// The Polygon simulator, served from this process (API key [`API_KEY`]).
    pub(crate) sim: RunningSimulator,
    pub(crate) sizes: Sizes,
    crypto: OnceLock<Workload>,
    stocks: OnceLock<Workload>,
}

impl Ctx {
    async fn new() -> anyhow::Result<Self> {
        let admin_url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let admin = PgConnectOptions::from_str(&admin_url)
            .with_context(|| format!("DATABASE_URL {admin_url:?} is not a PostgreSQL URL"))?;
        let sim = Simulator::new(SimConfig::new().api_key(API_KEY))
            .spawn("127.0.0.1:0")
            .await
            .context("starting the simulator")?;
        Ok(Self {
            admin_url,
            admin,
            sim,
            sizes: Sizes::from_env(),
            crypto: OnceLock::new(),
            stocks: OnceLock::new(),
        })
    }

    /// Whether a section is to run.
    pub(crate) fn wants(&self, section: &str) -> bool {
        self.sizes
            .only
            .as_ref()
            .is_none_or(|only| only.iter().any(|s| s == section))
    }

    /// Sections 1 and 2: `X:` symbols (round the clock), `crypto_bars` minutes from
    /// 2024-01-01T00:00Z, so exactly that many one-minute bars each.
    pub(crate) fn crypto_workload(&self) -> anyhow::Result<&Workload> {
        if let Some(w) = self.crypto.get() {
            return Ok(w);
        }
        let n = self.sizes.crypto_symbols;
        let symbols: Vec<String> = (0..n)
            .map(|i| {
                CRYPTO
                    .get(i)
                    .map_or_else(|| format!("X:C{i:03}USD"), |s| (*s).to_owned())
            })
            .collect();
        let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse()?;
        let end = start + TimeDelta::minutes(self.sizes.crypto_bars) - TimeDelta::milliseconds(1);
        let (from, to) = (
            start.to_rfc3339_opts(SecondsFormat::Millis, true),
            end.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        let label = format!(
            "{n} X: symbols x {} 1m bars from 2024-01-01T00:00Z (`--from {from} --to {to}`)",
            thousands(self.sizes.crypto_bars as u64)
        );
        let w = Workload::new(&self.sim, label, symbols, (from, to))?;
        Ok(self.crypto.get_or_init(|| w))
    }

    /// Section 3: stock-like symbols `SYM000`, ... (weekdays 04:00-20:00 New York), 2024-01-01 to
    /// `stock_to`.
    pub(crate) fn stock_workload(&self) -> anyhow::Result<&Workload> {
        if let Some(w) = self.stocks.get() {
            return Ok(w);
        }
        let n = self.sizes.stock_symbols;
        let symbols: Vec<String> = (0..n).map(|i| format!("SYM{i:03}")).collect();
        let (from, to) = ("2024-01-01".to_owned(), self.sizes.stock_to.clone());
        let label = format!("{n} stock-like symbols x 1m bars from {from} to {to}");
        let w = Workload::new(&self.sim, label, symbols, (from, to))?;
        Ok(self.stocks.get_or_init(|| w))
    }
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let ctx = rt.block_on(Ctx::new())?;
    let mut header = rt.block_on(machine::describe(&ctx.admin));
    eprintln!("{header}");

    let mut rows: Vec<Row> = Vec::new();
    let mut served = Vec::new();
    if ctx.wants("postgres") {
        eprintln!("section 1: end-to-end ingest, PostgreSQL ...");
        let (r, rec) = rt.block_on(ingest::postgres(&ctx));
        rows.extend(r);
        served.extend(rec);
    }
    if ctx.wants("sqlite") {
        eprintln!("section 2: end-to-end ingest, SQLite ...");
        rows.extend(rt.block_on(ingest::sqlite(&ctx)));
    }
    if ctx.wants("memory") {
        eprintln!("section 3: worker memory ...");
        let (r, rec) = rt.block_on(memory::postgres(&ctx));
        rows.extend(r);
        served.extend(rec);
    }

    if ctx.wants("api") {
        eprintln!("section 4: API latency under load ...");
        rows.extend(rt.block_on(api::rows(&ctx)));
    }

    if ctx.wants("requests") {
        if served.is_empty() {
            eprintln!("section 5: skipped (it counts the requests of sections 1 and 3)");
        } else {
            rows.extend(requests::rows(&ctx.sim, &served));
        }
    }

    if ctx.wants("wide") {
        eprintln!("section 6: a wide job ...");
        rows.extend(rt.block_on(wide::rows(&ctx)));
    }

    if ctx.wants("bulk") {
        eprintln!("section 7: whole-market Flat Files ...");
        rows.extend(rt.block_on(bulk::rows(&ctx)));
    }

    if ctx.wants("resample") {
        eprintln!("section 8: resampled reads ...");
        rows.extend(rt.block_on(resample::rows(&ctx)));
    }

    if ctx.wants("export") {
        eprintln!("section 9: export to Parquet and CSV ...");
        rows.extend(rt.block_on(export::rows(&ctx)));
    }

    header.push_str(&format!(
        "; load average {} at the end",
        machine::load_average()
    ));
    if ctx.sizes.quick {
        header.push_str("; **BENCH_QUICK: reduced sizes, not the targets' sizes**");
    }
    report::print(&header, &rows);
    rt.block_on(async move { ctx.sim.shutdown().await })?;
    Ok(())
}
