use std::sync::LazyLock;

use async_trait::async_trait;
use backfill_domain::{Candle, DateRange, JobStatus, Symbol, Timeframe};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::queue::check_lease;
use super::{dt, ms, now_ms, SqliteStorage};
use crate::error::{Error, Result};
use crate::page::{candle_page, check_limit, prepare_page, prepare_rows};
use crate::rows::{count, non_negative, parse_job_status, CandleValues};
use crate::traits::CandleStore;
use crate::types::{
    CandlePage, CandleQuery, DayProgress, Fetched, IngestOutcome, Lease, SourceFile, StoredFile,
};

/// Statement sizes, in rows, for multi-row INSERTs: a page goes in as few executions as
/// possible. The largest uses 32,760 of the 32,766 parameters SQLite allows (about 6 % faster
/// than 1,000 rows a statement); the rest of a page is written in powers of two, so in at most
/// 11 more executions (a page of 50,000 rows: 13 of 3,640, then 2,048, 512, 64, 32, 16 and 8).
/// Every size is prepared once, on the one write connection. Parameters are anonymous (`?`):
/// SQLite looks numbered ones up by a linear scan, which makes large statements slow.
const CHUNKS: [usize; 13] = [3640, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1];

/// `INSERT` of `rows` candles that updates only rows whose values differ.
fn upsert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO candles (series_id, ts, open, high, low, close, volume, vwap, trades) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
    // A row without a vwap (Flat Files have none) keeps the stored one.
    sql.push_str(
        " ON CONFLICT (series_id, ts) DO UPDATE SET open = excluded.open, high = excluded.high, \
         low = excluded.low, close = excluded.close, volume = excluded.volume, \
         vwap = coalesce(excluded.vwap, vwap), trades = excluded.trades \
         WHERE (open, high, low, close, volume, vwap, trades) IS NOT \
         (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, \
          coalesce(excluded.vwap, vwap), excluded.trades)",
    );
    sql
}

static UPSERTS: LazyLock<[String; 13]> = LazyLock::new(|| CHUNKS.map(upsert_sql));

#[async_trait]
impl CandleStore for SqliteStorage {
    async fn ingest_page(
        &self,
        lease: &Lease,
        candles: &[Candle],
        checkpoint: DateTime<Utc>,
        fetched: Fetched,
    ) -> Result<IngestOutcome> {
        let mut w = self.page_write_tx().await?;
        let held = check_lease(&mut w.tx, lease).await?;
        let (Some(symbol), Some(series_id)) = (held.symbol.as_deref(), held.series_id) else {
            return Err(Error::InvalidInput(format!(
                "task {} is a day task: its rows go through ingest_rows",
                lease.task_id
            )));
        };
        let page = prepare_page(candles, symbol, &held.timeframe)?;
        let stored = page.len() as u64;
        let (inserted, updated) = write_groups(&mut w.tx, &[(series_id, page)]).await?;
        sqlx::query(
            "UPDATE tasks SET checkpoint = max(coalesce(checkpoint, ?2), ?2), \
             candles_fetched = candles_fetched + ?3, candles_stored = candles_stored + ?4, \
             pages = pages + 1, requests = requests + ?5, bytes = bytes + ?6, updated_at = ?7 \
             WHERE id = ?1",
        )
        .bind(lease.task_id.0)
        .bind(ms(checkpoint))
        .bind(i64::try_from(candles.len()).unwrap_or(i64::MAX))
        .bind(i64::try_from(inserted + updated).unwrap_or(i64::MAX))
        .bind(i64::from(fetched.requests))
        .bind(i64::try_from(fetched.bytes).unwrap_or(i64::MAX))
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        self.request_checkpoint();
        Ok(IngestOutcome {
            inserted,
            updated,
            unchanged: stored.saturating_sub(inserted + updated),
            job_cancelled: parse_job_status(&held.job_status)? == JobStatus::Cancelled,
        })
    }

    async fn ingest_rows(
        &self,
        lease: &Lease,
        candles: &[Candle],
        progress: DayProgress,
    ) -> Result<IngestOutcome> {
        // The series of new tickers are created first, in a write of their own, so that no id
        // is remembered from a transaction that might roll back.
        let (timeframe, adjusted): (String, bool) = sqlx::query_as(
            "SELECT j.timeframe, j.adjusted FROM tasks t JOIN jobs j ON j.id = t.job_id \
             WHERE t.id = ?1",
        )
        .bind(lease.task_id.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::LeaseLost {
            task_id: lease.task_id,
        })?;
        let groups = prepare_rows(candles, &timeframe)?;
        let symbols: Vec<&str> = groups.iter().map(|(s, _)| s.as_str()).collect();
        let ids = self.series_ids(&symbols, &timeframe, adjusted).await?;
        let mut w = self.page_write_tx().await?;
        let held = check_lease(&mut w.tx, lease).await?;
        if held.day.is_none() {
            return Err(Error::InvalidInput(format!(
                "task {} is a symbol task: its candles go through ingest_page",
                lease.task_id
            )));
        }
        let stored: u64 = groups.iter().map(|(_, g)| g.len() as u64).sum();
        let by_series: Vec<(i64, Vec<&Candle>)> = groups
            .into_iter()
            .zip(ids)
            .map(|((_, group), id)| (id, group))
            .collect();
        let (inserted, updated) = write_groups(&mut w.tx, &by_series).await?;
        sqlx::query(
            "UPDATE tasks SET rows_done = max(rows_done, ?2), \
             file_offset = max(file_offset, ?3), file_size = coalesce(?4, file_size), \
             file_etag = coalesce(?10, file_etag), \
             candles_fetched = candles_fetched + ?5, candles_stored = candles_stored + ?6, \
             pages = pages + 1, requests = requests + ?7, bytes = bytes + ?8, updated_at = ?9 \
             WHERE id = ?1",
        )
        .bind(lease.task_id.0)
        .bind(i64::try_from(progress.rows_done).unwrap_or(i64::MAX))
        .bind(i64::try_from(progress.file_offset).unwrap_or(i64::MAX))
        .bind(
            progress
                .file_size
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        )
        .bind(i64::try_from(candles.len()).unwrap_or(i64::MAX))
        .bind(i64::try_from(inserted + updated).unwrap_or(i64::MAX))
        .bind(i64::from(progress.fetched.requests))
        .bind(i64::try_from(progress.fetched.bytes).unwrap_or(i64::MAX))
        .bind(now_ms())
        .bind(progress.file_etag.as_deref())
        .execute(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        self.request_checkpoint();
        Ok(IngestOutcome {
            inserted,
            updated,
            unchanged: stored.saturating_sub(inserted + updated),
            job_cancelled: parse_job_status(&held.job_status)? == JobStatus::Cancelled,
        })
    }

    async fn stored_file(&self, key: &str) -> Result<Option<StoredFile>> {
        let row: Option<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT key, etag, size, rows, stored_at FROM source_files WHERE key = ?1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(key, etag, size, rows, stored_at)| {
            Ok(StoredFile {
                file: SourceFile {
                    key,
                    etag,
                    size: non_negative(size, "file size")?,
                    rows: non_negative(rows, "file rows")?,
                },
                stored_at: dt(stored_at)?,
            })
        })
        .transpose()
    }

    async fn candles(&self, query: &CandleQuery) -> Result<CandlePage> {
        check_limit(query.limit)?;
        let rows: Vec<CandleRow> = sqlx::query_as(
            "SELECT ts, open, high, low, close, volume, vwap, trades FROM candles \
             WHERE series_id = (SELECT id FROM series \
                 WHERE symbol = ?1 AND timeframe = ?2 AND adjusted = ?3) \
               AND ts >= ?4 AND ts <= ?5 AND ts > ?6 ORDER BY ts LIMIT ?7",
        )
        .bind(query.symbol.as_str())
        .bind(query.timeframe.to_string())
        .bind(query.adjusted)
        .bind(query.range.from_ms())
        .bind(query.range.to_ms())
        .bind(query.after.map_or(i64::MIN, ms))
        .bind(i64::from(query.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .into_iter()
            .map(|r| {
                Ok(CandleValues {
                    ts: dt(r.ts)?,
                    open: r.open,
                    high: r.high,
                    low: r.low,
                    close: r.close,
                    volume: r.volume,
                    vwap: r.vwap,
                    trades: r.trades,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        candle_page(rows, query)
    }

    async fn coverage(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        adjusted: bool,
    ) -> Result<Vec<DateRange>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT c.range_from, c.range_to FROM coverage c JOIN series s ON s.id = c.series_id \
             WHERE s.symbol = ?1 AND s.timeframe = ?2 AND s.adjusted = ?3 ORDER BY c.range_from",
        )
        .bind(symbol.as_str())
        .bind(timeframe.to_string())
        .bind(adjusted)
        .fetch_all(&self.pool)
        .await?;
        let ranges = rows
            .into_iter()
            .map(|(from, to)| Ok(DateRange::from_instants(dt(from)?, dt(to)?)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(backfill_domain::merge_intervals(ranges))
    }
}

#[derive(Debug, sqlx::FromRow)]
struct CandleRow {
    ts: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    vwap: Option<f64>,
    trades: Option<i64>,
}

/// How many candles of a series lie in `[from, to]` (milliseconds); a page's worth at most
/// is scanned in the primary key.
async fn count_in(
    conn: &mut SqliteConnection,
    series_id: i64,
    (from, to): (i64, i64),
) -> Result<i64> {
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM candles WHERE series_id = ?1 AND ts BETWEEN ?2 AND ?3",
    )
    .bind(series_id)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// Writes candles grouped by series (each group sorted by time without repeats) in multi-row
/// upserts of [`CHUNKS`] sizes; returns (inserted, updated). Inserted rows are told apart from
/// updated ones by counting the stored rows of each group's span before and after. An empty span
/// (a first ingest) needs no count, and a page that wrote nothing (a re-ingest) needs no second
/// one.
async fn write_groups(
    conn: &mut SqliteConnection,
    groups: &[(i64, Vec<&Candle>)],
) -> Result<(u64, u64)> {
    let spans: Vec<(i64, (i64, i64))> = groups
        .iter()
        .filter_map(|(id, g)| Some((*id, (ms(g.first()?.ts()), ms(g.last()?.ts())))))
        .collect();
    if spans.is_empty() {
        return Ok((0, 0));
    }
    let mut before = 0;
    for (id, span) in &spans {
        before += count_in(conn, *id, *span).await?;
    }
    let rows: Vec<(i64, &Candle)> = groups
        .iter()
        .flat_map(|(id, g)| g.iter().map(move |c| (*id, *c)))
        .collect();
    let mut written = 0;
    let mut rest = &rows[..];
    for (size, sql) in CHUNKS.iter().zip(UPSERTS.iter()) {
        let mut chunks = rest.chunks_exact(*size);
        for chunk in &mut chunks {
            written += upsert(conn, sql, chunk).await?;
        }
        rest = chunks.remainder();
    }
    let inserted = if before == 0 {
        written
    } else if written == 0 {
        0
    } else {
        let mut after = 0;
        for (id, span) in &spans {
            after += count_in(conn, *id, *span).await?;
        }
        count(after - before)
    };
    Ok((inserted, written.saturating_sub(inserted)))
}

/// Runs one multi-row upsert and returns how many rows it inserted or changed.
async fn upsert(
    conn: &mut SqliteConnection,
    sql: &'static str,
    rows: &[(i64, &Candle)],
) -> Result<u64> {
    let mut q = sqlx::query(sql);
    for (series_id, c) in rows {
        q = q
            .bind(*series_id)
            .bind(ms(c.ts()))
            .bind(c.open())
            .bind(c.high())
            .bind(c.low())
            .bind(c.close())
            .bind(c.volume())
            .bind(c.vwap())
            // prepare_page and prepare_rows rejected trade counts beyond i64.
            .bind(c.trades().and_then(|n| i64::try_from(n).ok()));
    }
    Ok(q.execute(conn).await?.rows_affected())
}
