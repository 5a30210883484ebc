use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use backfill_domain::{DateRange, Symbol, TaskStatus};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::jobs::settle_job;
use super::{job_columns, micros, notify, task_columns, JobRow, PgStorage, TaskRow, WAKE_CHANNEL};
use crate::error::{Error, Result};
use crate::rows::parse_job_status;
use crate::traits::TaskQueue;
use crate::types::{
    ClaimRequest, ClaimedTask, DayCompletion, DaySeries, HeartbeatReport, Lease, Recorded,
};
use crate::views::claimed_tasks;

/// What a fenced write learns about its task while locking it.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct HeldLease {
    pub(super) job_id: Uuid,
    /// The series and symbol of a symbol task; `None` for a day task.
    pub(super) series_id: Option<i32>,
    pub(super) symbol: Option<String>,
    /// The date of a day task.
    pub(super) day: Option<NaiveDate>,
    pub(super) attempts: i32,
    pub(super) job_status: String,
    pub(super) timeframe: String,
    pub(super) adjusted: bool,
}

/// Locks the task of `lease` if the lease is still held: same worker and token, running, and
/// not expired. Fails with [`Error::LeaseLost`] otherwise.
pub(super) async fn lock_lease(conn: &mut PgConnection, lease: &Lease) -> Result<HeldLease> {
    sqlx::query_as(
        "SELECT t.job_id, t.series_id, t.symbol, t.day, t.attempts, j.status AS job_status, \
             j.timeframe, j.adjusted \
         FROM tasks t JOIN jobs j ON j.id = t.job_id \
         WHERE t.id = $1 AND t.worker_id = $2 AND t.lease_token = $3 AND t.status = 'running' \
           AND t.lease_expires_at > now() \
         FOR UPDATE OF t",
    )
    .bind(lease.task_id.0)
    .bind(&lease.worker_id)
    .bind(lease.token)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::LeaseLost {
        task_id: lease.task_id,
    })
}

#[async_trait]
impl TaskQueue for PgStorage {
    async fn claim_tasks(&self, request: &ClaimRequest) -> Result<Vec<ClaimedTask>> {
        if request.max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        // Running tasks whose workers died on their last attempt: failed, not reclaimed.
        let mut exhausted: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE tasks SET status = 'failed', worker_id = NULL, lease_expires_at = NULL, \
             next_attempt_at = NULL, finished_at = now(), updated_at = now(), \
             last_error = 'the worker running attempt ' || attempts || ' of ' || $1 || \
                 ' stopped without recording an outcome (its lease expired); no attempts left' \
             WHERE id IN (SELECT t.id FROM tasks t JOIN jobs j ON j.id = t.job_id \
               WHERE j.status IN ('queued', 'running') AND t.status = 'running' \
                 AND t.lease_expires_at <= now() AND t.attempts >= $1 \
               FOR UPDATE OF t SKIP LOCKED) \
             RETURNING job_id",
        )
        .bind(i32::try_from(request.max_attempts).unwrap_or(i32::MAX))
        .fetch_all(&mut *tx)
        .await?;
        exhausted.sort_unstable();
        exhausted.dedup();
        for job_id in exhausted {
            settle_job(&mut tx, job_id).await?;
        }
        // Running tasks of cancelled jobs whose workers died are done: cancel them.
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', worker_id = NULL, lease_expires_at = NULL, \
             finished_at = now(), updated_at = now() \
             WHERE id IN (SELECT t.id FROM tasks t JOIN jobs j ON j.id = t.job_id \
               WHERE j.status = 'cancelled' AND t.status = 'running' \
                 AND t.lease_expires_at <= now() FOR UPDATE OF t SKIP LOCKED)",
        )
        .execute(&mut *tx)
        .await?;
        let rows: Vec<TaskRow> = sqlx::query_as(concat!(
            "WITH picked AS (
                SELECT t.id AS pick_id FROM tasks t JOIN jobs j ON j.id = t.job_id
                WHERE j.status IN ('queued', 'running')
                  AND ($4::uuid IS NULL OR t.job_id = $4)
                  AND t.status IN ('queued', 'running')
                  AND ((t.status = 'queued'
                        AND (t.next_attempt_at IS NULL OR t.next_attempt_at <= now()))
                    OR (t.status = 'running' AND t.lease_expires_at <= now()))
                ORDER BY j.created_at, t.id
                LIMIT $2
                FOR UPDATE OF t SKIP LOCKED
            )
            UPDATE tasks SET status = 'running', worker_id = $1, lease_token = lease_token + 1,
                lease_expires_at = now() + $3 * interval '1 microsecond',
                attempts = attempts + 1, next_attempt_at = NULL,
                started_at = coalesce(started_at, now()), finished_at = NULL, updated_at = now()
            FROM picked WHERE tasks.id = picked.pick_id
            RETURNING ",
            task_columns!()
        ))
        .bind(&request.worker_id)
        .bind(i64::from(request.max))
        .bind(micros(request.lease_ttl))
        .bind(request.only_job.map(|j| j.as_uuid()))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let job_ids: Vec<Uuid> = rows.iter().map(|r| r.job_id).collect();
        let jobs: Vec<JobRow> = sqlx::query_as(concat!(
            "UPDATE jobs SET status = CASE WHEN status = 'queued' THEN 'running' ELSE status END, \
             started_at = coalesce(started_at, now()) WHERE id = ANY($1) RETURNING ",
            job_columns!()
        ))
        .bind(&job_ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
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
        if leases.is_empty() {
            return Ok(HeartbeatReport::default());
        }
        let mut sorted: Vec<&Lease> = leases.iter().collect();
        sorted.sort_by_key(|l| l.task_id);
        let ids: Vec<i64> = sorted.iter().map(|l| l.task_id.0).collect();
        let tokens: Vec<i64> = sorted.iter().map(|l| l.token).collect();
        let held: Vec<(i64, bool)> = sqlx::query_as(
            "UPDATE tasks t SET lease_expires_at = now() + $4 * interval '1 microsecond', \
                 updated_at = now() \
             FROM unnest($2::bigint[], $3::bigint[]) AS l(id, token) \
             WHERE t.id = l.id AND t.lease_token = l.token AND t.worker_id = $1 \
               AND t.status = 'running' AND t.lease_expires_at > now() \
             RETURNING t.id, EXISTS (SELECT 1 FROM jobs j \
                 WHERE j.id = t.job_id AND j.status = 'cancelled')",
        )
        .bind(worker_id)
        .bind(&ids)
        .bind(&tokens)
        .bind(micros(lease_ttl))
        .fetch_all(&self.pool)
        .await?;
        Ok(report(leases, worker_id, &held))
    }

    async fn complete_task(&self, lease: &Lease, covered: &[DateRange]) -> Result<Recorded> {
        let mut tx = self.pool.begin().await?;
        let held = lock_lease(&mut tx, lease).await?;
        if !covered.is_empty() {
            let series_id = held.series_id.ok_or_else(|| {
                Error::InvalidInput(format!(
                    "task {} is a day task: it ends with complete_day",
                    lease.task_id
                ))
            })?;
            add_coverage(&mut tx, &[series_id], covered).await?;
        }
        if let (Some(series_id), true) = (held.series_id, held.adjusted) {
            super::actions::record_adjusted_fetch(&mut tx, &[series_id], held.job_id).await?;
        }
        sqlx::query(
            "UPDATE tasks SET status = 'succeeded', worker_id = NULL, lease_expires_at = NULL, \
             next_attempt_at = NULL, finished_at = now(), updated_at = now() WHERE id = $1",
        )
        .bind(lease.task_id.0)
        .execute(&mut *tx)
        .await?;
        let job_ended = settle_job(&mut tx, held.job_id).await?;
        tx.commit().await?;
        Ok(Recorded {
            task: TaskStatus::Succeeded,
            job_ended,
        })
    }

    async fn complete_day(&self, lease: &Lease, completion: &DayCompletion) -> Result<Recorded> {
        let mut tx = self.pool.begin().await?;
        let held = lock_lease(&mut tx, lease).await?;
        if held.day.is_none() {
            return Err(Error::InvalidInput(format!(
                "task {} is a symbol task: it ends with complete_task",
                lease.task_id
            )));
        }
        if let Some((covered, series)) = &completion.covered {
            let ids: Vec<i32> = match series {
                DaySeries::Listed(symbols) => {
                    let mut names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
                    names.sort_unstable();
                    names.dedup();
                    sqlx::query(
                        "INSERT INTO series (symbol, timeframe, adjusted) \
                         SELECT s, $2, $3 FROM unnest($1::text[]) AS s ORDER BY s \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&names)
                    .bind(&held.timeframe)
                    .bind(held.adjusted)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query_scalar(
                        "SELECT id FROM series \
                         WHERE symbol = ANY($1) AND timeframe = $2 AND adjusted = $3 ORDER BY id",
                    )
                    .bind(&names)
                    .bind(&held.timeframe)
                    .bind(held.adjusted)
                    .fetch_all(&mut *tx)
                    .await?
                }
                DaySeries::Stored => {
                    sqlx::query_scalar(
                        "SELECT s.id FROM series s \
                         WHERE s.timeframe = $1 AND s.adjusted = $2 AND EXISTS (SELECT 1 \
                             FROM candles c WHERE c.series_id = s.id AND c.ts >= $3 \
                               AND c.ts <= $4) \
                         ORDER BY s.id",
                    )
                    .bind(&held.timeframe)
                    .bind(held.adjusted)
                    .bind(covered.from())
                    .bind(covered.to())
                    .fetch_all(&mut *tx)
                    .await?
                }
            };
            add_coverage(&mut tx, &ids, std::slice::from_ref(covered)).await?;
            if held.adjusted {
                super::actions::record_adjusted_fetch(&mut tx, &ids, held.job_id).await?;
            }
        }
        if let Some(file) = &completion.file {
            sqlx::query(
                "INSERT INTO source_files (key, etag, size, rows, stored_at) \
                 VALUES ($1, $2, $3, $4, now()) ON CONFLICT (key) DO UPDATE SET \
                 etag = excluded.etag, size = excluded.size, rows = excluded.rows, \
                 stored_at = excluded.stored_at",
            )
            .bind(&file.key)
            .bind(&file.etag)
            .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
            .bind(i64::try_from(file.rows).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE tasks SET status = 'succeeded', worker_id = NULL, lease_expires_at = NULL, \
             next_attempt_at = NULL, note = $2, requests = requests + $3, bytes = bytes + $4, \
             file_offset = coalesce(file_size, file_offset), finished_at = now(), \
             updated_at = now() WHERE id = $1",
        )
        .bind(lease.task_id.0)
        .bind(completion.note.as_deref())
        .bind(i64::from(completion.fetched.requests))
        .bind(i64::try_from(completion.fetched.bytes).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        let job_ended = settle_job(&mut tx, held.job_id).await?;
        tx.commit().await?;
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
        let mut tx = self.pool.begin().await?;
        let held = lock_lease(&mut tx, lease).await?;
        let next = TaskStatus::after_failed_attempt(
            parse_job_status(&held.job_status)?,
            u32::try_from(held.attempts).unwrap_or(0),
            retry_at.is_some(),
            max_attempts,
        );
        sqlx::query(
            "UPDATE tasks SET status = $2, last_error = $3, worker_id = NULL, \
             lease_expires_at = NULL, next_attempt_at = $4, \
             finished_at = CASE WHEN $2 = 'queued' THEN NULL ELSE now() END, updated_at = now() \
             WHERE id = $1",
        )
        .bind(lease.task_id.0)
        .bind(next.as_str())
        .bind(error)
        .bind(if next == TaskStatus::Queued {
            retry_at
        } else {
            None
        })
        .execute(&mut *tx)
        .await?;
        let job_ended = if next == TaskStatus::Queued {
            notify(&mut tx).await?;
            None
        } else {
            settle_job(&mut tx, held.job_id).await?
        };
        tx.commit().await?;
        Ok(Recorded {
            task: next,
            job_ended,
        })
    }

    async fn cancel_task(&self, lease: &Lease, reason: &str) -> Result<Recorded> {
        let mut tx = self.pool.begin().await?;
        let held = lock_lease(&mut tx, lease).await?;
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', last_error = $2, worker_id = NULL, \
             lease_expires_at = NULL, next_attempt_at = NULL, finished_at = now(), \
             updated_at = now() WHERE id = $1",
        )
        .bind(lease.task_id.0)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        let job_ended = settle_job(&mut tx, held.job_id).await?;
        tx.commit().await?;
        Ok(Recorded {
            task: TaskStatus::Cancelled,
            job_ended,
        })
    }

    async fn release_leases(&self, worker_id: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let released: Vec<(String,)> = sqlx::query_as(
            "UPDATE tasks t SET \
                 status = CASE WHEN j.status = 'cancelled' THEN 'cancelled' ELSE 'queued' END, \
                 finished_at = CASE WHEN j.status = 'cancelled' THEN now() END, \
                 attempts = greatest(t.attempts - 1, 0), worker_id = NULL, \
                 lease_expires_at = NULL, next_attempt_at = NULL, updated_at = now() \
             FROM jobs j WHERE j.id = t.job_id AND t.worker_id = $1 AND t.status = 'running' \
             RETURNING t.status",
        )
        .bind(worker_id)
        .fetch_all(&mut *tx)
        .await?;
        if released.iter().any(|(s,)| s == "queued") {
            notify(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(released.len() as u64)
    }

    async fn wait_for_work(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let Ok(mut guard) = tokio::time::timeout_at(deadline, self.listener.lock()).await else {
            // Another caller is waiting on the listener; this one has waited long enough.
            return Ok(());
        };
        if guard.is_none() {
            let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
            listener.listen(WAKE_CHANNEL).await?;
            *guard = Some(listener);
        }
        let Some(listener) = guard.as_mut() else {
            return Ok(());
        };
        // Forget wake-ups that arrived while nobody waited: the check below sees their work.
        while let Ok(Ok(Some(_))) = tokio::time::timeout(Duration::ZERO, listener.try_recv()).await
        {
        }
        let due_in: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM least(
                 (SELECT min(coalesce(t.next_attempt_at, now())) FROM tasks t
                    JOIN jobs j ON j.id = t.job_id
                   WHERE t.status = 'queued' AND j.status IN ('queued', 'running')),
                 (SELECT min(t.lease_expires_at) FROM tasks t JOIN jobs j ON j.id = t.job_id
                   WHERE t.status = 'running' AND j.status IN ('queued', 'running'))
             ) - now())::float8",
        )
        .fetch_one(&self.pool)
        .await?;
        let wake_at = match due_in {
            Some(s) if s <= 0.0 => return Ok(()),
            Some(s) => {
                deadline.min(tokio::time::Instant::now() + Duration::from_secs_f64(s.min(1e9)))
            }
            None => deadline,
        };
        match tokio::time::timeout_at(wake_at, listener.try_recv()).await {
            Ok(Ok(_)) | Err(_) => Ok(()),
            Ok(Err(err)) => {
                // Open a fresh listener on the next wait.
                *guard = None;
                Err(err.into())
            }
        }
    }
}

/// Splits the leases asked about into lost ones and held ones whose job was cancelled.
fn report(leases: &[Lease], worker_id: &str, held: &[(i64, bool)]) -> HeartbeatReport {
    let held: HashMap<i64, bool> = held.iter().copied().collect();
    let mut report = HeartbeatReport::default();
    for lease in leases {
        match held.get(&lease.task_id.0) {
            Some(true) if lease.worker_id == worker_id => report.cancelled.push(lease.task_id),
            Some(_) if lease.worker_id == worker_id => {}
            _ => report.lost.push(lease.task_id),
        }
    }
    report
}

/// Merges `covered` into the stored coverage of each series of `series_ids` (sorted by id).
/// Locks those series rows first, in id order, so that concurrent merges of a series run one
/// after the other and cannot deadlock.
async fn add_coverage(
    conn: &mut PgConnection,
    series_ids: &[i32],
    covered: &[DateRange],
) -> Result<()> {
    if series_ids.is_empty() || covered.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT id FROM series WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(series_ids)
        .execute(&mut *conn)
        .await?;
    let stored: Vec<(i32, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT series_id, range_from, range_to FROM coverage WHERE series_id = ANY($1) \
         ORDER BY series_id, range_from",
    )
    .bind(series_ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_series: HashMap<i32, Vec<DateRange>> = HashMap::new();
    for (id, from, to) in stored {
        by_series
            .entry(id)
            .or_default()
            .push(DateRange::from_instants(from, to)?);
    }
    let (mut changed, mut ids, mut froms, mut tos) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &id in series_ids {
        let before = by_series.remove(&id).unwrap_or_default();
        let mut all = before.clone();
        all.extend_from_slice(covered);
        let merged = backfill_domain::merge_intervals(all);
        if merged != before {
            changed.push(id);
            for r in merged {
                ids.push(id);
                froms.push(r.from());
                tos.push(r.to());
            }
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM coverage WHERE series_id = ANY($1)")
        .bind(&changed)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO coverage (series_id, range_from, range_to) \
         SELECT * FROM unnest($1::int4[], $2::timestamptz[], $3::timestamptz[])",
    )
    .bind(&ids)
    .bind(&froms)
    .bind(&tos)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
