//! Section 9 (`export`): `backfill export` of a stored series to Parquet and to CSV (the real
//! binary, its own process, one file each, and Parquet partitions by symbol and month) against
//! PostgreSQL's own `COPY (SELECT ...) TO STDOUT` of the same rows as CSV, read to the end by
//! this process. The rows are the ingest sections' workload, stored by `backfill run` first.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use futures::TryStreamExt;
use sqlx::PgConnection;

use crate::report::{per_second, thousands, Row};
use crate::{worker, Ctx};

/// The target ratio of the export's rows per second (process wall time) to COPY's.
const TARGET_RATIO: f64 = 0.5;

/// The same rows as an export, in the same order: every symbol's minutes, symbol after symbol.
const COPY: &str = "COPY (SELECT s.symbol, s.timeframe, c.ts, c.open, c.high, c.low, c.close, \
                    c.volume, c.vwap, c.trades FROM candles c JOIN series s ON s.id = c.series_id \
                    WHERE s.timeframe = '1m' AND s.adjusted ORDER BY s.symbol, c.ts) \
                    TO STDOUT (FORMAT csv, HEADER)";

/// One timed export (or COPY).
#[derive(Debug)]
struct Timed {
    rows: u64,
    secs: f64,
    bytes: u64,
}

#[derive(Debug)]
struct Measured {
    copy: Timed,
    exports: Vec<(&'static str, Timed)>,
}

/// The section's rows.
pub(crate) async fn rows(ctx: &Ctx) -> Vec<Row> {
    let w = match ctx.crypto_workload() {
        Ok(w) => w,
        Err(e) => return vec![Row::failed("Export", &e)],
    };
    let name = |what: &str| {
        format!(
            "Export, PostgreSQL: `backfill export {what}` of {} stored by `backfill run`",
            w.label
        )
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return vec![Row::failed(name("..."), &e.into())],
    };
    let symbols = w.symbols.clone();
    let range = (w.from.clone(), w.to.clone());
    let out = dir.path().to_path_buf();
    let admin_url = ctx.admin_url.clone();
    let measured = worker::run_on_fresh_pg(
        ctx,
        w,
        "export",
        dir.path(),
        async move |conn: &mut PgConnection| {
            let (name,): (String,) = sqlx::query_as("SELECT current_database()")
                .fetch_one(&mut *conn)
                .await?;
            let url = crate::db::with_database(&admin_url, &name);
            // Once untimed, so that every measurement reads from a warm cache.
            copy_out(conn).await?;
            let copy = copy_out(conn).await?;
            let mut exports = Vec::new();
            for (what, format, target) in [
                (
                    "--format parquet --out all.parquet",
                    "parquet",
                    "all.parquet",
                ),
                ("--format csv --out all.csv", "csv", "all.csv"),
                (
                    "--format parquet --out DIR (partitions)",
                    "parquet",
                    "parts",
                ),
            ] {
                let timed = export(&url, &symbols, &range, format, &out.join(target))?;
                exports.push((what, timed));
            }
            Ok(Measured { copy, exports })
        },
    )
    .await;
    let (_, _, m) = match measured {
        Ok(m) => m,
        Err(e) => return vec![Row::failed(name("..."), &e)],
    };
    let reference = format!(
        "{} rows/s: `COPY (SELECT ... JOIN series ... ORDER BY symbol, ts) TO STDOUT (FORMAT \
         csv, HEADER)` of the same rows, read to the end ({:.2} s, {} MB)",
        per_second(m.copy.rows, m.copy.secs),
        m.copy.secs,
        thousands(m.copy.bytes / 1_000_000)
    );
    m.exports
        .iter()
        .map(|(what, t)| {
            let ratio = (t.rows as f64 / t.secs) / (m.copy.rows as f64 / m.copy.secs);
            Row::new(
                name(what),
                format!(
                    "{} rows/s ({} rows in {:.2} s, the process's wall time; {} MB written)",
                    per_second(t.rows, t.secs),
                    thousands(t.rows),
                    t.secs,
                    thousands(t.bytes / 1_000_000)
                ),
                reference.clone(),
                format!("{ratio:.2}x COPY (target >= {TARGET_RATIO}x)"),
                ratio >= TARGET_RATIO && t.rows == m.copy.rows,
            )
        })
        .collect()
}

/// PostgreSQL's own CSV of the rows, streamed to this process and counted.
async fn copy_out(conn: &mut PgConnection) -> anyhow::Result<Timed> {
    let started = Instant::now();
    let mut stream = conn.copy_out_raw(COPY).await?;
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = stream.try_next().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok(Timed {
        rows: lines.saturating_sub(1),
        secs: started.elapsed().as_secs_f64(),
        bytes,
    })
}

/// `backfill export` of the symbols, timed from spawn to exit; its rows from what it prints.
fn export(
    url: &str,
    symbols: &[String],
    (from, to): &(String, String),
    format: &str,
    out: &Path,
) -> anyhow::Result<Timed> {
    let mut cmd = Command::new(worker::BIN);
    cmd.arg("export")
        .args(symbols)
        .args([
            "-t", "1m", "--from", from, "--to", to, "--format", format, "--out",
        ])
        .arg(out)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn");
    let started = Instant::now();
    let done = cmd.output().context("starting backfill export")?;
    let secs = started.elapsed().as_secs_f64();
    if !done.status.success() {
        bail!(
            "backfill export failed: {}",
            String::from_utf8_lossy(&done.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&done.stdout);
    let rows = stdout
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .context("backfill export printed no total")?;
    ensure!(rows > 0, "backfill export wrote no rows");
    Ok(Timed {
        rows,
        secs,
        bytes: size(out),
    })
}

/// The bytes of a file, or of every file under a directory.
fn size(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| size(&e.path()))
            .sum()
    } else {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }
}
