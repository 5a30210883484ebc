use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use backfill_domain::{DateRange, Symbol, TaskStatus};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::jobs::settle_job;
use super::{
    dt, duration_ms, job_columns, ms, now_ms, task_columns, JobRow, SqliteStorage, TaskRow,
};
use crate::error::{Error, Result};
use crate::rows::parse_job_status;
use crate::traits::TaskQueue;
use crate::types::{
    ClaimRequest, ClaimedTask, DayCompletion, DaySeries, HeartbeatReport, Lease, Recorded,
};
use crate::views::claimed_tasks;

/// What a fenced write learns about its task.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct HeldLease {
    pub(super) job_id: String,
    /// The series and symbol of a symbol task; `None` for a day task.
    pub(super) series_id: Option<i64>,
    pub(super) symbol: Option<String>,
    /// The date of a day task (`YYYY-MM-DD`).
    pub(super) day: Option<String>,
    pub(super) attempts: i64,
    pub(super) job_status: String,
    pub(super) timeframe: String,
    pub(super) adjusted: bool,
}

/// Checks, inside a write transaction, that the lease is still held: same worker and token,
/// running, not expired. Fails with [`Error::LeaseLost`] otherwise.
pub(super) async fn check_lease(conn: &mut SqliteConnection, lease: &Lease) -> Result<HeldLease> {
    sqlx::query_as(
        "SELECT t.job_id, t.series_id, t.symbol, t.day, t.attempts, j.status AS job_status, \
             j.timeframe, j.adjusted \
         FROM tasks t JOIN jobs j ON j.id = t.job_id \
         WHERE t.id = ?1 AND t.worker_id = ?2 AND t.lease_token = ?3 AND t.status = 'running' \
           AND t.lease_expires_at > ?4",
    )
    .bind(lease.task_id.0)
    .bind(&lease.worker_id)
    .bind(lease.token)
    .bind(now_ms())
    .fetch_optional(conn)
    .await?
    .ok_or(Error::LeaseLost {
        task_id: lease.task_id,
    })
}

#[async_trait]
impl TaskQueue for SqliteStorage {
    async fn claim_tasks(&self, request: &ClaimRequest) -> Result<Vec<ClaimedTask>> {
        if request.max == 0 {
            return Ok(Vec::new());
        }
        let mut w = self.write_tx().await?;
        let now = now_ms();
        // Running tasks whose workers died on their last attempt: failed, not reclaimed.
        let mut exhausted: Vec<String> = sqlx::query_scalar(
            "UPDATE tasks SET status = 'failed', worker_id = NULL, lease_expires_at = NULL, \
             next_attempt_at = NULL, finished_at = ?1, updated_at = ?1, \
             last_error = 'the worker running attempt ' || attempts || ' of ' || ?2 || \
                 ' stopped without recording an outcome (its lease expired); no attempts left' \
             WHERE status = 'running' AND lease_expires_at <= ?1 AND attempts >= ?2 \
               AND job_id IN (SELECT id FROM jobs WHERE status IN ('queued', 'running')) \
             RETURNING job_id",
        )
        .bind(now)
        .bind(i64::from(request.max_attempts))
        .fetch_all(&mut *w.tx)
        .await?;
        exhausted.sort_unstable();
        exhausted.dedup();
        for job_id in &exhausted {
            settle_job(&mut w.tx, job_id).await?;
        }
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', worker_id = NULL, lease_expires_at = NULL, \
             finished_at = ?1, updated_at = ?1 \
             WHERE status = 'running' AND lease_expires_at <= ?1 \
               AND job_id IN (SELECT id FROM jobs WHERE status = 'cancelled')",
        )
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        let rows: Vec<TaskRow> = sqlx::query_as(concat!(
            "UPDATE tasks SET status = 'running', worker_id = ?2, lease_token = lease_token + 1,
                lease_expires_at = ?1 + ?3, attempts = attempts + 1, next_attempt_at = NULL,
                started_at = coalesce(started_at, ?1), finished_at = NULL, updated_at = ?1
             WHERE id IN (
                SELECT t.id FROM tasks t JOIN jobs j ON j.id = t.job_id
                WHERE j.status IN ('queued', 'running')
                  AND (?5 IS NULL OR t.job_id = ?5)
                  AND t.status IN ('queued', 'running')
                  AND ((t.status = 'queued' AND coalesce(t.next_attempt_at, ?1) <= ?1)
                    OR (t.status = 'running' AND t.lease_expires_at <= ?1))
                ORDER BY j.created_at, t.id
                LIMIT ?4)
             RETURNING ",
            task_columns!()
        ))
        .bind(now)
        .bind(&request.worker_id)
        .bind(duration_ms(request.lease_ttl))
        .bind(i64::from(request.max))
        .bind(request.only_job.map(|j| j.to_string()))
        .fetch_all(&mut *w.tx)
        .await?;
        if rows.is_empty() {
            w.tx.commit().await?;
            return Ok(Vec::new());
        }
        let job_ids: Vec<&str> = rows.iter().map(|r| r.job_id.as_str()).collect();
        let job_ids = serde_json::to_string(&job_ids)
            .map_err(|e| Error::InvalidData(format!("job ids do not encode: {e}")))?;
        let jobs: Vec<JobRow> = sqlx::query_as(concat!(
            "UPDATE jobs SET status = CASE WHEN status = 'queued' THEN 'running' ELSE status END, \
             started_at = coalesce(started_at, ?2) \
             WHERE id IN (SELECT value FROM json_each(?1)) RETURNING ",
            job_columns!()
        ))
        .bind(&job_ids)
        .bind(now)
        .fetch_all(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        let jobs = jobs
            .into_iter()
            .map(JobRow::into_job)
            .collect::<Result<Vec<_>>>()?;
        let tasks = rows
            .into_iter()
            .map(|r| {
                let token = r.lease_token;
                Ok((r.into_task()?, token))
            })
            .collect::<Result<Vec<_>>>()?;
        claimed_tasks(&request.worker_id, tasks, jobs)
    }

    async fn heartbeat(
        &self,
        worker_id: &str,
        leases: &[Lease],
        lease_ttl: Duration,
    ) -> Result<HeartbeatReport> {
        let mut report = HeartbeatReport::default();
        if leases.is_empty() {
            return Ok(report);
        }
        let mut w = self.write_tx().await?;
        let now = now_ms();
        for lease in leases {
            let held: Option<bool> = if lease.worker_id == worker_id {
                sqlx::query_scalar(
                    "UPDATE tasks SET lease_expires_at = ?4 + ?5, updated_at = ?4 \
                     WHERE id = ?1 AND lease_token = ?2 AND worker_id = ?3 \
                       AND status = 'running' AND lease_expires_at > ?4 \
                     RETURNING (SELECT status = 'cancelled' FROM jobs WHERE id = tasks.job_id)",
                )
                .bind(lease.task_id.0)
                .bind(lease.token)
                .bind(worker_id)
                .bind(now)
                .bind(duration_ms(lease_ttl))
                .fetch_optional(&mut *w.tx)
                .await?
            } else {
                None
            };
            match held {
                Some(true) => report.cancelled.push(lease.task_id),
                Some(false) => {}
                None => report.lost.push(lease.task_id),
            }
        }
        w.tx.commit().await?;
        Ok(report)
    }

    async fn complete_task(&self, lease: &Lease, covered: &[DateRange]) -> Result<Recorded> {
        let mut w = self.write_tx().await?;
        let held = check_lease(&mut w.tx, lease).await?;
        if !covered.is_empty() {
            let series_id = held.series_id.ok_or_else(|| {
                Error::InvalidInput(format!(
                    "task {} is a day task: it ends with complete_day",
                    lease.task_id
                ))
            })?;
            add_coverage(&mut w.tx, &[series_id], covered).await?;
        }
        if let (Some(series_id), true) = (held.series_id, held.adjusted) {
            super::actions::record_adjusted_fetch(&mut w.tx, &[series_id], &held.job_id).await?;
        }
        sqlx::query(
            "UPDATE tasks SET status = 'succeeded', worker_id = NULL, lease_expires_at = NULL, \
             next_attempt_at = NULL, finished_at = ?2, updated_at = ?2 WHERE id = ?1",
        )
        .bind(lease.task_id.0)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        let job_ended = settle_job(&mut w.tx, &held.job_id).await?;
        w.tx.commit().await?;
        Ok(Recorded {
            task: TaskStatus::Succeeded,
            job_ended,
        })
    }

    async fn complete_day(&self, lease: &Lease, completion: &DayCompletion) -> Result<Recorded> {
        let mut w = self.write_tx().await?;
        let held = check_lease(&mut w.tx, lease).await?;
        if held.day.is_none() {
            return Err(Error::InvalidInput(format!(
                "task {} is a symbol task: it ends with complete_task",
                lease.task_id
            )));
        }
        let now = now_ms();
        if let Some((covered, series)) = &completion.covered {
            let ids: Vec<i64> = match series {
                DaySeries::Listed(symbols) => {
                    let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
                    let names = serde_json::to_string(&names)
                        .map_err(|e| Error::InvalidInput(format!("symbols do not encode: {e}")))?;
                    sqlx::query(
                        "INSERT INTO series (symbol, timeframe, adjusted) \
                         SELECT value, ?2, ?3 FROM json_each(?1) WHERE true \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&names)
                    .bind(&held.timeframe)
                    .bind(held.adjusted)
                    .execute(&mut *w.tx)
                    .await?;
                    sqlx::query_scalar(
                        "SELECT id FROM series WHERE timeframe = ?2 AND adjusted = ?3 \
                           AND symbol IN (SELECT value FROM json_each(?1)) ORDER BY id",
                    )
                    .bind(&names)
                    .bind(&held.timeframe)
                    .bind(held.adjusted)
                    .fetch_all(&mut *w.tx)
                    .await?
                }
                DaySeries::Stored => {
                    sqlx::query_scalar(
                        "SELECT s.id FROM series s \
                         WHERE s.timeframe = ?1 AND s.adjusted = ?2 AND EXISTS (SELECT 1 \
                             FROM candles c WHERE c.series_id = s.id AND c.ts BETWEEN ?3 AND ?4) \
                         ORDER BY s.id",
                    )
                    .bind(&held.timeframe)
                    .bind(held.adjusted)
                    .bind(covered.from_ms())
                    .bind(covered.to_ms())
                    .fetch_all(&mut *w.tx)
                    .await?
                }
            };
            add_coverage(&mut w.tx, &ids, std::slice::from_ref(covered)).await?;
            if held.adjusted {
                super::actions::record_adjusted_fetch(&mut w.tx, &ids, &held.job_id).await?;
            }
        }
        if let Some(file) = &completion.file {
            sqlx::query(
                "INSERT INTO source_files (key, etag, size, rows, stored_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO UPDATE SET \
                 etag = excluded.etag, size = excluded.size, rows = excluded.rows, \
                 stored_at = excluded.stored_at",
            )
            .bind(&file.key)
            .bind(&file.etag)
            .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
            .bind(i64::try_from(file.rows).unwrap_or(i64::MAX))
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        }
        sqlx::query(
            "UPDATE tasks SET status = 'succeeded', worker_id = NULL, lease_expires_at = NULL, \
             next_attempt_at = NULL, note = ?2, requests = requests + ?3, bytes = bytes + ?4, \
             file_offset = coalesce(file_size, file_offset), finished_at = ?5, updated_at = ?5 \
             WHERE id = ?1",
        )
        .bind(lease.task_id.0)
        .bind(completion.note.as_deref())
        .bind(i64::from(completion.fetched.requests))
        .bind(i64::try_from(completion.fetched.bytes).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        let job_ended = settle_job(&mut w.tx, &held.job_id).await?;
        w.tx.commit().await?;
        Ok(Recorded {
            task: TaskStatus::Succeeded,
            job_ended,
        })
    }

    async fn fail_task(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        max_attempts: u32,
    ) -> Result<Recorded> {
        let mut w = self.write_tx().await?;
        let held = check_lease(&mut w.tx, lease).await?;
        let next = TaskStatus::after_failed_attempt(
            parse_job_status(&held.job_status)?,
            u32::try_from(held.attempts).unwrap_or(0),
            retry_at.is_some(),
            max_attempts,
        );
        let now = now_ms();
        sqlx::query(
            "UPDATE tasks SET status = ?2, last_error = ?3, worker_id = NULL, \
             lease_expires_at = NULL, next_attempt_at = ?4, \
             finished_at = CASE WHEN ?2 = 'queued' THEN NULL ELSE ?5 END, updated_at = ?5 \
             WHERE id = ?1",
        )
        .bind(lease.task_id.0)
        .bind(next.as_str())
        .bind(error)
        .bind(retry_at.filter(|_| next == TaskStatus::Queued).map(ms))
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        let job_ended = if next == TaskStatus::Queued {
            None
        } else {
            settle_job(&mut w.tx, &held.job_id).await?
        };
        w.tx.commit().await?;
        if next == TaskStatus::Queued {
            self.wake();
        }
        Ok(Recorded {
            task: next,
            job_ended,
        })
    }

    async fn cancel_task(&self, lease: &Lease, reason: &str) -> Result<Recorded> {
        let mut w = self.write_tx().await?;
        let held = check_lease(&mut w.tx, lease).await?;
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', last_error = ?2, worker_id = NULL, \
             lease_expires_at = NULL, next_attempt_at = NULL, finished_at = ?3, updated_at = ?3 \
             WHERE id = ?1",
        )
        .bind(lease.task_id.0)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        let job_ended = settle_job(&mut w.tx, &held.job_id).await?;
        w.tx.commit().await?;
        Ok(Recorded {
            task: TaskStatus::Cancelled,
            job_ended,
        })
    }

    async fn release_leases(&self, worker_id: &str) -> Result<u64> {
        let mut w = self.write_tx().await?;
        let released: Vec<String> = sqlx::query_scalar(
            "UPDATE tasks SET \
                 status = CASE WHEN (SELECT status FROM jobs WHERE id = tasks.job_id) = 'cancelled' \
                          THEN 'cancelled' ELSE 'queued' END, \
                 finished_at = CASE WHEN (SELECT status FROM jobs WHERE id = tasks.job_id) \
                               = 'cancelled' THEN ?2 END, \
                 attempts = max(attempts - 1, 0), worker_id = NULL, lease_expires_at = NULL, \
                 next_attempt_at = NULL, updated_at = ?2 \
             WHERE worker_id = ?1 AND status = 'running' \
             RETURNING status",
        )
        .bind(worker_id)
        .bind(now_ms())
        .fetch_all(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        if released.iter().any(|s| s == "queued") {
            self.wake();
        }
        Ok(released.len() as u64)
    }

    async fn wait_for_work(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Registered before looking at the tasks, so that no wake-up in between is missed.
        let notified = self.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = now_ms();
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT min(due) FROM (
                SELECT coalesce(t.next_attempt_at, ?1) AS due FROM tasks t
                  JOIN jobs j ON j.id = t.job_id
                 WHERE t.status = 'queued' AND j.status IN ('queued', 'running')
                UNION ALL
                SELECT t.lease_expires_at FROM tasks t JOIN jobs j ON j.id = t.job_id
                 WHERE t.status = 'running' AND j.status IN ('queued', 'running'))",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let wake_at = match due {
            Some(due) if due <= now => return Ok(()),
            Some(due) => {
                let wait = Duration::from_millis(u64::try_from(due - now).unwrap_or(0));
                deadline.min(tokio::time::Instant::now() + wait)
            }
            None => deadline,
        };
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(wake_at) => {}
        }
        Ok(())
    }
}

/// Merges `covered` into the stored coverage of each series of `series_ids` (inside the write
/// transaction).
async fn add_coverage(
    conn: &mut SqliteConnection,
    series_ids: &[i64],
    covered: &[DateRange],
) -> Result<()> {
    if series_ids.is_empty() || covered.is_empty() {
        return Ok(());
    }
    let ids = serde_json::to_string(series_ids)
        .map_err(|e| Error::InvalidInput(format!("series ids do not encode: {e}")))?;
    let stored: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT series_id, range_from, range_to FROM coverage \
         WHERE series_id IN (SELECT value FROM json_each(?1)) ORDER BY series_id, range_from",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_series: HashMap<i64, Vec<DateRange>> = HashMap::new();
    for (id, from, to) in stored {
        by_series
            .entry(id)
            .or_default()
            .push(DateRange::from_instants(dt(from)?, dt(to)?)?);
    }
    for &id in series_ids {
        let before = by_series.remove(&id).unwrap_or_default();
        let mut all = before.clone();
        all.extend_from_slice(covered);
        let merged = backfill_domain::merge_intervals(all);
        if merged == before {
            continue;
        }
        sqlx::query("DELETE FROM coverage WHERE series_id = ?1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        for r in merged {
            sqlx::query(
                "INSERT INTO coverage (series_id, range_from, range_to) VALUES (?1, ?2, ?3)",
            )
            .bind(id)
            .bind(r.from_ms())
            .bind(r.to_ms())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
