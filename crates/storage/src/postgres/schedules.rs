use async_trait::async_trait;
use backfill_domain::{JobId, Name, NamedUniverse, ScheduleSpec, Sources, Symbol, Tickers};
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::jobs::insert_job;
use super::{notify, PgStorage};
use crate::error::{Error, Result};
use crate::schedules::{decode_spec, encode_spec, overlapping, run_jobs, symbols_of};
use crate::traits::ScheduleStore;
use crate::types::{Schedule, ScheduleRun};

/// A schedule row with its last run and its number of runs.
#[derive(Debug, sqlx::FromRow)]
struct ScheduleRow {
    id: i64,
    name: String,
    spec: serde_json::Value,
    paused: bool,
    next_due_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    runs: i64,
    last_due_at: Option<DateTime<Utc>>,
    last_fired_at: Option<DateTime<Utc>>,
    last_job_ids: Option<Vec<Uuid>>,
    last_error: Option<String>,
}

const SELECT_SCHEDULES: &str = "SELECT s.id, s.name, s.spec, s.paused, s.next_due_at, \
     s.created_at, (SELECT count(*) FROM schedule_runs r WHERE r.schedule_id = s.id) AS runs, \
     l.due_at AS last_due_at, l.fired_at AS last_fired_at, l.job_ids AS last_job_ids, \
     l.error AS last_error \
     FROM schedules s LEFT JOIN LATERAL (SELECT * FROM schedule_runs r \
         WHERE r.schedule_id = s.id ORDER BY r.due_at DESC LIMIT 1) l ON true";

impl ScheduleRow {
    fn into_schedule(self) -> Result<Schedule> {
        let name = Name::parse(&self.name)?;
        let last_run = match (self.last_due_at, self.last_fired_at) {
            (Some(due_at), Some(fired_at)) => Some(ScheduleRun {
                schedule: name,
                due_at,
                fired_at,
                job_ids: self
                    .last_job_ids
                    .unwrap_or_default()
                    .into_iter()
                    .map(JobId::from_uuid)
                    .collect(),
                error: self.last_error,
            }),
            _ => None,
        };
        Ok(Schedule {
            id: self.id,
            spec: decode_spec(&self.spec.to_string())?,
            paused: self.paused,
            next_due_at: self.next_due_at,
            last_run,
            runs: crate::rows::count(self.runs),
            created_at: self.created_at,
        })
    }
}

#[async_trait]
impl ScheduleStore for PgStorage {
    async fn create_schedule(&self, spec: &ScheduleSpec) -> Result<Schedule> {
        let mut tx = self.pool.begin().await?;
        // One creation at a time, so that two overlapping schedules cannot both pass the check.
        sqlx::query("LOCK TABLE schedules IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        if let Tickers::Universe(name) = spec.tickers() {
            universe_symbols(&mut tx, name).await?;
        }
        let others: Vec<(String, serde_json::Value)> =
            sqlx::query_as("SELECT name, spec FROM schedules ORDER BY name")
                .fetch_all(&mut *tx)
                .await?;
        let mut universes = Vec::new();
        for (_, other) in &others {
            if let Tickers::Universe(name) = decode_spec(&other.to_string())?.tickers() {
                universes.push((name.clone(), universe_symbols(&mut tx, name).await?));
            }
        }
        if let Tickers::Universe(name) = spec.tickers() {
            universes.push((name.clone(), universe_symbols(&mut tx, name).await?));
        }
        let others = others
            .iter()
            .map(|(_, s)| decode_spec(&s.to_string()))
            .collect::<Result<Vec<_>>>()?;
        if let Some(conflict) = overlapping(spec, &others, &universes) {
            return Err(Error::Conflict(conflict));
        }
        let next_due = spec.trigger().next_after(Utc::now());
        let inserted = sqlx::query(
            "INSERT INTO schedules (name, spec, next_due_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(spec.name().as_str())
        .bind(serde_json::from_str::<serde_json::Value>(&encode_spec(spec)?).map_err(bad_spec)?)
        .bind(next_due)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(Error::Conflict(format!(
                "a schedule named {} exists already",
                spec.name()
            )));
        }
        tx.commit().await?;
        self.get_schedule(spec.name()).await
    }

    async fn get_schedule(&self, name: &Name) -> Result<Schedule> {
        let row: Option<ScheduleRow> =
            sqlx::query_as(&format!("{SELECT_SCHEDULES} WHERE s.name = $1"))
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or_else(|| Error::not_found(format!("schedule {name}")))?
            .into_schedule()
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>> {
        let rows: Vec<ScheduleRow> = sqlx::query_as(&format!("{SELECT_SCHEDULES} ORDER BY s.name"))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(ScheduleRow::into_schedule).collect()
    }

    async fn delete_schedule(&self, name: &Name) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM schedules WHERE name = $1")
            .bind(name.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(Error::not_found(format!("schedule {name}")));
        }
        Ok(())
    }

    async fn set_paused(&self, name: &Name, paused: bool) -> Result<Schedule> {
        let mut tx = self.pool.begin().await?;
        let spec: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT spec FROM schedules WHERE name = $1 FOR UPDATE")
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let spec = decode_spec(
            &spec
                .ok_or_else(|| Error::not_found(format!("schedule {name}")))?
                .to_string(),
        )?;
        let next_due = if paused {
            None
        } else {
            spec.trigger().next_after(Utc::now())
        };
        sqlx::query(
            "UPDATE schedules SET paused = $2, \
             next_due_at = CASE WHEN $2 THEN next_due_at ELSE $3 END, updated_at = now() \
             WHERE name = $1",
        )
        .bind(name.as_str())
        .bind(paused)
        .bind(next_due)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get_schedule(name).await
    }

    async fn fire_due(&self, now: DateTime<Utc>, available: Sources) -> Result<Vec<ScheduleRun>> {
        let mut tx = self.pool.begin().await?;
        // Schedules that another process is firing are skipped, not waited for.
        let due: Vec<(i64, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, spec, next_due_at FROM schedules \
             WHERE NOT paused AND next_due_at <= $1 \
             ORDER BY next_due_at, id LIMIT 64 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut runs = Vec::new();
        let mut created = false;
        for (id, spec, next_due_at) in due {
            let spec = decode_spec(&spec.to_string())?;
            // The latest due time not after now: missed ones are caught up with one run.
            let due_at = spec
                .trigger()
                .last_due_in(next_due_at - TimeDelta::milliseconds(1), now)
                .unwrap_or(next_due_at);
            let fresh = sqlx::query(
                "INSERT INTO schedule_runs (schedule_id, due_at) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(due_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if fresh {
                let (job_ids, error) =
                    fire_one(&mut tx, id, &spec, due_at, available, self.simulated).await?;
                created |= !job_ids.is_empty();
                let uuids: Vec<Uuid> = job_ids.iter().map(JobId::as_uuid).collect();
                sqlx::query(
                    "UPDATE schedule_runs SET job_ids = $3, error = $4 \
                     WHERE schedule_id = $1 AND due_at = $2",
                )
                .bind(id)
                .bind(due_at)
                .bind(&uuids)
                .bind(&error)
                .execute(&mut *tx)
                .await?;
                runs.push(ScheduleRun {
                    schedule: spec.name().clone(),
                    due_at,
                    fired_at: now,
                    job_ids,
                    error,
                });
            }
            sqlx::query("UPDATE schedules SET next_due_at = $2, updated_at = now() WHERE id = $1")
                .bind(id)
                .bind(spec.trigger().next_after(now))
                .execute(&mut *tx)
                .await?;
        }
        if created {
            notify(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(runs)
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(
            sqlx::query_scalar("SELECT min(next_due_at) FROM schedules WHERE NOT paused")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn put_universe(
        &self,
        name: &Name,
        symbols: &[Symbol],
        origin: &str,
    ) -> Result<NamedUniverse> {
        if symbols.is_empty() {
            return Err(Error::InvalidInput(format!(
                "universe {name} would hold no symbol"
            )));
        }
        let list: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        let updated_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO universes (name, symbols, origin, updated_at) VALUES ($1, $2, $3, now()) \
             ON CONFLICT (name) DO UPDATE SET symbols = excluded.symbols, \
             origin = excluded.origin, updated_at = excluded.updated_at RETURNING updated_at",
        )
        .bind(name.as_str())
        .bind(&list)
        .bind(origin)
        .fetch_one(&self.pool)
        .await?;
        Ok(NamedUniverse {
            name: name.clone(),
            symbols: symbols.to_vec(),
            origin: origin.to_owned(),
            updated_at,
        })
    }

    async fn get_universe(&self, name: &Name) -> Result<NamedUniverse> {
        let row: Option<(Vec<String>, String, DateTime<Utc>)> =
            sqlx::query_as("SELECT symbols, origin, updated_at FROM universes WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await?;
        let (symbols, origin, updated_at) =
            row.ok_or_else(|| Error::not_found(format!("universe {name}")))?;
        Ok(NamedUniverse {
            name: name.clone(),
            symbols: symbols_of(&symbols)?,
            origin,
            updated_at,
        })
    }

    async fn list_universes(&self) -> Result<Vec<NamedUniverse>> {
        let rows: Vec<(String, Vec<String>, String, DateTime<Utc>)> =
            sqlx::query_as("SELECT name, symbols, origin, updated_at FROM universes ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(name, symbols, origin, updated_at)| {
                Ok(NamedUniverse {
                    name: Name::parse(&name)?,
                    symbols: symbols_of(&symbols)?,
                    origin,
                    updated_at,
                })
            })
            .collect()
    }

    async fn delete_universe(&self, name: &Name) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM schedules WHERE spec -> 'tickers' ->> 'universe' = $1 ORDER BY name",
        )
        .bind(name.as_str())
        .fetch_all(&mut *tx)
        .await?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "universe {name} is used by schedule {}",
                users.join(", ")
            )));
        }
        let deleted = sqlx::query("DELETE FROM universes WHERE name = $1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(Error::not_found(format!("universe {name}")));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The symbols of a universe, inside a transaction.
async fn universe_symbols(conn: &mut PgConnection, name: &Name) -> Result<Vec<Symbol>> {
    let symbols: Option<Vec<String>> =
        sqlx::query_scalar("SELECT symbols FROM universes WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    symbols_of(&symbols.ok_or_else(|| Error::not_found(format!("universe {name}")))?)
}

/// Creates the jobs of one run; returns their ids, or why there are none.
async fn fire_one(
    conn: &mut PgConnection,
    schedule_id: i64,
    spec: &ScheduleSpec,
    due_at: DateTime<Utc>,
    available: Sources,
    simulated: bool,
) -> Result<(Vec<JobId>, Option<String>)> {
    let universe = match spec.tickers() {
        Tickers::Universe(name) => Some(universe_symbols(conn, name).await),
        _ => None,
    };
    let jobs = match run_jobs(schedule_id, spec, due_at, universe, available)? {
        Ok(jobs) => jobs,
        Err(why) => return Ok((Vec::new(), Some(why))),
    };
    let mut ids = Vec::with_capacity(jobs.len());
    for (job, key) in jobs {
        if let Some(created) =
            insert_job(conn, &job, Some(&key), simulated, Some(schedule_id)).await?
        {
            ids.push(created.id);
        }
    }
    Ok((ids, None))
}

fn bad_spec(e: serde_json::Error) -> Error {
    Error::InvalidData(format!("schedule spec does not encode: {e}"))
}
