use async_trait::async_trait;
use backfill_domain::{Dividend, Split, Symbol};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{now_ms, opt_dt, SqliteStorage};
use crate::action_rows::{parse_timeframe, read_dividends, read_splits, stored_frequency};
use crate::error::Result;
use crate::traits::ActionStore;
use crate::types::AdjustedSeries;

#[async_trait]
impl ActionStore for SqliteStorage {
    async fn upsert_splits(&self, splits: &[Split]) -> Result<u64> {
        let mut w = self.write_tx().await?;
        let now = now_ms();
        let mut changed = 0;
        for s in splits {
            changed += sqlx::query(
                "INSERT INTO splits (symbol, execution_date, split_from, split_to, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (symbol, execution_date) DO UPDATE \
                 SET split_from = excluded.split_from, split_to = excluded.split_to, \
                     updated_at = excluded.updated_at \
                 WHERE (splits.split_from, splits.split_to) \
                     IS NOT (excluded.split_from, excluded.split_to)",
            )
            .bind(s.ticker.as_str())
            .bind(s.execution_date)
            .bind(s.split_from)
            .bind(s.split_to)
            .bind(now)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        }
        w.tx.commit().await?;
        Ok(changed)
    }

    async fn upsert_dividends(&self, dividends: &[Dividend]) -> Result<u64> {
        let mut w = self.write_tx().await?;
        let now = now_ms();
        let mut changed = 0;
        for d in dividends {
            changed += sqlx::query(
                "INSERT INTO dividends (symbol, ex_dividend_date, cash_amount, currency, \
                     declaration_date, record_date, pay_date, frequency, dividend_type, \
                     updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (symbol, ex_dividend_date) DO UPDATE \
                 SET cash_amount = excluded.cash_amount, currency = excluded.currency, \
                     declaration_date = excluded.declaration_date, \
                     record_date = excluded.record_date, pay_date = excluded.pay_date, \
                     frequency = excluded.frequency, dividend_type = excluded.dividend_type, \
                     updated_at = excluded.updated_at \
                 WHERE dividends.cash_amount IS NOT excluded.cash_amount \
                    OR dividends.currency IS NOT excluded.currency \
                    OR dividends.declaration_date IS NOT excluded.declaration_date \
                    OR dividends.record_date IS NOT excluded.record_date \
                    OR dividends.pay_date IS NOT excluded.pay_date \
                    OR dividends.frequency IS NOT excluded.frequency \
                    OR dividends.dividend_type IS NOT excluded.dividend_type",
            )
            .bind(d.ticker.as_str())
            .bind(d.ex_dividend_date)
            .bind(d.cash_amount)
            .bind(d.currency.as_deref())
            .bind(d.declaration_date)
            .bind(d.record_date)
            .bind(d.pay_date)
            .bind(stored_frequency(d))
            .bind(d.dividend_type.as_deref())
            .bind(now)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        }
        w.tx.commit().await?;
        Ok(changed)
    }

    async fn splits(&self, symbol: &Symbol) -> Result<Vec<Split>> {
        read_splits(&self.pool, symbol).await
    }

    async fn dividends(&self, symbol: &Symbol) -> Result<Vec<Dividend>> {
        read_dividends(&self.pool, symbol).await
    }

    async fn adjusted_series(&self, symbol: &Symbol) -> Result<Vec<AdjustedSeries>> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT timeframe, adjusted_fetched_at FROM series \
             WHERE symbol = ?1 AND adjusted ORDER BY timeframe",
        )
        .bind(symbol.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(timeframe, fetched_at)| {
                Ok(AdjustedSeries {
                    timeframe: parse_timeframe(&timeframe)?,
                    fetched_at: opt_dt(fetched_at)?,
                })
            })
            .collect()
    }

    async fn oldest_adjusted_fetch(&self) -> Result<Option<DateTime<Utc>>> {
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT min(adjusted_fetched_at) FROM series WHERE adjusted")
                .fetch_one(&self.pool)
                .await?;
        opt_dt(oldest)
    }
}

/// Records that adjusted series were stored whole now, where they were: as PostgreSQL's
/// `record_adjusted_fetch`.
pub(super) async fn record_adjusted_fetch(
    conn: &mut SqliteConnection,
    series_ids: &[i64],
    job_id: &str,
) -> Result<()> {
    let ids = serde_json::to_string(series_ids)
        .map_err(|e| crate::Error::InvalidInput(format!("series ids do not encode: {e}")))?;
    sqlx::query(
        "UPDATE series SET adjusted_fetched_at = ?3 \
         WHERE id IN (SELECT value FROM json_each(?1)) AND adjusted \
           AND (adjusted_fetched_at IS NULL OR EXISTS ( \
               SELECT 1 FROM jobs j WHERE j.id = ?2 AND j.mode = 'full' AND NOT EXISTS ( \
                   SELECT 1 FROM coverage c WHERE c.series_id = series.id \
                     AND (c.range_from < j.range_from OR c.range_to > j.range_to))))",
    )
    .bind(ids)
    .bind(job_id)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
