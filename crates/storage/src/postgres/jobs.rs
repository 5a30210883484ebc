use async_trait::async_trait;
use backfill_domain::{BackfillJob, JobId, JobSpec, JobStatus, Symbol, TaskUnit};
use chrono::{NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{job_columns, notify, task_columns, JobRow, PgStorage, TaskRow};
use crate::error::{Error, Result};
use crate::rows::{job_counts, parse_job_status, task_counts, TotalsRow};
use crate::traits::JobRepository;
use crate::types::{CreatedJob, JobDetails, JobSummary};
use crate::views::{job_details, job_summary};

/// The aggregates of a job's tasks for listings; `covered` mirrors `Task::fraction_done`
/// (`DateRange::fraction_through` on millisecond timestamps for symbol tasks).
macro_rules! totals_select {
    () => {
        "SELECT j.*, a.* FROM (SELECT "
    };
}

const LIST_TAIL: &str = " LIMIT $1) j
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE t.status = 'queued') AS n_queued,
               count(*) FILTER (WHERE t.status = 'running') AS n_running,
               count(*) FILTER (WHERE t.status = 'succeeded') AS n_succeeded,
               count(*) FILTER (WHERE t.status = 'failed') AS n_failed,
               count(*) FILTER (WHERE t.status = 'cancelled') AS n_cancelled,
               coalesce(sum(t.candles_stored), 0)::bigint AS sum_stored,
               coalesce(sum(t.candles_fetched), 0)::bigint AS sum_fetched,
               coalesce(sum(t.pages), 0)::bigint AS sum_pages,
               coalesce(sum(t.requests), 0)::bigint AS sum_requests,
               coalesce(sum(t.bytes), 0)::bigint AS sum_bytes,
               coalesce(sum(CASE
                   WHEN t.status = 'succeeded' THEN 1.0::float8
                   WHEN t.day IS NOT NULL THEN CASE WHEN t.file_size > 0
                       THEN least(t.file_offset::float8 / t.file_size::float8, 1.0::float8)
                       ELSE 0.0::float8 END
                   WHEN t.checkpoint IS NULL OR t.checkpoint < j.range_from THEN 0.0::float8
                   WHEN t.checkpoint >= j.range_to THEN 1.0::float8
                   ELSE (floor(extract(epoch FROM t.checkpoint) * 1000)
                         - floor(extract(epoch FROM j.range_from) * 1000) + 1)::float8
                      / (floor(extract(epoch FROM j.range_to) * 1000)
                         - floor(extract(epoch FROM j.range_from) * 1000) + 1)::float8
               END), 0)::float8 AS covered
        FROM tasks t WHERE t.job_id = j.id
    ) a
    ORDER BY j.created_at DESC, j.id DESC";

#[derive(Debug, sqlx::FromRow)]
struct SummaryRow {
    #[sqlx(flatten)]
    job: JobRow,
    #[sqlx(flatten)]
    totals: TotalsRow,
}

#[async_trait]
impl JobRepository for PgStorage {
    async fn create_job<'a>(
        &self,
        spec: &JobSpec,
        idempotency_key: Option<&'a str>,
    ) -> Result<CreatedJob> {
        let mut tx = self.pool.begin().await?;
        let Some(job) = insert_job(&mut tx, spec, idempotency_key, self.simulated, None).await?
        else {
            // The key is taken (ON CONFLICT waited for its inserter to commit): return that job.
            tx.rollback().await?;
            let key = idempotency_key.unwrap_or_default();
            let row: JobRow = sqlx::query_as(concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs WHERE idempotency_key = $1"
            ))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::Conflict("idempotency key is being used concurrently".into()))?;
            let job = row.into_job()?;
            if &job.spec != spec {
                return Err(Error::key_reused(key));
            }
            return Ok(CreatedJob {
                job,
                created: false,
            });
        };
        notify(&mut tx).await?;
        tx.commit().await?;
        Ok(CreatedJob { job, created: true })
    }

    async fn get_job(&self, id: JobId) -> Result<JobDetails> {
        let mut conn = self.pool.acquire().await?;
        let job = fetch_job(&mut conn, id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::job_not_found(id))?;
        let rows: Vec<TaskRow> = sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE job_id = $1 ORDER BY id"
        ))
        .bind(id.as_uuid())
        .fetch_all(&mut *conn)
        .await?;
        let tasks = rows
            .into_iter()
            .map(TaskRow::into_task)
            .collect::<Result<Vec<_>>>()?;
        Ok(job_details(job, tasks))
    }

    async fn list_jobs(&self, limit: u32, status: Option<JobStatus>) -> Result<Vec<JobSummary>> {
        let head = concat!(totals_select!(), job_columns!(), " FROM jobs");
        let sql = match status {
            Some(_) => {
                format!("{head} WHERE status = $2 ORDER BY created_at DESC, id DESC{LIST_TAIL}")
            }
            None => format!("{head} ORDER BY created_at DESC, id DESC{LIST_TAIL}"),
        };
        let mut query = sqlx::query_as::<_, SummaryRow>(&sql).bind(i64::from(limit));
        if let Some(status) = status {
            query = query.bind(status.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let now = Utc::now();
        rows.into_iter()
            .map(|r| Ok(job_summary(r.job.into_job()?, &r.totals.totals()?, now)))
            .collect()
    }

    async fn cancel_job(&self, id: JobId) -> Result<BackfillJob> {
        let mut tx = self.pool.begin().await?;
        lock_tasks_of(&mut tx, id.as_uuid()).await?;
        let job = fetch_job(&mut tx, id.as_uuid(), true)
            .await?
            .ok_or_else(|| Error::job_not_found(id))?;
        job.status.transition(JobStatus::Cancelled)?;
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', next_attempt_at = NULL, finished_at = now(), \
             updated_at = now() WHERE job_id = $1 AND status = 'queued'",
        )
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        let row: JobRow = sqlx::query_as(concat!(
            "UPDATE jobs SET status = 'cancelled', finished_at = now(), \
             error = 'cancelled on request' WHERE id = $1 RETURNING ",
            job_columns!()
        ))
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.into_job()
    }

    async fn retry_job(&self, id: JobId) -> Result<BackfillJob> {
        let mut tx = self.pool.begin().await?;
        lock_tasks_of(&mut tx, id.as_uuid()).await?;
        let job = fetch_job(&mut tx, id.as_uuid(), true)
            .await?
            .ok_or_else(|| Error::job_not_found(id))?;
        job.status.transition(JobStatus::Queued)?;
        let requeued = sqlx::query(
            "UPDATE tasks SET status = 'queued', attempts = 0, next_attempt_at = NULL, \
             worker_id = NULL, lease_expires_at = NULL, finished_at = NULL, updated_at = now() \
             WHERE job_id = $1 AND status IN ('failed', 'cancelled')",
        )
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if requeued == 0 {
            return Err(Error::Conflict(format!(
                "job {id} has no failed or cancelled task to retry"
            )));
        }
        // Tasks still running (their workers have not noticed a cancellation yet) keep the job
        // running; otherwise it waits in the queue for its first claim.
        let row: JobRow = sqlx::query_as(concat!(
            "UPDATE jobs SET finished_at = NULL, error = NULL, status = CASE WHEN EXISTS \
             (SELECT 1 FROM tasks WHERE job_id = $1 AND status = 'running') \
             THEN 'running' ELSE 'queued' END WHERE id = $1 RETURNING ",
            job_columns!()
        ))
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        notify(&mut tx).await?;
        tx.commit().await?;
        row.into_job()
    }

    async fn count_jobs(&self) -> Result<Vec<(JobStatus, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        job_counts(rows)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Locks a job's tasks in id order: every transaction that changes both tasks and their job
/// locks tasks first, so they cannot deadlock.
async fn lock_tasks_of(conn: &mut PgConnection, job_id: Uuid) -> Result<()> {
    sqlx::query("SELECT id FROM tasks WHERE job_id = $1 ORDER BY id FOR UPDATE")
        .bind(job_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn fetch_job(
    conn: &mut PgConnection,
    id: Uuid,
    for_update: bool,
) -> Result<Option<BackfillJob>> {
    let sql = if for_update {
        concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1 FOR UPDATE"
        )
    } else {
        concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1")
    };
    let row: Option<JobRow> = sqlx::query_as(sql).bind(id).fetch_optional(conn).await?;
    row.map(JobRow::into_job).transpose()
}

/// Settles a queued or running job none of whose tasks is left to run ([`JobStatus::settle`]),
/// and returns the job's status when it has ended. Locks the job row first, so that of two
/// tasks finishing at once the later one sees the other's status.
pub(super) async fn settle_job(conn: &mut PgConnection, job_id: Uuid) -> Result<Option<JobStatus>> {
    let status: Option<(String, String)> =
        sqlx::query_as("SELECT status, source FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(job_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((status, source)) = status else {
        return Ok(None);
    };
    // Most calls find a task left to run: that is one probe of an index, whatever the job's size.
    let unfinished: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM tasks WHERE job_id = $1 AND status IN ('queued', 'running'))",
    )
    .bind(job_id)
    .fetch_one(&mut *conn)
    .await?;
    if unfinished {
        return Ok(None);
    }
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM tasks WHERE job_id = $1 GROUP BY status")
            .bind(job_id)
            .fetch_all(&mut *conn)
            .await?;
    let source = source.parse()?;
    let Some(settled) = parse_job_status(&status)?.settle(&task_counts(rows)?, source) else {
        return Ok(None);
    };
    if settled.changes {
        sqlx::query(
            "UPDATE jobs SET status = $2, error = $3, finished_at = now(), \
             started_at = coalesce(started_at, now()) WHERE id = $1",
        )
        .bind(job_id)
        .bind(settled.status.as_str())
        .bind(settled.error)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(settled.status))
}

/// Inserts a queued job and its tasks (one per symbol, or per trading day for a bulk source)
/// inside `tx`; `None` when `idempotency_key` is taken already. `schedule_id` marks a job that a
/// schedule created.
pub(super) async fn insert_job(
    tx: &mut PgConnection,
    spec: &JobSpec,
    idempotency_key: Option<&str>,
    simulated: bool,
    schedule_id: Option<i64>,
) -> Result<Option<BackfillJob>> {
    let symbols: Vec<&str> = spec.symbols().iter().map(Symbol::as_str).collect();
    let timeframe = spec.timeframe().to_string();
    let inserted: Option<JobRow> = sqlx::query_as(concat!(
        "INSERT INTO jobs (id, symbols, timeframe, range_from, range_to, adjusted, mode, \
         status, idempotency_key, simulated, source, source_reason, universe, schedule_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING ",
        job_columns!()
    ))
    .bind(JobId::new().as_uuid())
    .bind(&symbols)
    .bind(&timeframe)
    .bind(spec.range().from())
    .bind(spec.range().to())
    .bind(spec.adjusted())
    .bind(spec.mode().as_str())
    .bind(idempotency_key)
    .bind(simulated)
    .bind(spec.source().as_str())
    .bind(spec.source_reason())
    .bind(spec.universe().as_str())
    .bind(schedule_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = inserted else {
        return Ok(None);
    };
    if spec.source().is_bulk() {
        // One task per trading day; its series are created as their rows arrive.
        let days: Vec<NaiveDate> = spec.units().iter().filter_map(TaskUnit::day).collect();
        sqlx::query(
            "INSERT INTO tasks (job_id, day) \
             SELECT $1, d FROM unnest($2::date[]) WITH ORDINALITY AS u(d, pos) ORDER BY u.pos",
        )
        .bind(row.id)
        .bind(&days)
        .execute(&mut *tx)
        .await?;
        return Ok(Some(row.into_job()?));
    }
    // Series first, in a fixed order so that concurrent creations cannot deadlock.
    let mut sorted = symbols.clone();
    sorted.sort_unstable();
    sqlx::query(
        "INSERT INTO series (symbol, timeframe, adjusted) \
         SELECT s, $2, $3 FROM unnest($1::text[]) AS s ON CONFLICT DO NOTHING",
    )
    .bind(&sorted)
    .bind(&timeframe)
    .bind(spec.adjusted())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO tasks (job_id, series_id, symbol) \
         SELECT $1, s.id, u.symbol \
         FROM unnest($2::text[]) WITH ORDINALITY AS u(symbol, pos) \
         JOIN series s ON s.symbol = u.symbol AND s.timeframe = $3 AND s.adjusted = $4 \
         ORDER BY u.pos",
    )
    .bind(row.id)
    .bind(&symbols)
    .bind(&timeframe)
    .bind(spec.adjusted())
    .execute(&mut *tx)
    .await?;
    Ok(Some(row.into_job()?))
}
