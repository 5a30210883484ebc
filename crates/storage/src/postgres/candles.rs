use async_trait::async_trait;
use backfill_domain::{Candle, DateRange, JobStatus, Symbol, Timeframe};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgCopyIn;
use sqlx::{Connection, PgConnection};

use super::queue::lock_lease;
use super::{PgIngestMethod, PgStorage};
use crate::error::{Error, Result};
use crate::page::{candle_page, check_limit, prepare_page, prepare_rows};
use crate::rows::{count, non_negative, parse_job_status, CandleValues};
use crate::traits::CandleStore;
use crate::types::{
    CandlePage, CandleQuery, DayProgress, Fetched, IngestOutcome, Lease, SourceFile, StoredFile,
};

/// Upserts the rows of `src` (ts, open, high, low, close, volume, vwap, trades) into series
/// `$1`, skipping rows already stored with the same values (they are read, never rewritten),
/// and counts inserted and updated rows. `xmax = 0` marks a freshly inserted row version. A row
/// without a vwap (Flat Files have none) keeps the stored one: absent is not a new value.
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
                      IS DISTINCT FROM (s.open, s.high, s.low, s.close, s.volume,
                                        coalesce(s.vwap, c.vwap), s.trades)
            ), written AS (
                INSERT INTO candles AS c (ts, open, high, low, close, volume, vwap, trades, series_id)
                SELECT ts, open, high, low, close, volume, vwap, trades, $1 FROM changed
                ON CONFLICT (series_id, ts) DO UPDATE SET
                    open = excluded.open, high = excluded.high, low = excluded.low,
                    close = excluded.close, volume = excluded.volume,
                    vwap = coalesce(excluded.vwap, c.vwap),
                    trades = excluded.trades
                WHERE (c.open, c.high, c.low, c.close, c.volume, c.vwap, c.trades)
                      IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close,
                                        excluded.volume, coalesce(excluded.vwap, c.vwap),
                                        excluded.trades)
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
        fetched: Fetched,
    ) -> Result<IngestOutcome> {
        let mut tx = self.pool.begin().await?;
        let held = lock_lease(&mut tx, lease).await?;
        let (Some(symbol), Some(series_id)) = (held.symbol.as_deref(), held.series_id) else {
            return Err(Error::InvalidInput(format!(
                "task {} is a day task: its rows go through ingest_rows",
                lease.task_id
            )));
        };
        let page = prepare_page(candles, symbol, &held.timeframe)?;
        let stored = page.len() as u64;
        let (inserted, updated) = self.ingest_groups(&mut tx, &[(series_id, page)]).await?;
        sqlx::query(
            "UPDATE tasks SET checkpoint = greatest(checkpoint, $2), \
             candles_fetched = candles_fetched + $3, candles_stored = candles_stored + $4, \
             pages = pages + 1, requests = requests + $5, bytes = bytes + $6, \
             updated_at = now() WHERE id = $1",
        )
        .bind(lease.task_id.0)
        .bind(checkpoint)
        .bind(i64::try_from(candles.len()).unwrap_or(i64::MAX))
        .bind(i64::try_from(inserted + updated).unwrap_or(i64::MAX))
        .bind(i64::from(fetched.requests))
        .bind(i64::try_from(fetched.bytes).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IngestOutcome {
            inserted,
            updated,
            unchanged: stored - inserted - updated,
            job_cancelled: parse_job_status(&held.job_status)? == JobStatus::Cancelled,
        })
    }

    async fn ingest_rows(
        &self,
        lease: &Lease,
        candles: &[Candle],
        progress: DayProgress,
    ) -> Result<IngestOutcome> {
        let mut tx = self.pool.begin().await?;
        let held = lock_lease(&mut tx, lease).await?;
        if held.day.is_none() {
            return Err(Error::InvalidInput(format!(
                "task {} is a symbol task: its candles go through ingest_page",
                lease.task_id
            )));
        }
        let groups = prepare_rows(candles, &held.timeframe)?;
        // Series are created in short statements of their own (not in the page's transaction),
        // so that tasks storing the same new tickers do not wait for each other's pages.
        let symbols: Vec<&str> = groups.iter().map(|(s, _)| s.as_str()).collect();
        let ids = self
            .series_ids(&symbols, &held.timeframe, held.adjusted)
            .await?;
        let stored: u64 = groups.iter().map(|(_, g)| g.len() as u64).sum();
        let mut by_series: Vec<(i32, Vec<&Candle>)> = groups
            .into_iter()
            .zip(ids)
            .map(|((_, group), id)| (id, group))
            .collect();
        by_series.sort_by_key(|(id, _)| *id);
        let (inserted, updated) = self.ingest_groups(&mut tx, &by_series).await?;
        sqlx::query(
            "UPDATE tasks SET rows_done = greatest(rows_done, $2), \
             file_offset = greatest(file_offset, $3), file_size = coalesce($4, file_size), \
             file_etag = coalesce($9, file_etag), \
             candles_fetched = candles_fetched + $5, candles_stored = candles_stored + $6, \
             pages = pages + 1, requests = requests + $7, bytes = bytes + $8, \
             updated_at = now() WHERE id = $1",
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
        .bind(progress.file_etag.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IngestOutcome {
            inserted,
            updated,
            unchanged: stored - inserted - updated,
            job_cancelled: parse_job_status(&held.job_status)? == JobStatus::Cancelled,
        })
    }

    async fn stored_file(&self, key: &str) -> Result<Option<StoredFile>> {
        let row: Option<(String, String, i64, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT key, etag, size, rows, stored_at FROM source_files WHERE key = $1",
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
                stored_at,
            })
        })
        .transpose()
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

/// A stored candle as `series_id, ts, open, high, low, close, volume, vwap, trades`.
type StoredTuple = (
    i32,
    DateTime<Utc>,
    f64,
    f64,
    f64,
    f64,
    f64,
    Option<f64>,
    Option<i64>,
);

/// Whether the stored values equal the candle's (exact comparison, as the database makes); a
/// candle without a vwap leaves the stored one as it is.
fn same_values(s: &StoredTuple, c: &Candle) -> bool {
    s.2 == c.open()
        && s.3 == c.high()
        && s.4 == c.low()
        && s.5 == c.close()
        && s.6 == c.volume()
        && (c.vwap().is_none() || s.7 == c.vwap())
        && s.8 == c.trades().and_then(|n| i64::try_from(n).ok())
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

impl PgStorage {
    /// The ids of the series of `symbols` (sorted, distinct) at `timeframe` and `adjusted`, in
    /// the same order, creating the missing ones. Known ids are remembered: series are never
    /// deleted.
    async fn series_ids(
        &self,
        symbols: &[&str],
        timeframe: &str,
        adjusted: bool,
    ) -> Result<Vec<i32>> {
        let missing = self.series.missing(symbols, timeframe, adjusted);
        if !missing.is_empty() {
            sqlx::query(
                "INSERT INTO series (symbol, timeframe, adjusted) \
                 SELECT s, $2, $3 FROM unnest($1::text[]) AS s ORDER BY s ON CONFLICT DO NOTHING",
            )
            .bind(&missing)
            .bind(timeframe)
            .bind(adjusted)
            .execute(&self.pool)
            .await?;
            let found: Vec<(i32, String)> = sqlx::query_as(
                "SELECT id, symbol FROM series \
                 WHERE symbol = ANY($1) AND timeframe = $2 AND adjusted = $3",
            )
            .bind(&missing)
            .bind(timeframe)
            .bind(adjusted)
            .fetch_all(&self.pool)
            .await?;
            self.series.remember(found, timeframe, adjusted);
        }
        self.series.ids(symbols, timeframe, adjusted)
    }

    /// Stores candles grouped by series (groups sorted by series id, each sorted by time
    /// without repeats) with the configured method; returns (inserted, updated).
    async fn ingest_groups(
        &self,
        conn: &mut PgConnection,
        groups: &[(i32, Vec<&Candle>)],
    ) -> Result<(u64, u64)> {
        let groups: Vec<&(i32, Vec<&Candle>)> =
            groups.iter().filter(|(_, g)| !g.is_empty()).collect();
        if groups.is_empty() {
            return Ok((0, 0));
        }
        let (inserted, updated) = match self.ingest {
            PgIngestMethod::Diff => ingest_diff(conn, &groups).await?,
            PgIngestMethod::Unnest | PgIngestMethod::CopyStaging => {
                let mut total = (0, 0);
                for (series_id, page) in &groups {
                    let (i, u) = if self.ingest == PgIngestMethod::Unnest {
                        upsert_unnest(conn, *series_id, page).await?
                    } else {
                        upsert_staged(conn, *series_id, page).await?
                    };
                    total = (total.0 + i, total.1 + u);
                }
                total
            }
        };
        Ok((count(inserted), count(updated)))
    }
}

/// The default ingest: diff the pages against the stored rows of their series' time spans (one
/// query for all of them), COPY the new rows, UPDATE the changed ones.
async fn ingest_diff(
    conn: &mut PgConnection,
    groups: &[&(i32, Vec<&Candle>)],
) -> Result<(i64, i64)> {
    let mut ids = Vec::with_capacity(groups.len());
    let mut froms = Vec::with_capacity(groups.len());
    let mut tos = Vec::with_capacity(groups.len());
    for (id, page) in groups {
        if let (Some(first), Some(last)) = (page.first(), page.last()) {
            ids.push(*id);
            froms.push(first.ts());
            tos.push(last.ts());
        }
    }
    // Decoded as tuples (by position): looking columns up by name per row costs more here.
    let stored: Vec<StoredTuple> = if ids.len() == 1 {
        sqlx::query_as(
            "SELECT series_id, ts, open, high, low, close, volume, vwap, trades FROM candles \
             WHERE series_id = $1 AND ts >= $2 AND ts <= $3 ORDER BY ts",
        )
        .bind(ids[0])
        .bind(froms[0])
        .bind(tos[0])
        .fetch_all(&mut *conn)
        .await?
    } else {
        sqlx::query_as(
            "SELECT c.series_id, c.ts, c.open, c.high, c.low, c.close, c.volume, c.vwap, \
                 c.trades \
             FROM unnest($1::int4[], $2::timestamptz[], $3::timestamptz[]) AS g(id, f, t) \
             JOIN candles c ON c.series_id = g.id AND c.ts >= g.f AND c.ts <= g.t \
             ORDER BY c.series_id, c.ts",
        )
        .bind(&ids)
        .bind(&froms)
        .bind(&tos)
        .fetch_all(&mut *conn)
        .await?
    };
    let mut fresh: Vec<(i32, &Candle)> = Vec::new();
    let mut changed: Vec<(i32, &Candle)> = Vec::new();
    let mut stored = stored.iter().peekable();
    for (id, page) in groups {
        for &c in page {
            while stored.next_if(|s| (s.0, s.1) < (*id, c.ts())).is_some() {}
            match stored.peek() {
                Some(s) if s.0 == *id && s.1 == c.ts() => {
                    if !same_values(s, c) {
                        changed.push((*id, c));
                    }
                }
                _ => fresh.push((*id, c)),
            }
        }
    }
    if !fresh.is_empty() {
        let mut savepoint = conn.begin().await?;
        let copied = copy_rows(&mut savepoint, &fresh).await;
        match copied {
            Ok(()) => savepoint.commit().await?,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                // Another writer stored some of these rows since they were read.
                tracing::debug!("concurrent insert of the same candles, upserting");
                savepoint.rollback().await?;
                let mut total = (0, 0);
                for (series_id, page) in groups {
                    let (i, u) = upsert_unnest(conn, *series_id, page).await?;
                    total = (total.0 + i, total.1 + u);
                }
                return Ok(total);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let updated = if changed.is_empty() {
        0
    } else {
        update_rows(conn, &changed).await?
    };
    let inserted = i64::try_from(fresh.len()).unwrap_or(i64::MAX);
    Ok((inserted, i64::try_from(updated).unwrap_or(i64::MAX)))
}

/// `COPY` of rows that are not stored yet straight into `candles`.
async fn copy_rows(conn: &mut PgConnection, rows: &[(i32, &Candle)]) -> Result<(), sqlx::Error> {
    let mut copy = conn
        .copy_in_raw(
            "COPY candles (ts, open, high, low, close, volume, vwap, trades, series_id) \
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    send_binary(&mut copy, rows.iter().map(|(id, c)| (Some(*id), *c))).await?;
    copy.finish().await?;
    Ok(())
}

/// Replaces the values of stored rows that differ from `rows`; returns how many changed.
async fn update_rows(conn: &mut PgConnection, rows: &[(i32, &Candle)]) -> Result<u64> {
    let ids: Vec<i32> = rows.iter().map(|(id, _)| *id).collect();
    let candles: Vec<&Candle> = rows.iter().map(|(_, c)| *c).collect();
    let c = Columns::new(&candles);
    let done = sqlx::query(
        "UPDATE candles AS c SET open = u.open, high = u.high, low = u.low, close = u.close, \
             volume = u.volume, vwap = coalesce(u.vwap, c.vwap), trades = u.trades \
         FROM unnest($1::int4[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], \
             $6::float8[], $7::float8[], $8::float8[], $9::int8[]) \
             AS u(series_id, ts, open, high, low, close, volume, vwap, trades) \
         WHERE c.series_id = u.series_id AND c.ts = u.ts \
           AND (c.open, c.high, c.low, c.close, c.volume, c.vwap, c.trades) \
               IS DISTINCT FROM (u.open, u.high, u.low, u.close, u.volume, \
                                 coalesce(u.vwap, c.vwap), u.trades)",
    )
    .bind(&ids)
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
    send_binary(&mut copy, page.iter().map(|c| (None, *c))).await?;
    copy.finish().await?;
    let counts = sqlx::query_as(UPSERT_STAGED)
        .bind(series_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(counts)
}

/// How much COPY data is encoded before it is sent: a page is sent in pieces of this size, so
/// neither the encoding buffer nor the connection's write buffer (which keeps its capacity for
/// the connection's life) grows to the size of a page.
const COPY_CHUNK: usize = 256 * 1024;

/// Sends `rows` in PostgreSQL's binary COPY format: the columns of `candles_stage`, followed by
/// `series_id` when given (the column order of `candles`), in pieces of about [`COPY_CHUNK`].
async fn send_binary<'a>(
    copy: &mut PgCopyIn<&mut PgConnection>,
    rows: impl Iterator<Item = (Option<i32>, &'a Candle)>,
) -> Result<(), sqlx::Error> {
    let mut buf = Vec::with_capacity(COPY_CHUNK + 128);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    for (series_id, c) in rows {
        encode_row(&mut buf, series_id, c);
        if buf.len() >= COPY_CHUNK {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf.as_slice()).await?;
    Ok(())
}

/// One row of the binary COPY format.
fn encode_row(buf: &mut Vec<u8>, series_id: Option<i32>, c: &Candle) {
    /// Microseconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01.
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let float = |buf: &mut Vec<u8>, v: f64| {
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&v.to_be_bytes());
    };
    let fields: i16 = if series_id.is_some() { 9 } else { 8 };
    buf.extend_from_slice(&fields.to_be_bytes());
    let micros = (c.ts() - DateTime::<Utc>::UNIX_EPOCH)
        .num_microseconds()
        .unwrap_or_else(|| c.ts().timestamp_millis().saturating_mul(1000));
    buf.extend_from_slice(&8i32.to_be_bytes());
    buf.extend_from_slice(&(micros - PG_EPOCH_MICROS).to_be_bytes());
    for v in [c.open(), c.high(), c.low(), c.close(), c.volume()] {
        float(buf, v);
    }
    match c.vwap() {
        Some(v) => float(buf, v),
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
