use async_trait::async_trait;
use backfill_domain::{BackfillJob, JobId, JobSpec, JobStatus, Symbol, TaskUnit};
use chrono::Utc;
use sqlx::SqliteConnection;

use super::{job_columns, ms, now_ms, task_columns, JobRow, SqliteStorage, TaskRow};
use crate::error::{Error, Result};
use crate::rows::{job_counts, parse_job_status, task_counts, TotalsRow};
use crate::traits::JobRepository;
use crate::types::{CreatedJob, JobDetails, JobSummary};
use crate::views::{job_details, job_summary};

const LIST_TAIL: &str = " LIMIT ?1) j
    LEFT JOIN tasks t ON t.job_id = j.id
    GROUP BY j.id
    ORDER BY j.created_at DESC, j.id DESC";

#[derive(Debug, sqlx::FromRow)]
struct SummaryRow {
    #[sqlx(flatten)]
    job: JobRow,
    #[sqlx(flatten)]
    totals: TotalsRow,
}

#[async_trait]
impl JobRepository for SqliteStorage {
    async fn create_job<'a>(
        &self,
        spec: &JobSpec,
        idempotency_key: Option<&'a str>,
    ) -> Result<CreatedJob> {
        let mut w = self.write_tx().await?;
        if let Some(key) = idempotency_key {
            let existing: Option<JobRow> = sqlx::query_as(concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs WHERE idempotency_key = ?1"
            ))
            .bind(key)
            .fetch_optional(&mut *w.tx)
            .await?;
            if let Some(row) = existing {
                let job = row.into_job()?;
                if &job.spec != spec {
                    return Err(Error::key_reused(key));
                }
                return Ok(CreatedJob {
                    job,
                    created: false,
                });
            }
        }
        let job = insert_job(&mut w.tx, spec, idempotency_key, self.simulated, None)
            .await?
            .ok_or_else(|| Error::Conflict("idempotency key is being used concurrently".into()))?;
        w.tx.commit().await?;
        self.wake();
        Ok(CreatedJob { job, created: true })
    }

    async fn get_job(&self, id: JobId) -> Result<JobDetails> {
        let mut conn = self.pool.acquire().await?;
        let job = fetch_job(&mut conn, id)
            .await?
            .ok_or_else(|| Error::job_not_found(id))?;
        let rows: Vec<TaskRow> = sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE job_id = ?1 ORDER BY id"
        ))
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let tasks = rows
            .into_iter()
            .map(TaskRow::into_task)
            .collect::<Result<Vec<_>>>()?;
        Ok(job_details(job, tasks))
    }

    async fn list_jobs(&self, limit: u32, status: Option<JobStatus>) -> Result<Vec<JobSummary>> {
        let head = concat!(
            "SELECT j.*,
                coalesce(sum(t.status = 'queued'), 0) AS n_queued,
                coalesce(sum(t.status = 'running'), 0) AS n_running,
                coalesce(sum(t.status = 'succeeded'), 0) AS n_succeeded,
                coalesce(sum(t.status = 'failed'), 0) AS n_failed,
                coalesce(sum(t.status = 'cancelled'), 0) AS n_cancelled,
                coalesce(sum(t.candles_stored), 0) AS sum_stored,
                coalesce(sum(t.candles_fetched), 0) AS sum_fetched,
                coalesce(sum(t.pages), 0) AS sum_pages,
                coalesce(sum(t.requests), 0) AS sum_requests,
                coalesce(sum(t.bytes), 0) AS sum_bytes,
                CAST(coalesce(sum(CASE
                    WHEN t.status = 'succeeded' THEN 1.0
                    WHEN t.day IS NOT NULL THEN CASE WHEN t.file_size > 0
                        THEN min(CAST(t.file_offset AS REAL) / t.file_size, 1.0) ELSE 0.0 END
                    WHEN t.checkpoint IS NULL OR t.checkpoint < j.range_from THEN 0.0
                    WHEN t.checkpoint >= j.range_to THEN 1.0
                    ELSE CAST(t.checkpoint - j.range_from + 1 AS REAL)
                         / CAST(j.range_to - j.range_from + 1 AS REAL)
                END), 0.0) AS REAL) AS covered
            FROM (SELECT ",
            job_columns!(),
            " FROM jobs"
        );
        let sql = match status {
            Some(_) => {
                format!("{head} WHERE status = ?2 ORDER BY created_at DESC, id DESC{LIST_TAIL}")
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
        let mut w = self.write_tx().await?;
        let job = fetch_job(&mut w.tx, id)
            .await?
            .ok_or_else(|| Error::job_not_found(id))?;
        job.status.transition(JobStatus::Cancelled)?;
        let now = now_ms();
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', next_attempt_at = NULL, finished_at = ?2, \
             updated_at = ?2 WHERE job_id = ?1 AND status = 'queued'",
        )
        .bind(id.to_string())
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        let row: JobRow = sqlx::query_as(concat!(
            "UPDATE jobs SET status = 'cancelled', finished_at = ?2, \
             error = 'cancelled on request' WHERE id = ?1 RETURNING ",
            job_columns!()
        ))
        .bind(id.to_string())
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        row.into_job()
    }

    async fn retry_job(&self, id: JobId) -> Result<BackfillJob> {
        let mut w = self.write_tx().await?;
        let job = fetch_job(&mut w.tx, id)
            .await?
            .ok_or_else(|| Error::job_not_found(id))?;
        job.status.transition(JobStatus::Queued)?;
        let requeued = sqlx::query(
            "UPDATE tasks SET status = 'queued', attempts = 0, next_attempt_at = NULL, \
             worker_id = NULL, lease_expires_at = NULL, finished_at = NULL, updated_at = ?2 \
             WHERE job_id = ?1 AND status IN ('failed', 'cancelled')",
        )
        .bind(id.to_string())
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if requeued == 0 {
            return Err(Error::Conflict(format!(
                "job {id} has no failed or cancelled task to retry"
            )));
        }
        let row: JobRow = sqlx::query_as(concat!(
            "UPDATE jobs SET finished_at = NULL, error = NULL, status = CASE WHEN EXISTS \
             (SELECT 1 FROM tasks WHERE job_id = ?1 AND status = 'running') \
             THEN 'running' ELSE 'queued' END WHERE id = ?1 RETURNING ",
            job_columns!()
        ))
        .bind(id.to_string())
        .fetch_one(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        self.wake();
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

pub(super) async fn fetch_job(
    conn: &mut SqliteConnection,
    id: JobId,
) -> Result<Option<BackfillJob>> {
    let row: Option<JobRow> = sqlx::query_as(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE id = ?1"
    ))
    .bind(id.to_string())
    .fetch_optional(conn)
    .await?;
    row.map(JobRow::into_job).transpose()
}

/// Settles a queued or running job none of whose tasks is left to run ([`JobStatus::settle`]),
/// and returns the job's status when it has ended.
pub(super) async fn settle_job(
    conn: &mut SqliteConnection,
    job_id: &str,
) -> Result<Option<JobStatus>> {
    let status: Option<(String, String)> =
        sqlx::query_as("SELECT status, source FROM jobs WHERE id = ?1")
            .bind(job_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((status, source)) = status else {
        return Ok(None);
    };
    // Most calls find a task left to run: that is one probe of an index, whatever the job's size.
    let unfinished: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM tasks WHERE job_id = ?1 AND status IN ('queued', 'running'))",
    )
    .bind(job_id)
    .fetch_one(&mut *conn)
    .await?;
    if unfinished {
        return Ok(None);
    }
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM tasks WHERE job_id = ?1 GROUP BY status")
            .bind(job_id)
            .fetch_all(&mut *conn)
            .await?;
    let source = source.parse()?;
    let Some(settled) = parse_job_status(&status)?.settle(&task_counts(rows)?, source) else {
        return Ok(None);
    };
    if settled.changes {
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET status = ?2, error = ?3, finished_at = ?4, \
             started_at = coalesce(started_at, ?4) WHERE id = ?1",
        )
        .bind(job_id)
        .bind(settled.status.as_str())
        .bind(settled.error)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(settled.status))
}

/// Inserts a queued job and its tasks (one per symbol, or per trading day for a bulk source)
/// inside the write transaction; `None` when `idempotency_key` is taken already.
/// `schedule_id` marks a job that a schedule created.
pub(super) async fn insert_job(
    conn: &mut SqliteConnection,
    spec: &JobSpec,
    idempotency_key: Option<&str>,
    simulated: bool,
    schedule_id: Option<i64>,
) -> Result<Option<BackfillJob>> {
    let symbols: Vec<&str> = spec.symbols().iter().map(Symbol::as_str).collect();
    let symbols_json = serde_json::to_string(&symbols)
        .map_err(|e| Error::InvalidInput(format!("symbols do not encode: {e}")))?;
    let timeframe = spec.timeframe().to_string();
    let now = now_ms();
    let row: Option<JobRow> = sqlx::query_as(concat!(
        "INSERT INTO jobs (id, symbols, timeframe, range_from, range_to, adjusted, mode, \
         status, idempotency_key, created_at, simulated, source, source_reason, universe, \
         schedule_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING ",
        job_columns!()
    ))
    .bind(JobId::new().to_string())
    .bind(&symbols_json)
    .bind(&timeframe)
    .bind(ms(spec.range().from()))
    .bind(ms(spec.range().to()))
    .bind(spec.adjusted())
    .bind(spec.mode().as_str())
    .bind(idempotency_key)
    .bind(now)
    .bind(simulated)
    .bind(spec.source().as_str())
    .bind(spec.source_reason())
    .bind(spec.universe().as_str())
    .bind(schedule_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    // One task per trading day for a bulk source; its series are created as rows arrive.
    for day in spec.units().iter().filter_map(TaskUnit::day) {
        sqlx::query("INSERT INTO tasks (job_id, day, updated_at) VALUES (?1, ?2, ?3)")
            .bind(&row.id)
            .bind(day.to_string())
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    let per_symbol: &[&str] = if spec.source().is_bulk() {
        &[]
    } else {
        &symbols
    };
    for symbol in per_symbol {
        sqlx::query(
            "INSERT INTO series (symbol, timeframe, adjusted) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(symbol)
        .bind(&timeframe)
        .bind(spec.adjusted())
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO tasks (job_id, series_id, symbol, updated_at) \
             SELECT ?1, id, ?2, ?5 FROM series \
             WHERE symbol = ?2 AND timeframe = ?3 AND adjusted = ?4",
        )
        .bind(&row.id)
        .bind(symbol)
        .bind(&timeframe)
        .bind(spec.adjusted())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(row.into_job()?))
}
