use std::sync::LazyLock;

use async_trait::async_trait;
use backfill_domain::{Candle, DateRange, JobStatus, Symbol, Timeframe};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::queue::check_lease;
use super::{dt, ms, now_ms, SqliteStorage};
use crate::error::Result;
use crate::page::{candle_page, check_limit, prepare_page};
use crate::rows::{count, parse_job_status, CandleValues};
use crate::traits::CandleStore;
use crate::types::{CandlePage, CandleQuery, IngestOutcome, Lease};

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
    sql.push_str(
        " ON CONFLICT (series_id, ts) DO UPDATE SET open = excluded.open, high = excluded.high, \
         low = excluded.low, close = excluded.close, volume = excluded.volume, \
         vwap = excluded.vwap, trades = excluded.trades \
         WHERE (open, high, low, close, volume, vwap, trades) IS NOT \
         (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, \
          excluded.vwap, excluded.trades)",
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
    ) -> Result<IngestOutcome> {
        let mut w = self.page_write_tx().await?;
        let held = check_lease(&mut w.tx, lease).await?;
        let page = prepare_page(candles, &held.symbol, &held.timeframe)?;
        let (inserted, updated) = match (page.first(), page.last()) {
            (Some(first), Some(last)) => {
                let span = (ms(first.ts()), ms(last.ts()));
                // Inserted rows are told apart from updated ones by counting the stored rows of
                // the page's span before and after. An empty span (a first ingest) needs no
                // count, and a page that wrote nothing (a re-ingest) needs no second one.
                let before = count_in(&mut w.tx, held.series_id, span).await?;
                let mut written = 0;
                let mut rest = &page[..];
                for (size, sql) in CHUNKS.iter().zip(UPSERTS.iter()) {
                    let mut chunks = rest.chunks_exact(*size);
                    for chunk in &mut chunks {
                        written += upsert(&mut w.tx, sql, held.series_id, chunk).await?;
                    }
                    rest = chunks.remainder();
                }
                let inserted = if before == 0 {
                    written
                } else if written == 0 {
                    0
                } else {
                    count(count_in(&mut w.tx, held.series_id, span).await? - before)
                };
                (inserted, written.saturating_sub(inserted))
            }
            _ => (0, 0),
        };
        sqlx::query(
            "UPDATE tasks SET checkpoint = max(coalesce(checkpoint, ?2), ?2), \
             candles_fetched = candles_fetched + ?3, candles_stored = candles_stored + ?4, \
             pages = pages + 1, updated_at = ?5 WHERE id = ?1",
        )
        .bind(lease.task_id.0)
        .bind(ms(checkpoint))
        .bind(i64::try_from(candles.len()).unwrap_or(i64::MAX))
        .bind(i64::try_from(inserted + updated).unwrap_or(i64::MAX))
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        self.request_checkpoint();
        Ok(IngestOutcome {
            inserted,
            updated,
            unchanged: (page.len() as u64).saturating_sub(inserted + updated),
            job_cancelled: parse_job_status(&held.job_status)? == JobStatus::Cancelled,
        })
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

/// Runs one multi-row upsert and returns how many rows it inserted or changed.
async fn upsert(
    conn: &mut SqliteConnection,
    sql: &'static str,
    series_id: i64,
    rows: &[&Candle],
) -> Result<u64> {
    let mut q = sqlx::query(sql);
    for c in rows {
        q = q
            .bind(series_id)
            .bind(ms(c.ts()))
            .bind(c.open())
            .bind(c.high())
            .bind(c.low())
            .bind(c.close())
            .bind(c.volume())
            .bind(c.vwap())
            // prepare_page rejected trade counts beyond i64.
            .bind(c.trades().and_then(|n| i64::try_from(n).ok()));
    }
    Ok(q.execute(conn).await?.rows_affected())
}
