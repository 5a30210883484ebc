//! Sections 1 and 2: end-to-end ingest by the real worker (`backfill run`, its own process, the
//! simulator over loopback HTTP as Polygon) against a plain bulk load of the identical rows into
//! an identical empty table: binary `COPY` on PostgreSQL, multi-row `INSERT`s on SQLite (which has
//! no COPY).

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

use crate::db::{checkpoint, TempPg};
use crate::report::{per_second, thousands, Row};
use crate::requests::Recorded;
use crate::worker::{self, RunOutcome};
use crate::{Ctx, Workload};

/// Rows per COPY or per transaction of the reference loads, as the worker's pages.
const PAGE: usize = 50_000;
/// The ratio of the worker's rate to the reference's that is the target.
const TARGET_RATIO: f64 = 0.7;

/// Section 1: PostgreSQL. Returns the table's rows and, for the request count, what the
/// simulator served to the worker in the run reported.
pub(crate) async fn postgres(ctx: &Ctx) -> (Vec<Row>, Option<Recorded>) {
    let w = match ctx.crypto_workload() {
        Ok(w) => w,
        Err(e) => return (vec![Row::failed("End-to-end ingest, PostgreSQL", &e)], None),
    };
    let name = format!(
        "End-to-end ingest, PostgreSQL: `backfill run` (concurrency {}), {}, from the \
         simulator over loopback HTTP",
        ctx.sizes.concurrency, w.label
    );
    let mut runs = Vec::new();
    for _ in 0..ctx.sizes.ingest_runs {
        match postgres_measure(ctx, w).await {
            Ok(m) => runs.push(m),
            Err(e) => return (vec![Row::failed(name, &e)], None),
        }
    }
    let (m, ratios) = median_run(runs, PgMeasured::ratio);
    let rows = vec![
        rate_row(
            name,
            &m.run,
            m.stored_in_table,
            format!(
                "{} candles/s: binary `COPY ... FROM STDIN` of the identical rows into \
                 an empty `(LIKE candles INCLUDING ALL)` table, fresh database, one \
                 COPY per {} rows, encoding included ({:.2} s)",
                per_second(m.reference_rows, m.reference_secs),
                thousands(PAGE as u64),
                m.reference_secs
            ),
            m.ratio(),
            &ratios,
        ),
        count_row("PostgreSQL", w, &m.run, m.stored_in_table),
    ];
    (rows, Some(m.recorded))
}

/// Section 2: SQLite.
pub(crate) async fn sqlite(ctx: &Ctx) -> Vec<Row> {
    let w = match ctx.crypto_workload() {
        Ok(w) => w,
        Err(e) => return vec![Row::failed("End-to-end ingest, SQLite", &e)],
    };
    let name = format!(
        "End-to-end ingest, SQLite: `backfill run` (concurrency {}), {}, from the simulator \
         over loopback HTTP, into a fresh file",
        ctx.sizes.concurrency, w.label
    );
    let mut runs = Vec::new();
    for _ in 0..ctx.sizes.ingest_runs {
        match sqlite_measure(ctx, w).await {
            Ok(m) => runs.push(m),
            Err(e) => return vec![Row::failed(name, &e)],
        }
    }
    let (m, ratios) = median_run(runs, SqliteMeasured::ratio);
    let others: Vec<String> = m
        .candidates
        .iter()
        .filter(|(size, _)| *size != m.best_size)
        .map(|(size, secs)| {
            format!(
                "{} rows: {}/s",
                thousands(*size as u64),
                per_second(m.reference_rows, *secs)
            )
        })
        .collect();
    vec![
        rate_row(
            name,
            &m.run,
            m.stored_in_table,
            format!(
                "{} candles/s: SQLite has no COPY; the fastest plain bulk load of the \
                 identical rows into an identical empty table (same DDL and pragmas), \
                 fresh file: prepared multi-row `INSERT`, {} rows a statement, one \
                 transaction per {} rows ({:.2} s; {})",
                per_second(m.reference_rows, m.best_secs),
                thousands(m.best_size as u64),
                thousands(PAGE as u64),
                m.best_secs,
                others.join(", ")
            ),
            m.ratio(),
            &ratios,
        ),
        count_row("SQLite", w, &m.run, m.stored_in_table),
    ]
}

/// The run whose ratio is the median (the lower one of an even count), and every run's ratio in
/// the order they ran.
fn median_run<M>(mut runs: Vec<M>, ratio: impl Fn(&M) -> f64) -> (M, Vec<f64>) {
    let ratios: Vec<f64> = runs.iter().map(ratio).collect();
    let mut order: Vec<usize> = (0..ratios.len()).collect();
    order.sort_by(|a, b| ratios[*a].total_cmp(&ratios[*b]));
    (runs.swap_remove(order[(ratios.len() - 1) / 2]), ratios)
}

/// The worker's rate of `stored` candles in `wall_secs` over the reference's rate.
fn ratio(stored: u64, wall_secs: f64, reference_rows: u64, reference_secs: f64) -> f64 {
    (stored as f64 / wall_secs) / (reference_rows as f64 / reference_secs)
}

/// The rate row: the worker's candles per second of wall time against the reference's, in the
/// run whose ratio is the median of `ratios` (every run's worker and reference measured anew).
fn rate_row(
    name: String,
    run: &RunOutcome,
    stored: u64,
    reference: String,
    ratio: f64,
    ratios: &[f64],
) -> Row {
    let spread = if ratios.len() > 1 {
        let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        format!(
            "; the median of {} runs, each against its own reference: {}",
            ratios.len(),
            listed.join(", ")
        )
    } else {
        String::new()
    };
    Row::new(
        name,
        format!(
            "{} candles/s ({} candles in {:.2} s: the process's wall time, migrations applied \
             before; the job's own clock: {})",
            per_second(stored, run.wall_secs),
            thousands(stored),
            run.wall_secs,
            run.job_secs.map_or("-".to_owned(), |s| format!("{s:.2} s"))
        ),
        reference,
        format!("{ratio:.2} (target >= {TARGET_RATIO:.2}){spread}"),
        ratio >= TARGET_RATIO,
    )
}

/// The check that the worker stored exactly what the simulator serves.
fn count_row(backend: &str, w: &Workload, run: &RunOutcome, stored: u64) -> Row {
    let expected = w.expected_total();
    Row::new(
        format!("Candles stored by the {backend} run above = the simulator's expected candles"),
        format!(
            "{} rows in `candles` ({} in the run's summary)",
            thousands(stored),
            thousands(run.candles_stored)
        ),
        format!("{} (`Simulator::expected_candles`)", thousands(expected)),
        "equal".to_owned(),
        stored == expected && run.candles_stored == expected,
    )
}

struct PgMeasured {
    run: RunOutcome,
    stored_in_table: u64,
    reference_rows: u64,
    reference_secs: f64,
    recorded: Recorded,
}

impl PgMeasured {
    fn ratio(&self) -> f64 {
        ratio(
            self.stored_in_table,
            self.run.wall_secs,
            self.reference_rows,
            self.reference_secs,
        )
    }
}

/// One row of `candles`, as the worker stored it.
#[derive(Debug, sqlx::FromRow)]
struct PgCandle {
    ts: DateTime<Utc>,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    vwap: Option<f64>,
    trades: Option<i64>,
    series_id: i32,
}

async fn postgres_measure(ctx: &Ctx, w: &Workload) -> anyhow::Result<PgMeasured> {
    let dir = tempfile::tempdir()?;
    let (run, stats, rows) = worker::run_on_fresh_pg(
        ctx,
        w,
        "ingest_worker",
        dir.path(),
        async |conn: &mut PgConnection| {
            let rows: Vec<PgCandle> = sqlx::query_as(
                "SELECT ts, open, high, low, close, volume, vwap, trades, series_id FROM candles \
                 ORDER BY series_id, ts",
            )
            .fetch_all(conn)
            .await?;
            Ok(rows)
        },
    )
    .await?;

    let db = TempPg::create(&ctx.admin_url, "ingest_copy").await?;
    let reference = pg_copy(&db, &rows, dir.path()).await;
    db.drop_db().await?;
    let reference_secs = reference?;
    Ok(PgMeasured {
        run,
        stored_in_table: rows.len() as u64,
        reference_rows: rows.len() as u64,
        reference_secs,
        recorded: Recorded {
            label: w.label.clone(),
            symbols: w.symbols.clone(),
            base_bars: w.expected.clone(),
            stats,
        },
    })
}

/// Binary COPY of `rows` into an empty copy of the candles table in `db`, one COPY (and
/// transaction) per page of one series; the encoding is inside the timing.
async fn pg_copy(db: &TempPg, rows: &[PgCandle], dir: &std::path::Path) -> anyhow::Result<f64> {
    worker::migrate(&db.url, dir).await?;
    let mut conn = PgConnection::connect_with(&db.options).await?;
    conn.execute("CREATE TABLE candles_copy (LIKE candles INCLUDING ALL)")
        .await?;
    checkpoint(&db.options).await;
    let statement = "COPY candles_copy (ts, open, high, low, close, volume, vwap, trades, \
                     series_id) FROM STDIN (FORMAT binary)";
    let began = Instant::now();
    for series in rows.chunk_by(|a, b| a.series_id == b.series_id) {
        for page in series.chunks(PAGE) {
            let bytes = copy_binary(page);
            let copy = async {
                let mut copy = conn.copy_in_raw(statement).await?;
                copy.send(bytes).await?;
                copy.finish().await
            };
            tokio::time::timeout(Duration::from_secs(120), copy)
                .await
                .context("a COPY of one page took more than two minutes")??;
        }
    }
    let secs = began.elapsed().as_secs_f64();
    let copied: i64 = sqlx::query_scalar("SELECT count(*) FROM candles_copy")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    ensure!(
        copied as usize == rows.len(),
        "COPY stored {copied} rows of {}",
        rows.len()
    );
    Ok(secs)
}

/// PostgreSQL's binary COPY encoding of rows of the candles table.
fn copy_binary(page: &[PgCandle]) -> Vec<u8> {
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
        let micros = c.ts.timestamp_micros() - PG_EPOCH_MICROS;
        field(&mut buf, Some(micros.to_be_bytes()));
        for v in [c.open, c.high, c.low, c.close, c.volume] {
            field(&mut buf, Some(v.to_be_bytes()));
        }
        field(&mut buf, c.vwap.map(f64::to_be_bytes));
        field(&mut buf, c.trades.map(i64::to_be_bytes));
        buf.extend_from_slice(&4i32.to_be_bytes());
        buf.extend_from_slice(&c.series_id.to_be_bytes());
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

struct SqliteMeasured {
    run: RunOutcome,
    stored_in_table: u64,
    reference_rows: u64,
    /// Seconds taken by each statement size tried.
    candidates: Vec<(usize, f64)>,
    best_size: usize,
    best_secs: f64,
}

impl SqliteMeasured {
    fn ratio(&self) -> f64 {
        ratio(
            self.stored_in_table,
            self.run.wall_secs,
            self.reference_rows,
            self.best_secs,
        )
    }
}

/// One row of SQLite's `candles`, as the worker stored it.
#[derive(Debug, sqlx::FromRow)]
struct SqliteCandle {
    series_id: i64,
    ts: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    vwap: Option<f64>,
    trades: Option<i64>,
}

/// Rows per multi-row `INSERT` statement tried for the reference; the largest is SQLite's limit
/// of 32,766 parameters divided by the 9 columns.
const STATEMENT_ROWS: [usize; 3] = [100, 1_000, 3_640];

async fn sqlite_measure(ctx: &Ctx, w: &Workload) -> anyhow::Result<SqliteMeasured> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("worker.db");
    let url = format!("sqlite://{}", path.display());
    worker::migrate(&url, dir.path()).await?;
    ctx.sim.reset_stats();
    let run = worker::run(
        &url,
        ctx.sim.base_url(),
        &w.symbols,
        "1m",
        (&w.from, &w.to),
        ctx.sizes.concurrency,
        dir.path(),
    )
    .await?;
    let mut conn = SqliteConnection::connect_with(&sqlite_options(&path)?).await?;
    let rows: Vec<SqliteCandle> = sqlx::query_as(
        "SELECT series_id, ts, open, high, low, close, volume, vwap, trades FROM candles \
         ORDER BY series_id, ts",
    )
    .fetch_all(&mut conn)
    .await?;
    let ddl: String = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'candles'",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    std::fs::remove_file(&path).ok();
    let ddl = ddl.replacen("CREATE TABLE candles", "CREATE TABLE candles_copy", 1);
    ensure!(
        ddl.starts_with("CREATE TABLE candles_copy"),
        "unexpected DDL of candles: {ddl}"
    );

    let mut candidates = Vec::new();
    for size in STATEMENT_ROWS {
        let file = dir.path().join(format!("reference_{size}.db"));
        let secs = sqlite_insert(&file, &ddl, &rows, size).await?;
        std::fs::remove_file(&file).ok();
        candidates.push((size, secs));
    }
    let (best_size, best_secs) = candidates
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, f64::NAN));
    Ok(SqliteMeasured {
        run,
        stored_in_table: rows.len() as u64,
        reference_rows: rows.len() as u64,
        candidates,
        best_size,
        best_secs,
    })
}

/// The storage's connection settings: WAL, `synchronous = NORMAL`, foreign keys, 64 MiB cache.
fn sqlite_options(path: &std::path::Path) -> anyhow::Result<SqliteConnectOptions> {
    Ok(
        SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("cache_size", "-65536"),
    )
}

/// `INSERT INTO candles_copy ... VALUES (?, ...), ...` of `rows` rows, anonymous parameters.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO candles_copy (series_id, ts, open, high, low, close, volume, vwap, trades) \
         VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
    sql
}

/// Loads `rows` into an empty `candles_copy` in a fresh file: one transaction per page of one
/// series, multi-row INSERTs of `size` rows (then 100, 10, 1 for the rest). Returns the seconds.
async fn sqlite_insert(
    file: &std::path::Path,
    ddl: &str,
    rows: &[SqliteCandle],
    size: usize,
) -> anyhow::Result<f64> {
    let mut conn = SqliteConnection::connect_with(&sqlite_options(file)?).await?;
    conn.execute(ddl).await?;
    let mut sizes = vec![size];
    sizes.extend([100, 10, 1].into_iter().filter(|s| *s < size));
    let statements: Vec<String> = sizes.iter().map(|s| insert_sql(*s)).collect();
    let began = Instant::now();
    for series in rows.chunk_by(|a, b| a.series_id == b.series_id) {
        for page in series.chunks(PAGE) {
            let mut tx = conn.begin().await?;
            let mut rest = page;
            for (size, sql) in sizes.iter().zip(&statements) {
                let mut chunks = rest.chunks_exact(*size);
                for chunk in &mut chunks {
                    let mut q = sqlx::query(sql.as_str());
                    for c in chunk {
                        q = q
                            .bind(c.series_id)
                            .bind(c.ts)
                            .bind(c.open)
                            .bind(c.high)
                            .bind(c.low)
                            .bind(c.close)
                            .bind(c.volume)
                            .bind(c.vwap)
                            .bind(c.trades);
                    }
                    q.execute(&mut *tx).await?;
                }
                rest = chunks.remainder();
            }
            tx.commit().await?;
        }
    }
    let secs = began.elapsed().as_secs_f64();
    let copied: i64 = sqlx::query_scalar("SELECT count(*) FROM candles_copy")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    ensure!(
        copied as usize == rows.len(),
        "the INSERTs stored {copied} rows of {}",
        rows.len()
    );
    Ok(secs)
}
