use async_trait::async_trait;
use backfill_domain::{JobId, Name, NamedUniverse, ScheduleSpec, Sources, Symbol, Tickers};
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::SqliteConnection;

use super::jobs::insert_job;
use super::{dt, ms, now_ms, opt_dt, SqliteStorage};
use crate::error::{Error, Result};
use crate::schedules::{decode_spec, encode_spec, overlapping, run_jobs, symbols_of};
use crate::traits::ScheduleStore;
use crate::types::{Schedule, ScheduleRun};

/// A schedule row with its last run and its number of runs.
#[derive(Debug, sqlx::FromRow)]
struct ScheduleRow {
    id: i64,
    name: String,
    spec: String,
    paused: bool,
    next_due_at: Option<i64>,
    created_at: i64,
    runs: i64,
    last_due_at: Option<i64>,
    last_fired_at: Option<i64>,
    last_job_ids: Option<String>,
    last_error: Option<String>,
}

const SELECT_SCHEDULES: &str = "SELECT s.id, s.name, s.spec, s.paused, s.next_due_at, \
     s.created_at, (SELECT count(*) FROM schedule_runs r WHERE r.schedule_id = s.id) AS runs, \
     l.due_at AS last_due_at, l.fired_at AS last_fired_at, l.job_ids AS last_job_ids, \
     l.error AS last_error \
     FROM schedules s LEFT JOIN schedule_runs l ON l.schedule_id = s.id AND l.due_at = \
         (SELECT max(due_at) FROM schedule_runs r WHERE r.schedule_id = s.id)";

impl ScheduleRow {
    fn into_schedule(self) -> Result<Schedule> {
        let name = Name::parse(&self.name)?;
        let last_run = match (self.last_due_at, self.last_fired_at) {
            (Some(due_at), Some(fired_at)) => {
                let ids: Vec<String> =
                    serde_json::from_str(self.last_job_ids.as_deref().unwrap_or("[]"))
                        .map_err(|e| Error::InvalidData(format!("run job ids: {e}")))?;
                Some(ScheduleRun {
                    schedule: name,
                    due_at: dt(due_at)?,
                    fired_at: dt(fired_at)?,
                    job_ids: ids
                        .iter()
                        .map(|id| {
                            id.parse()
                                .map_err(|_| Error::InvalidData(format!("invalid job id {id:?}")))
                        })
                        .collect::<Result<Vec<JobId>>>()?,
                    error: self.last_error,
                })
            }
            _ => None,
        };
        Ok(Schedule {
            id: self.id,
            spec: decode_spec(&self.spec)?,
            paused: self.paused,
            next_due_at: opt_dt(self.next_due_at)?,
            last_run,
            runs: crate::rows::count(self.runs),
            created_at: dt(self.created_at)?,
        })
    }
}

#[async_trait]
impl ScheduleStore for SqliteStorage {
    async fn create_schedule(&self, spec: &ScheduleSpec) -> Result<Schedule> {
        let mut w = self.write_tx().await?;
        let others: Vec<String> = sqlx::query_scalar("SELECT spec FROM schedules ORDER BY name")
            .fetch_all(&mut *w.tx)
            .await?;
        let others = others
            .iter()
            .map(|s| decode_spec(s))
            .collect::<Result<Vec<_>>>()?;
        let mut universes = Vec::new();
        for s in others.iter().chain(std::iter::once(spec)) {
            if let Tickers::Universe(name) = s.tickers() {
                universes.push((name.clone(), universe_symbols(&mut w.tx, name).await?));
            }
        }
        if let Some(conflict) = overlapping(spec, &others, &universes) {
            return Err(Error::Conflict(conflict));
        }
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO schedules (name, spec, next_due_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(spec.name().as_str())
        .bind(encode_spec(spec)?)
        .bind(spec.trigger().next_after(Utc::now()).map(ms))
        .bind(now)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(Error::Conflict(format!(
                "a schedule named {} exists already",
                spec.name()
            )));
        }
        w.tx.commit().await?;
        self.get_schedule(spec.name()).await
    }

    async fn get_schedule(&self, name: &Name) -> Result<Schedule> {
        let row: Option<ScheduleRow> =
            sqlx::query_as(&format!("{SELECT_SCHEDULES} WHERE s.name = ?1"))
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
        let mut w = self.write_tx().await?;
        let deleted = sqlx::query("DELETE FROM schedules WHERE name = ?1")
            .bind(name.as_str())
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(Error::not_found(format!("schedule {name}")));
        }
        w.tx.commit().await?;
        Ok(())
    }

    async fn set_paused(&self, name: &Name, paused: bool) -> Result<Schedule> {
        let mut w = self.write_tx().await?;
        let spec: Option<String> = sqlx::query_scalar("SELECT spec FROM schedules WHERE name = ?1")
            .bind(name.as_str())
            .fetch_optional(&mut *w.tx)
            .await?;
        let spec = decode_spec(&spec.ok_or_else(|| Error::not_found(format!("schedule {name}")))?)?;
        let next_due = if paused {
            None
        } else {
            spec.trigger().next_after(Utc::now()).map(ms)
        };
        sqlx::query(
            "UPDATE schedules SET paused = ?2, \
             next_due_at = CASE WHEN ?2 THEN next_due_at ELSE ?3 END, updated_at = ?4 \
             WHERE name = ?1",
        )
        .bind(name.as_str())
        .bind(paused)
        .bind(next_due)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        self.get_schedule(name).await
    }

    async fn fire_due(&self, now: DateTime<Utc>, available: Sources) -> Result<Vec<ScheduleRun>> {
        let mut w = self.write_tx().await?;
        let due: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT id, spec, next_due_at FROM schedules \
             WHERE NOT paused AND next_due_at <= ?1 ORDER BY next_due_at, id LIMIT 64",
        )
        .bind(ms(now))
        .fetch_all(&mut *w.tx)
        .await?;
        let mut runs = Vec::new();
        let mut created = false;
        for (id, spec, next_due_at) in due {
            let spec = decode_spec(&spec)?;
            let next_due_at = dt(next_due_at)?;
            // The latest due time not after now: missed ones are caught up with one run.
            let due_at = spec
                .trigger()
                .last_due_in(next_due_at - TimeDelta::milliseconds(1), now)
                .unwrap_or(next_due_at);
            let fresh = sqlx::query(
                "INSERT INTO schedule_runs (schedule_id, due_at, fired_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(ms(due_at))
            .bind(ms(now))
            .execute(&mut *w.tx)
            .await?
            .rows_affected()
                == 1;
            if fresh {
                let (job_ids, error) =
                    fire_one(&mut w.tx, id, &spec, due_at, available, self.simulated).await?;
                created |= !job_ids.is_empty();
                let ids: Vec<String> = job_ids.iter().map(ToString::to_string).collect();
                sqlx::query(
                    "UPDATE schedule_runs SET job_ids = ?3, error = ?4 \
                     WHERE schedule_id = ?1 AND due_at = ?2",
                )
                .bind(id)
                .bind(ms(due_at))
                .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned()))
                .bind(&error)
                .execute(&mut *w.tx)
                .await?;
                runs.push(ScheduleRun {
                    schedule: spec.name().clone(),
                    due_at,
                    fired_at: now,
                    job_ids,
                    error,
                });
            }
            sqlx::query("UPDATE schedules SET next_due_at = ?2, updated_at = ?3 WHERE id = ?1")
                .bind(id)
                .bind(spec.trigger().next_after(now).map(ms))
                .bind(now_ms())
                .execute(&mut *w.tx)
                .await?;
        }
        w.tx.commit().await?;
        if created {
            self.wake();
        }
        Ok(runs)
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT min(next_due_at) FROM schedules WHERE NOT paused")
                .fetch_one(&self.pool)
                .await?;
        opt_dt(next)
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
        let now = now_ms();
        let mut w = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO universes (name, symbols, origin, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (name) DO UPDATE SET symbols = excluded.symbols, \
             origin = excluded.origin, updated_at = excluded.updated_at",
        )
        .bind(name.as_str())
        .bind(serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned()))
        .bind(origin)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        Ok(NamedUniverse {
            name: name.clone(),
            symbols: symbols.to_vec(),
            origin: origin.to_owned(),
            updated_at: dt(now)?,
        })
    }

    async fn get_universe(&self, name: &Name) -> Result<NamedUniverse> {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT symbols, origin, updated_at FROM universes WHERE name = ?1")
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await?;
        let (symbols, origin, updated_at) =
            row.ok_or_else(|| Error::not_found(format!("universe {name}")))?;
        Ok(NamedUniverse {
            name: name.clone(),
            symbols: decode_symbols(&symbols)?,
            origin,
            updated_at: dt(updated_at)?,
        })
    }

    async fn list_universes(&self) -> Result<Vec<NamedUniverse>> {
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT name, symbols, origin, updated_at FROM universes ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(name, symbols, origin, updated_at)| {
                Ok(NamedUniverse {
                    name: Name::parse(&name)?,
                    symbols: decode_symbols(&symbols)?,
                    origin,
                    updated_at: dt(updated_at)?,
                })
            })
            .collect()
    }

    async fn delete_universe(&self, name: &Name) -> Result<()> {
        let mut w = self.write_tx().await?;
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM schedules WHERE json_extract(spec, '$.tickers.universe') = ?1 \
             ORDER BY name",
        )
        .bind(name.as_str())
        .fetch_all(&mut *w.tx)
        .await?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "universe {name} is used by schedule {}",
                users.join(", ")
            )));
        }
        let deleted = sqlx::query("DELETE FROM universes WHERE name = ?1")
            .bind(name.as_str())
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(Error::not_found(format!("universe {name}")));
        }
        w.tx.commit().await?;
        Ok(())
    }
}

/// A universe's symbols as stored (a JSON array).
fn decode_symbols(json: &str) -> Result<Vec<Symbol>> {
    let list: Vec<String> = serde_json::from_str(json)
        .map_err(|e| Error::InvalidData(format!("universe symbols: {e}")))?;
    symbols_of(&list)
}

/// The symbols of a universe, inside the write transaction.
async fn universe_symbols(conn: &mut SqliteConnection, name: &Name) -> Result<Vec<Symbol>> {
    let symbols: Option<String> =
        sqlx::query_scalar("SELECT symbols FROM universes WHERE name = ?1")
            .bind(name.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    decode_symbols(&symbols.ok_or_else(|| Error::not_found(format!("universe {name}")))?)
}

/// Creates the jobs of one run; returns their ids, or why there are none.
async fn fire_one(
    conn: &mut SqliteConnection,
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
