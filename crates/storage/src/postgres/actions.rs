use async_trait::async_trait;
use backfill_domain::{Dividend, Split, Symbol};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::PgStorage;
use crate::action_rows::{parse_timeframe, read_dividends, read_splits, stored_frequency};
use crate::error::Result;
use crate::traits::ActionStore;
use crate::types::AdjustedSeries;

#[async_trait]
impl ActionStore for PgStorage {
    async fn upsert_splits(&self, splits: &[Split]) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for s in splits {
            changed += sqlx::query(
                "INSERT INTO splits (symbol, execution_date, split_from, split_to) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (symbol, execution_date) DO UPDATE \
                 SET split_from = excluded.split_from, split_to = excluded.split_to, \
                     updated_at = now() \
                 WHERE (splits.split_from, splits.split_to) \
                     IS DISTINCT FROM (excluded.split_from, excluded.split_to)",
            )
            .bind(s.ticker.as_str())
            .bind(s.execution_date)
            .bind(s.split_from)
            .bind(s.split_to)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn upsert_dividends(&self, dividends: &[Dividend]) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for d in dividends {
            changed += sqlx::query(
                "INSERT INTO dividends (symbol, ex_dividend_date, cash_amount, currency, \
                     declaration_date, record_date, pay_date, frequency, dividend_type) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (symbol, ex_dividend_date) DO UPDATE \
                 SET cash_amount = excluded.cash_amount, currency = excluded.currency, \
                     declaration_date = excluded.declaration_date, \
                     record_date = excluded.record_date, pay_date = excluded.pay_date, \
                     frequency = excluded.frequency, dividend_type = excluded.dividend_type, \
                     updated_at = now() \
                 WHERE (dividends.cash_amount, dividends.currency, dividends.declaration_date, \
                        dividends.record_date, dividends.pay_date, dividends.frequency, \
                        dividends.dividend_type) \
                     IS DISTINCT FROM (excluded.cash_amount, excluded.currency, \
                        excluded.declaration_date, excluded.record_date, excluded.pay_date, \
                        excluded.frequency, excluded.dividend_type)",
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
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn splits(&self, symbol: &Symbol) -> Result<Vec<Split>> {
        read_splits(&self.pool, symbol).await
    }

    async fn dividends(&self, symbol: &Symbol) -> Result<Vec<Dividend>> {
        read_dividends(&self.pool, symbol).await
    }

    async fn adjusted_series(&self, symbol: &Symbol) -> Result<Vec<AdjustedSeries>> {
        let rows: Vec<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT timeframe, adjusted_fetched_at FROM series \
             WHERE symbol = $1 AND adjusted ORDER BY timeframe",
        )
        .bind(symbol.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(timeframe, fetched_at)| {
                Ok(AdjustedSeries {
                    timeframe: parse_timeframe(&timeframe)?,
                    fetched_at,
                })
            })
            .collect()
    }

    async fn oldest_adjusted_fetch(&self) -> Result<Option<DateTime<Utc>>> {
        let oldest: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT min(adjusted_fetched_at) FROM series WHERE adjusted")
                .fetch_one(&self.pool)
                .await?;
        Ok(oldest)
    }
}

/// Records that adjusted series were stored whole now, where they were: a series had no
/// record yet, or the task's job was `full` and its range holds every interval the series
/// covers. Called as a task (a symbol's, or a day's of many series) finishes, after its
/// coverage was added.
pub(super) async fn record_adjusted_fetch(
    tx: &mut PgConnection,
    series_ids: &[i32],
    job_id: uuid::Uuid,
) -> Result<()> {
    sqlx::query(
        "UPDATE series s SET adjusted_fetched_at = now() FROM jobs j \
         WHERE s.id = ANY($1) AND j.id = $2 AND s.adjusted \
           AND (s.adjusted_fetched_at IS NULL OR (j.mode = 'full' AND NOT EXISTS ( \
               SELECT 1 FROM coverage c WHERE c.series_id = s.id \
                 AND (c.range_from < j.range_from OR c.range_to > j.range_to))))",
    )
    .bind(series_ids)
    .bind(job_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
