use async_trait::async_trait;
use backfill_domain::{Candle, DateRange, JobStatus, Symbol, Timeframe};
use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use super::queue::lock_lease;
use super::{PgIngestMethod, PgStorage};
use crate::error::Result;
use crate::page::{candle_page, check_limit, prepare_page};
use crate::rows::{count, parse_job_status, CandleValues};
use crate::traits::CandleStore;
use crate::types::{CandlePage, CandleQuery, IngestOutcome, Lease};

/// Upserts the rows of `src` (ts, open, high, low, close, volume, vwap, trades) into series
/// `$1`, skipping rows already stored with the same values (they are read, never rewritten),
/// and counts inserted and updated rows. `xmax = 0` marks a freshly inserted row version.
macro_rules! upsert_from {
    ($src:literal) => {
        concat!(
            "WITH src AS (",
            $src,
            "), changed AS (
                SELECT s.* FROM src s
                LEFT JOIN candles c ON c.series_id = $1 AND c.ts = s.ts
                WHERE c.ts IS NULL
                   OR (c.open, c.high, c.low, c.close, c.volume, c.vwap, c.trades)
                      IS DISTINCT FROM (s.open, s.high, s.low, s.close, s.volume, s.vwap, s.trades)
            ), written AS (
                INSERT INTO candles AS c (ts, open, high, low, close, volume, vwap, trades, series_id)
                SELECT ts, open, high, low, close, volume, vwap, trades, $1 FROM changed
                ON CONFLICT (series_id, ts) DO UPDATE SET
                    open = excluded.open, high = excluded.high, low = excluded.low,
                    close = excluded.close, volume = excluded.volume, vwap = excluded.vwap,
                    trades = excluded.trades
                WHERE (c.open, c.high, c.low, c.close, c.volume, c.vwap, c.trades)
                      IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close,
                                        excluded.volume, excluded.vwap, excluded.trades)
                RETURNING (c.xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
            FROM written"
        )
    };
}

const UPSERT_UNNEST: &str = upsert_from!(
    "SELECT * FROM unnest($2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], \
     $6::float8[], $7::float8[], $8::float8[], $9::int8[]) \
     AS s(ts, open, high, low, close, volume, vwap, trades)"
);

const UPSERT_STAGED: &str = upsert_from!("SELECT * FROM candles_stage");

#[async_trait]
impl CandleStore for PgStorage {
    async fn ingest_page(
        &self,
        lease: &Lease,
        candles: &[Candle],
        checkpoint: DateTime<Utc>,
    ) -> Result<IngestOutcome> {
        let mut tx = self.pool.begin().await?;
        let held = lock_lease(&mut tx, lease).await?;
        let page = prepare_page(candles, &held.symbol, &held.timeframe)?;
        let (inserted, updated) = if page.is_empty() {
            (0, 0)
        } else {
            match self.ingest {
                PgIngestMethod::Diff => ingest_diff(&mut tx, held.series_id, &page).await?,
                PgIngestMethod::Unnest => upsert_unnest(&mut tx, held.series_id, &page).await?,
                PgIngestMethod::CopyStaging => {
                    upsert_staged(&mut tx, held.series_id, &page).await?
                }
            }
        };
        let (inserted, updated) = (count(inserted), count(updated));
        sqlx::query(
            "UPDATE tasks SET checkpoint = greatest(checkpoint, $2), \
             candles_fetched = candles_fetched + $3, candles_stored = candles_stored + $4, \
             pages = pages + 1, updated_at = now() WHERE id = $1",
        )
        .bind(lease.task_id.0)
        .bind(checkpoint)
        .bind(i64::try_from(candles.len()).unwrap_or(i64::MAX))
        .bind(i64::try_from(inserted + updated).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IngestOutcome {
            inserted,
            updated,
            unchanged: page.len() as u64 - inserted - updated,
            job_cancelled: parse_job_status(&held.job_status)? == JobStatus::Cancelled,
        })
    }

    async fn candles(&self, query: &CandleQuery) -> Result<CandlePage> {
        check_limit(query.limit)?;
        let sql = if query.after.is_some() {
            "SELECT ts, open, high, low, close, volume, vwap, trades FROM candles \
             WHERE series_id = (SELECT id FROM series \
                 WHERE symbol = $1 AND timeframe = $2 AND adjusted = $3) \
               AND ts >= $4 AND ts <= $5 AND ts > $7 ORDER BY ts LIMIT $6"
        } else {
            "SELECT ts, open, high, low, close, volume, vwap, trades FROM candles \
             WHERE series_id = (SELECT id FROM series \
                 WHERE symbol = $1 AND timeframe = $2 AND adjusted = $3) \
               AND ts >= $4 AND ts <= $5 ORDER BY ts LIMIT $6"
        };
        let mut q = sqlx::query_as::<_, CandleRow>(sql)
            .bind(query.symbol.as_str())
            .bind(query.timeframe.to_string())
            .bind(query.adjusted)
            .bind(query.range.from())
            .bind(query.range.to())
            .bind(i64::from(query.limit) + 1);
        if let Some(after) = query.after {
            q = q.bind(after);
        }
        let rows = q.fetch_all(&self.pool).await?;
        candle_page(rows.iter().map(CandleRow::values).collect(), query)
    }

    async fn coverage(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        adjusted: bool,
    ) -> Result<Vec<DateRange>> {
        let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT c.range_from, c.range_to FROM coverage c JOIN series s ON s.id = c.series_id \
             WHERE s.symbol = $1 AND s.timeframe = $2 AND s.adjusted = $3 ORDER BY c.range_from",
        )
        .bind(symbol.as_str())
        .bind(timeframe.to_string())
        .bind(adjusted)
        .fetch_all(&self.pool)
        .await?;
        let ranges = rows
            .into_iter()
            .map(|(from, to)| DateRange::from_instants(from, to))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(backfill_domain::merge_intervals(ranges))
    }
}

#[derive(Debug, sqlx::FromRow)]
struct CandleRow {
    ts: DateTime<Utc>,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    vwap: Option<f64>,
    trades: Option<i64>,
}

/// A stored candle as `ts, open, high, low, close, volume, vwap, trades`.
type StoredTuple = (
    DateTime<Utc>,
    f64,
    f64,
    f64,
    f64,
    f64,
    Option<f64>,
    Option<i64>,
);

/// Whether the stored values equal the candle's (exact comparison, as the database makes).
fn same_values(s: &StoredTuple, c: &Candle) -> bool {
    s.1 == c.open()
        && s.2 == c.high()
        && s.3 == c.low()
        && s.4 == c.close()
        && s.5 == c.volume()
        && s.6 == c.vwap()
        && s.7 == c.trades().and_then(|n| i64::try_from(n).ok())
}

impl CandleRow {
    fn values(&self) -> CandleValues {
        CandleValues {
            ts: self.ts,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            vwap: self.vwap,
            trades: self.trades,
        }
    }
}

/// A page as one array per column.
#[derive(Debug, Default)]
struct Columns {
    ts: Vec<DateTime<Utc>>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
    vwap: Vec<Option<f64>>,
    trades: Vec<Option<i64>>,
}

impl Columns {
    fn new(page: &[&Candle]) -> Self {
        let n = page.len();
        let mut c = Self {
            ts: Vec::with_capacity(n),
            open: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            close: Vec::with_capacity(n),
            volume: Vec::with_capacity(n),
            vwap: Vec::with_capacity(n),
            trades: Vec::with_capacity(n),
        };
        for x in page {
            c.ts.push(x.ts());
            c.open.push(x.open());
            c.high.push(x.high());
            c.low.push(x.low());
            c.close.push(x.close());
            c.volume.push(x.volume());
            c.vwap.push(x.vwap());
            // prepare_page rejected trade counts beyond i64.
            c.trades
                .push(x.trades().and_then(|n| i64::try_from(n).ok()));
        }
        c
    }
}

/// The default ingest: diff the page against the stored rows of its time span, COPY the new
/// rows, UPDATE the changed ones.
async fn ingest_diff(
    conn: &mut PgConnection,
    series_id: i32,
    page: &[&Candle],
) -> Result<(i64, i64)> {
    let (Some(first), Some(last)) = (page.first(), page.last()) else {
        return Ok((0, 0));
    };
    // Decoded as tuples (by position): looking columns up by name per row costs more here.
    let stored: Vec<StoredTuple> = sqlx::query_as(
        "SELECT ts, open, high, low, close, volume, vwap, trades FROM candles \
         WHERE series_id = $1 AND ts >= $2 AND ts <= $3 ORDER BY ts",
    )
    .bind(series_id)
    .bind(first.ts())
    .bind(last.ts())
    .fetch_all(&mut *conn)
    .await?;
    let mut fresh: Vec<&Candle> = Vec::new();
    let mut changed: Vec<&Candle> = Vec::new();
    let mut stored = stored.iter().peekable();
    for &c in page {
        while stored.next_if(|s| s.0 < c.ts()).is_some() {}
        match stored.peek() {
            Some(s) if s.0 == c.ts() => {
                if !same_values(s, c) {
                    changed.push(c);
                }
            }
            _ => fresh.push(c),
        }
    }
    if !fresh.is_empty() {
        let mut savepoint = conn.begin().await?;
        let copied = copy_rows(&mut savepoint, series_id, &fresh).await;
        match copied {
            Ok(()) => savepoint.commit().await?,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                // Another writer stored some of these rows since they were read.
                tracing::debug!(
                    series_id,
                    "concurrent insert of the same candles, upserting"
                );
                savepoint.rollback().await?;
                return upsert_unnest(conn, series_id, page).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let updated = if changed.is_empty() {
        0
    } else {
        update_rows(conn, series_id, &changed).await?
    };
    let inserted = i64::try_from(fresh.len()).unwrap_or(i64::MAX);
    Ok((inserted, i64::try_from(updated).unwrap_or(i64::MAX)))
}

/// `COPY` of rows that are not stored yet straight into `candles`.
async fn copy_rows(
    conn: &mut PgConnection,
    series_id: i32,
    rows: &[&Candle],
) -> Result<(), sqlx::Error> {
    let mut copy = conn
        .copy_in_raw(
            "COPY candles (ts, open, high, low, close, volume, vwap, trades, series_id) \
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    copy.send(encode_binary(rows, Some(series_id))).await?;
    copy.finish().await?;
    Ok(())
}

/// Replaces the values of stored rows that differ from `rows`; returns how many changed.
async fn update_rows(conn: &mut PgConnection, series_id: i32, rows: &[&Candle]) -> Result<u64> {
    let c = Columns::new(rows);
    let done = sqlx::query(
        "UPDATE candles AS c SET open = u.open, high = u.high, low = u.low, close = u.close, \
             volume = u.volume, vwap = u.vwap, trades = u.trades \
         FROM unnest($2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], \
             $6::float8[], $7::float8[], $8::float8[], $9::int8[]) \
             AS u(ts, open, high, low, close, volume, vwap, trades) \
         WHERE c.series_id = $1 AND c.ts = u.ts \
           AND (c.open, c.high, c.low, c.close, c.volume, c.vwap, c.trades) \
               IS DISTINCT FROM (u.open, u.high, u.low, u.close, u.volume, u.vwap, u.trades)",
    )
    .bind(series_id)
    .bind(&c.ts)
    .bind(&c.open)
    .bind(&c.high)
    .bind(&c.low)
    .bind(&c.close)
    .bind(&c.volume)
    .bind(&c.vwap)
    .bind(&c.trades)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

async fn upsert_unnest(
    conn: &mut PgConnection,
    series_id: i32,
    page: &[&Candle],
) -> Result<(i64, i64)> {
    let c = Columns::new(page);
    let counts = sqlx::query_as(UPSERT_UNNEST)
        .bind(series_id)
        .bind(&c.ts)
        .bind(&c.open)
        .bind(&c.high)
        .bind(&c.low)
        .bind(&c.close)
        .bind(&c.volume)
        .bind(&c.vwap)
        .bind(&c.trades)
        .fetch_one(conn)
        .await?;
    Ok(counts)
}

async fn upsert_staged(
    conn: &mut PgConnection,
    series_id: i32,
    page: &[&Candle],
) -> Result<(i64, i64)> {
    sqlx::query(
        "CREATE TEMPORARY TABLE IF NOT EXISTS candles_stage (ts timestamptz, open float8, \
         high float8, low float8, close float8, volume float8, vwap float8, trades bigint) \
         ON COMMIT DELETE ROWS",
    )
    .execute(&mut *conn)
    .await?;
    let mut copy = conn
        .copy_in_raw("COPY candles_stage FROM STDIN (FORMAT binary)")
        .await?;
    copy.send(encode_binary(page, None)).await?;
    copy.finish().await?;
    let counts = sqlx::query_as(UPSERT_STAGED)
        .bind(series_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(counts)
}

/// PostgreSQL's binary COPY format of candle rows: the columns of `candles_stage`, followed by
/// `series_id` when given (the column order of `candles`).
fn encode_binary(page: &[&Candle], series_id: Option<i32>) -> Vec<u8> {
    /// Microseconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01.
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let mut buf = Vec::with_capacity(19 + page.len() * 96 + 2);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    let float = |buf: &mut Vec<u8>, v: f64| {
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&v.to_be_bytes());
    };
    let fields: i16 = if series_id.is_some() { 9 } else { 8 };
    for c in page {
        buf.extend_from_slice(&fields.to_be_bytes());
        let micros = (c.ts() - DateTime::<Utc>::UNIX_EPOCH)
            .num_microseconds()
            .unwrap_or_else(|| c.ts().timestamp_millis().saturating_mul(1000));
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&(micros - PG_EPOCH_MICROS).to_be_bytes());
        for v in [c.open(), c.high(), c.low(), c.close(), c.volume()] {
            float(&mut buf, v);
        }
        match c.vwap() {
            Some(v) => float(&mut buf, v),
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        match c.trades().and_then(|n| i64::try_from(n).ok()) {
            Some(n) => {
                buf.extend_from_slice(&8i32.to_be_bytes());
                buf.extend_from_slice(&n.to_be_bytes());
            }
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        if let Some(id) = series_id {
            buf.extend_from_slice(&4i32.to_be_bytes());
            buf.extend_from_slice(&id.to_be_bytes());
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}
