//! What both backends do alike with schedules: their stored form, the overlap check, and the
//! idempotency key that makes each run's job unique.

use backfill_domain::{JobSpec, Name, ScheduleSpec, Sources, Symbol, Tickers};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// A schedule's spec as stored (JSON).
pub(crate) fn encode_spec(spec: &ScheduleSpec) -> Result<String> {
    serde_json::to_string(spec)
        .map_err(|e| Error::InvalidData(format!("schedule spec does not encode: {e}")))
}

/// A stored schedule spec, checked again.
pub(crate) fn decode_spec(json: &str) -> Result<ScheduleSpec> {
    serde_json::from_str(json)
        .map_err(|e| Error::InvalidData(format!("stored schedule spec is invalid: {e}")))
}

/// Stored symbols, checked again.
pub(crate) fn symbols_of(stored: &[String]) -> Result<Vec<Symbol>> {
    stored
        .iter()
        .map(|s| Symbol::parse(s).map_err(Error::from))
        .collect()
}

/// Why `spec` cannot join `others` (they would keep a series current twice), if it cannot;
/// `universes` holds the symbols of every universe they name.
pub(crate) fn overlapping(
    spec: &ScheduleSpec,
    others: &[ScheduleSpec],
    universes: &[(Name, Vec<Symbol>)],
) -> Option<String> {
    let lookup = |name: &Name| {
        universes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    others
        .iter()
        .filter(|o| o.name() != spec.name())
        .find_map(|other| {
            spec.overlap(other, lookup).map(|what| {
                format!(
                    "schedule {} overlaps schedule {} on {what}: change its symbols, \
                     timeframes or adjustment, or change {} instead",
                    spec.name(),
                    other.name(),
                    other.name()
                )
            })
        })
}

/// The jobs of a run of schedule `schedule_id` due at `due_at`, each with its idempotency key,
/// or why there are none (an `Err` inside: a universe that is gone, a source that cannot serve).
/// `universe` holds the named universe's symbols when the schedule names one.
pub(crate) fn run_jobs(
    schedule_id: i64,
    spec: &ScheduleSpec,
    due_at: DateTime<Utc>,
    universe: Option<Result<Vec<Symbol>>>,
    available: Sources,
) -> Result<std::result::Result<Vec<(JobSpec, String)>, String>> {
    let symbols = match (spec.tickers(), universe) {
        (Tickers::Symbols(list), _) => Some(list.clone()),
        (Tickers::Universe(_), Some(Ok(list))) => Some(list),
        (Tickers::Universe(_), Some(Err(Error::NotFound { what }))) => {
            return Ok(Err(format!("{what} not found")))
        }
        (Tickers::Universe(_), Some(Err(e))) => return Err(e),
        (Tickers::Universe(name), None) => return Ok(Err(format!("universe {name} was not read"))),
        (Tickers::All, _) => None,
    };
    match spec.jobs(due_at, symbols.as_deref(), available) {
        Ok(jobs) => Ok(Ok(jobs
            .into_iter()
            .map(|(job, _)| {
                let key = run_key(schedule_id, due_at, &job);
                (job, key)
            })
            .collect())),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// The idempotency key of a run's job: one job per schedule, due time and timeframe, whatever
/// the number of processes that fire it.
fn run_key(schedule_id: i64, due_at: DateTime<Utc>, job: &JobSpec) -> String {
    format!(
        "schedule:{schedule_id}:{}:{}",
        due_at.timestamp_millis(),
        job.timeframe()
    )
}
