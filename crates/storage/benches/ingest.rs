//! Ingest benchmark (not a test): 2,000,000 one-minute candles (20 symbols x 100,000 bars) in
//! pages of 50,000 through `CandleStore::ingest_page`, first into empty tables and then again
//! (nothing changes), next to `COPY ... FROM STDIN` of the identical rows into an identical empty
//! table, measured in the same run; then the same ingest on SQLite.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p backfill-storage --bench ingest
//! ```
//!
//! Without DATABASE_URL only SQLite is measured. Each PostgreSQL measurement runs in a database of
//! its own, created for the run and dropped afterwards. `BENCH_SYMBOLS` and `BENCH_BARS` shrink the
//! data set for a quick look.
#![expect(clippy::print_stdout, reason = "a benchmark prints its results")]

use std::time::{Duration, Instant};

use backfill_domain::{BackfillMode, Candle, DateRange, JobSpec, Ohlcv, Symbol, Timeframe};
use backfill_storage::postgres::{PgIngestMethod, PgStorage};
use backfill_storage::sqlite::SqliteStorage;
use backfill_storage::{ClaimRequest, ClaimedTask, Fetched, IngestOutcome, Storage};
use chrono::{DateTime, TimeDelta, Utc};
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

const PAGE: usize = 50_000;
const LEASE: Duration = Duration::from_secs(3600);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start() -> DateTime<Utc> {
    "2020-01-01T00:00:00Z".parse().unwrap_or_default()
}

/// Deterministic pseudo-random candles: a random walk per symbol, fractional volumes, a vwap on
/// most bars and a trade count on all but a few.
fn dataset(symbols: usize, bars: usize) -> Result<Vec<(Symbol, Vec<Candle>)>, BoxError> {
    let tf = Timeframe::parse("1m")?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(symbols);
    for s in 0..symbols {
        let symbol = Symbol::parse(&format!("SYM{s:02}"))?;
        let mut price = 50.0 + 10.0 * s as f64;
        let mut candles = Vec::with_capacity(bars);
        for i in 0..bars {
            let open = price;
            price = (price * (1.0 + (rand() - 0.5) * 0.002)).max(0.01);
            let close = price;
            let high = open.max(close) * (1.0 + rand() * 0.001);
            let low = open.min(close) * (1.0 - rand() * 0.001);
            let values = Ohlcv {
                open,
                high,
                low,
                close,
                volume: (rand() * 100_000.0 * 100.0).round() / 100.0,
                vwap: (i % 17 != 0).then_some((open + close) / 2.0),
                trades: (i % 29 != 0).then_some((rand() * 500.0) as u64),
            };
            let ts = start() + TimeDelta::minutes(i as i64);
            candles.push(Candle::new(symbol.clone(), tf, ts, values)?);
        }
        out.push((symbol, candles));
    }
    Ok(out)
}

fn spec(data: &[(Symbol, Vec<Candle>)]) -> Result<JobSpec, BoxError> {
    let bars = data.first().map_or(0, |(_, c)| c.len()) as i64;
    let range = DateRange::from_instants(start(), start() + TimeDelta::minutes(bars))?;
    Ok(JobSpec::new(
        data.iter().map(|(s, _)| s.clone()).collect(),
        Timeframe::parse("1m")?,
        range,
        true,
        BackfillMode::Full,
    )?)
}

/// Creates a job for the data set and claims all its tasks, in data set order.
async fn claim(
    s: &dyn Storage,
    data: &[(Symbol, Vec<Candle>)],
) -> Result<Vec<ClaimedTask>, BoxError> {
    s.create_job(&spec(data)?, None).await?;
    let mut claimed = s
        .claim_tasks(&ClaimRequest {
            worker_id: "bench".to_owned(),
            max: data.len() as u32,
            lease_ttl: LEASE,
            only_job: None,
            max_attempts: 5,
        })
        .await?;
    claimed.sort_by_key(|c| {
        data.iter()
            .position(|(sym, _)| Some(sym) == c.task.symbol())
            .unwrap_or(usize::MAX)
    });
    Ok(claimed)
}

/// Ingests the whole data set page by page, one page after the other. Returns the seconds taken
/// and the summed outcome.
async fn ingest_all(
    s: &dyn Storage,
    claimed: &[ClaimedTask],
    data: &[(Symbol, Vec<Candle>)],
) -> Result<(f64, IngestOutcome), BoxError> {
    let mut total = IngestOutcome::default();
    let began = Instant::now();
    for (c, (_, candles)) in claimed.iter().zip(data) {
        for page in candles.chunks(PAGE) {
            let checkpoint = page.last().map_or_else(start, Candle::ts);
            let o = s
                .ingest_page(&c.lease, page, checkpoint, Fetched::default())
                .await?;
            total.inserted += o.inserted;
            total.updated += o.updated;
            total.unchanged += o.unchanged;
        }
    }
    Ok((began.elapsed().as_secs_f64(), total))
}

fn rate(n: usize, secs: f64) -> String {
    format!("{:>10.0} candles/s ({secs:.2} s)", n as f64 / secs)
}

/// A database created for one measurement and dropped afterwards.
struct TempDb {
    admin: PgConnectOptions,
    name: String,
    options: PgConnectOptions,
}

impl TempDb {
    async fn create(admin_url: &str, tag: &str) -> Result<Self, BoxError> {
        let name = format!("storage_ingest_bench_{tag}_{}", std::process::id());
        let options = PgConnectOptions::from_str(admin_url)?;
        let mut admin = PgConnection::connect_with(&options).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        Ok(Self {
            options: options.clone().database(&name),
            admin: options,
            name,
        })
    }

    async fn drop_db(self) -> Result<(), BoxError> {
        let mut admin = PgConnection::connect_with(&self.admin).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await?;
        Ok(())
    }
}

async fn checkpoint(options: &PgConnectOptions) {
    // Start every measurement with clean shared buffers and an empty WAL backlog.
    if let Ok(mut conn) = PgConnection::connect_with(options).await {
        let _ = conn.execute("CHECKPOINT").await;
    }
}

/// `ingest_page` on a fresh database: first ingest, then the same rows again.
async fn pg_ingest(
    admin_url: &str,
    data: &[(Symbol, Vec<Candle>)],
    method: PgIngestMethod,
    tag: &str,
) -> Result<PgRun, BoxError> {
    let n: usize = data.iter().map(|(_, c)| c.len()).sum();
    let db = TempDb::create(admin_url, tag).await?;
    let s = PgStorage::connect_with(db.options.clone())
        .await?
        .with_ingest_method(method);
    s.migrate().await?;
    let claimed = claim(&s, data).await?;
    checkpoint(&db.options).await;
    let (first, o1) = ingest_all(&s, &claimed, data).await?;
    assert_eq!(o1.inserted as usize, n, "first ingest inserts everything");
    checkpoint(&db.options).await;
    let (again, o2) = ingest_all(&s, &claimed, data).await?;
    assert_eq!(o2.unchanged as usize, n, "second ingest changes nothing");
    // What autovacuum does to a freshly loaded table: set hint bits and the visibility map.
    sqlx::query("VACUUM candles").execute(s.pool()).await?;
    checkpoint(&db.options).await;
    let (vacuumed, o3) = ingest_all(&s, &claimed, data).await?;
    assert_eq!(o3.unchanged as usize, n, "third ingest changes nothing");
    let size: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('candles')")
        .fetch_one(s.pool())
        .await?;
    s.pool().close().await;
    db.drop_db().await?;
    Ok(PgRun {
        first,
        again,
        vacuumed,
        bytes: u64::try_from(size).unwrap_or(0),
    })
}

/// Seconds taken by one PostgreSQL ingest run.
#[derive(Debug, Clone, Copy)]
struct PgRun {
    first: f64,
    again: f64,
    vacuumed: f64,
    bytes: u64,
}

/// PostgreSQL's binary COPY encoding of the candles table's rows.
fn copy_binary(page: &[Candle], series_id: i32) -> Vec<u8> {
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
    for c in page {
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

/// PostgreSQL's text COPY encoding of the candles table's rows.
fn copy_text(page: &[Candle], series_id: i32) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(page.len() * 140);
    for c in page {
        let _ = write!(
            s,
            "{}\t{}\t{}\t{}\t{}\t{}\t",
            c.ts().format("%Y-%m-%d %H:%M:%S%.3f+00"),
            c.open(),
            c.high(),
            c.low(),
            c.close(),
            c.volume()
        );
        match c.vwap() {
            Some(v) => {
                let _ = write!(s, "{v}\t");
            }
            None => s.push_str("\\N\t"),
        }
        match c.trades() {
            Some(n) => {
                let _ = write!(s, "{n}\t");
            }
            None => s.push_str("\\N\t"),
        }
        let _ = writeln!(s, "{series_id}");
    }
    s.into_bytes()
}

/// `COPY candles_copy FROM STDIN` of the data set into an empty copy of the candles table, one
/// COPY (and transaction) per page like the ingest; encoding included in the time.
async fn pg_copy(
    admin_url: &str,
    data: &[(Symbol, Vec<Candle>)],
    binary: bool,
) -> Result<f64, BoxError> {
    let db = TempDb::create(admin_url, if binary { "copyb" } else { "copyt" }).await?;
    let s = PgStorage::connect_with(db.options.clone()).await?;
    s.migrate().await?;
    let mut conn = PgConnection::connect_with(&db.options).await?;
    conn.execute("CREATE TABLE candles_copy (LIKE candles INCLUDING ALL)")
        .await?;
    checkpoint(&db.options).await;
    let statement = if binary {
        "COPY candles_copy (ts, open, high, low, close, volume, vwap, trades, series_id) \
         FROM STDIN (FORMAT binary)"
    } else {
        "COPY candles_copy (ts, open, high, low, close, volume, vwap, trades, series_id) \
         FROM STDIN"
    };
    let began = Instant::now();
    for (i, (_, candles)) in data.iter().enumerate() {
        for page in candles.chunks(PAGE) {
            let bytes = if binary {
                copy_binary(page, i as i32 + 1)
            } else {
                copy_text(page, i as i32 + 1)
            };
            let page = async {
                let mut copy = conn.copy_in_raw(statement).await?;
                copy.send(bytes).await?;
                copy.finish().await
            };
            tokio::time::timeout(Duration::from_secs(120), page)
                .await
                .map_err(|_| "a COPY of one page took more than two minutes")??;
        }
    }
    let secs = began.elapsed().as_secs_f64();
    conn.close().await?;
    s.pool().close().await;
    db.drop_db().await?;
    Ok(secs)
}

async fn sqlite_ingest(data: &[(Symbol, Vec<Candle>)]) -> Result<(f64, f64, u64), BoxError> {
    let n: usize = data.iter().map(|(_, c)| c.len()).sum();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let s = SqliteStorage::open(&path).await?;
    let claimed = claim(&s, data).await?;
    let (first, o1) = ingest_all(&s, &claimed, data).await?;
    assert_eq!(o1.inserted as usize, n, "first ingest inserts everything");
    let (again, o2) = ingest_all(&s, &claimed, data).await?;
    assert_eq!(o2.unchanged as usize, n, "second ingest changes nothing");
    s.pool().close().await;
    let size = std::fs::metadata(&path)?.len();
    Ok((first, again, size))
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn line(label: &str, n: usize, secs: &[f64]) {
    let all: Vec<String> = secs.iter().map(|s| format!("{s:.2}")).collect();
    println!(
        "{label:<44} {}  [runs: {} s]",
        rate(n, median(secs.to_vec())),
        all.join(", ")
    );
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let symbols = env_usize("BENCH_SYMBOLS", 20);
    let bars = env_usize("BENCH_BARS", 100_000);
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let data = dataset(symbols, bars)?;
    let n = symbols * bars;
    println!(
        "ingest benchmark: {symbols} symbols x {bars} one-minute bars = {n} candles, \
         pages of {PAGE}, median of {runs} runs"
    );

    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let (mut copy_b, mut copy_t, mut diff) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                copy_b.push(pg_copy(&url, &data, true).await?);
                diff.push(pg_ingest(&url, &data, PgIngestMethod::Diff, "diff").await?);
                copy_t.push(pg_copy(&url, &data, false).await?);
            }
            let copy = median(copy_b.clone()).min(median(copy_t.clone()));
            line("postgres COPY FROM STDIN (binary)", n, &copy_b);
            line("postgres COPY FROM STDIN (text)", n, &copy_t);
            let first: Vec<f64> = diff.iter().map(|r| r.first).collect();
            let again: Vec<f64> = diff.iter().map(|r| r.again).collect();
            let vacuumed: Vec<f64> = diff.iter().map(|r| r.vacuumed).collect();
            line("postgres ingest_page (diff + COPY), first", n, &first);
            line("postgres ingest_page (diff + COPY), again", n, &again);
            line("  again after VACUUM", n, &vacuumed);
            println!(
                "  ratio to the faster COPY: {:.2} (first), {:.2} (again), {:.2} (after VACUUM)",
                copy / median(first),
                copy / median(again),
                copy / median(vacuumed)
            );
            println!(
                "  candles table with its index: {}",
                mib(diff.first().map_or(0, |r| r.bytes))
            );
            if std::env::var("BENCH_ALL").is_ok() {
                for (method, name) in [
                    (PgIngestMethod::Unnest, "UNNEST upsert"),
                    (PgIngestMethod::CopyStaging, "COPY staging"),
                ] {
                    let tag = format!("{method:?}").to_lowercase();
                    let r = pg_ingest(&url, &data, method, &tag).await?;
                    line(
                        &format!("postgres ingest_page ({name}), first"),
                        n,
                        &[r.first],
                    );
                    line(
                        &format!("postgres ingest_page ({name}), again"),
                        n,
                        &[r.again],
                    );
                    line("  again after VACUUM", n, &[r.vacuumed]);
                }
            }
        }
        _ => println!("postgres: skipped (set DATABASE_URL=postgres://...)"),
    }

    let (mut first, mut again, mut size) = (Vec::new(), Vec::new(), 0);
    for _ in 0..runs {
        let (f, a, s) = sqlite_ingest(&data).await?;
        first.push(f);
        again.push(a);
        size = s;
    }
    line("sqlite ingest_page, first", n, &first);
    line("sqlite ingest_page, again", n, &again);
    println!("  database file: {}", mib(size));
    Ok(())
}
