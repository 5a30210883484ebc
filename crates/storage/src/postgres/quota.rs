//! Request quotas shared by every process of the database: a sliding window of slots per key,
//! taken one taker at a time under a row lock on the key, on the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{micros, PgStorage};
use crate::error::Result;
use crate::quota::{Acquired, Quota, QuotaSlot, QuotaStore, QuotaUsage};

/// The shortest wait [`QuotaStore::try_acquire`] answers, so that callers never spin.
const MIN_WAIT: Duration = Duration::from_millis(1);

#[async_trait]
impl QuotaStore for PgStorage {
    async fn try_acquire(&self, quota: &Quota) -> Result<Acquired> {
        let mut tx = self.pool.begin().await?;
        // The key's row is the lock: one taker of a key at a time, in every process. It is
        // created once, by the first taker.
        let lock = "SELECT paused_until FROM request_quotas WHERE key = $1 FOR UPDATE";
        let locked: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(lock)
            .bind(&quota.key)
            .fetch_optional(&mut *tx)
            .await?;
        let paused_until = match locked {
            Some(paused_until) => paused_until,
            None => {
                sqlx::query("INSERT INTO request_quotas (key) VALUES ($1) ON CONFLICT DO NOTHING")
                    .bind(&quota.key)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query_scalar(lock)
                    .bind(&quota.key)
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        // Read once the lock is held: `now()` would be the transaction's start, before any wait.
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *tx)
            .await?;
        if let Some(until) = paused_until.filter(|until| *until > now) {
            tx.commit().await?;
            return Ok(Acquired::Wait(until_from(now, until).max(MIN_WAIT)));
        }
        sqlx::query("DELETE FROM request_quota_slots WHERE key = $1 AND frees_at <= $2")
            .bind(&quota.key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // A slot in flight frees a window after its release at the earliest, or when it goes
        // stale if that is sooner; an answered one at its `frees_at`. No slot frees before
        // the earliest of these.
        let (in_use, next_free): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*), min(CASE WHEN done_at IS NULL \
                 THEN least(frees_at, $2 + $3 * interval '1 microsecond') ELSE frees_at END) \
             FROM request_quota_slots WHERE key = $1 AND frees_at > $2",
        )
        .bind(&quota.key)
        .bind(now)
        .bind(micros(quota.window))
        .fetch_one(&mut *tx)
        .await?;
        if in_use >= i64::from(quota.limit.get()) {
            tx.commit().await?;
            let wait = next_free.map_or(quota.window, |at| until_from(now, at));
            return Ok(Acquired::Wait(wait.max(MIN_WAIT)));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO request_quota_slots (key, taken_at, frees_at) \
             VALUES ($1, $2, $2 + $3 * interval '1 microsecond') RETURNING id",
        )
        .bind(&quota.key)
        .bind(now)
        .bind(micros(quota.max_request.saturating_add(quota.window)))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Acquired::Slot(QuotaSlot(id)))
    }

    async fn release(&self, quota: &Quota, slot: QuotaSlot) -> Result<()> {
        sqlx::query(
            "UPDATE request_quota_slots s SET done_at = c.t, \
                 frees_at = c.t + $3 * interval '1 microsecond' \
             FROM (SELECT clock_timestamp() AS t) c \
             WHERE s.id = $1 AND s.key = $2 AND s.done_at IS NULL AND s.frees_at > c.t",
        )
        .bind(slot.0)
        .bind(&quota.key)
        .bind(micros(quota.window))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn pause(&self, quota: &Quota, delay: Duration) -> Result<()> {
        sqlx::query(
            "INSERT INTO request_quotas (key, paused_until) \
             VALUES ($1, clock_timestamp() + $2 * interval '1 microsecond') \
             ON CONFLICT (key) DO UPDATE \
             SET paused_until = greatest(request_quotas.paused_until, excluded.paused_until)",
        )
        .bind(&quota.key)
        .bind(micros(delay))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn usage(&self, quota: &Quota) -> Result<QuotaUsage> {
        let (now, in_use, paused_until): (DateTime<Utc>, i64, Option<DateTime<Utc>>) =
            sqlx::query_as(
                "SELECT c.t, \
                     (SELECT count(*) FROM request_quota_slots \
                      WHERE key = $1 AND frees_at > c.t), \
                     (SELECT paused_until FROM request_quotas WHERE key = $1) \
                 FROM (SELECT clock_timestamp() AS t) c",
            )
            .bind(&quota.key)
            .fetch_one(&self.pool)
            .await?;
        Ok(QuotaUsage {
            in_use: u32::try_from(in_use).unwrap_or(u32::MAX),
            paused_for: paused_until
                .filter(|until| *until > now)
                .map(|until| until_from(now, until)),
        })
    }
}

/// The time from `now` to `at` (zero when `at` has passed).
fn until_from(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or_default()
}
