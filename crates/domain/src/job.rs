use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{excerpt, Error, Result};
use crate::source::{choose, choose_default, costs, weekdays, Chosen};
use crate::{DateRange, Source, SourceChoice, SourceCost, Sources, Symbol, Timeframe};

/// The most symbols one job may hold when it fetches symbol by symbol (the rest source).
pub const MAX_SYMBOLS_PER_JOB: usize = 1_000;
/// The most symbols a job of a bulk source (flatfiles, grouped) may list: its tasks are days,
/// and a symbol only filters the rows kept.
pub const MAX_SYMBOLS_PER_BULK_JOB: usize = 20_000;
/// The most days (tasks) a job of a bulk source may span: about forty years of weekdays.
pub const MAX_DAYS_PER_JOB: usize = 10_000;

/// A job's identifier: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
pub struct JobId(Uuid);

impl JobId {
    /// A fresh, time-ordered id.
    #[expect(
        clippy::new_without_default,
        reason = "a new id is not a default value"
    )]
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, uuid::Error> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A task's identifier, assigned by storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskId(pub i64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a backfill fetches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BackfillMode {
    /// Only the parts of the range not already stored.
    #[default]
    Missing,
    /// The whole range again, replacing what is stored (after a split, say).
    Full,
}

impl BackfillMode {
    /// Every mode.
    pub const ALL: &'static [BackfillMode] = &[Self::Missing, Self::Full];

    /// The snake_case name used in JSON, SQL and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Full => "full",
        }
    }
}

impl fmt::Display for BackfillMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackfillMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| Error::InvalidJob(format!("unknown backfill mode {:?}", excerpt(s))))
    }
}

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident, $entity:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every status.
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            /// The snake_case name used in JSON, SQL and URLs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Checks that the state machine allows `self -> next`.
            pub fn transition(self, next: Self) -> Result<Self> {
                if self.can_become(next) {
                    Ok(next)
                } else {
                    Err(Error::IllegalTransition {
                        entity: $entity,
                        from: self.as_str(),
                        to: next.as_str(),
                    })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| Error::InvalidJob(format!(
                        "unknown {} status {:?}", $entity, excerpt(s)
                    )))
            }
        }
    };
}

status_enum!(
    /// The status of a job. See docs/ARCHITECTURE.md for the state machine.
    JobStatus, "job" {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        CompletedWithErrors => "completed_with_errors",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

status_enum!(
    /// The status of one symbol's task. See docs/ARCHITECTURE.md for the state machine.
    TaskStatus, "task" {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl JobStatus {
    /// Whether the state machine allows `self -> next`.
    ///
    /// ```text
    /// queued  -> running | cancelled
    /// running -> succeeded | completed_with_errors | failed | cancelled
    /// completed_with_errors | failed | cancelled -> queued   (retry)
    /// succeeded: final
    /// ```
    pub fn can_become(self, next: Self) -> bool {
        use JobStatus::*;
        matches!(
            (self, next),
            (Queued, Running | Cancelled)
                | (
                    Running,
                    Succeeded | CompletedWithErrors | Failed | Cancelled
                )
                | (CompletedWithErrors | Failed | Cancelled, Queued)
        )
    }

    /// Whether no work is left to do in this state (until a retry).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// The status of a job whose tasks are all terminal: succeeded when every symbol was
    /// stored, failed when every one failed, completed with errors otherwise. Cancellation is
    /// decided by the job, not by its tasks.
    pub fn settled(succeeded: usize, failed: usize) -> Self {
        match (succeeded, failed) {
            (_, 0) => Self::Succeeded,
            (0, _) => Self::Failed,
            _ => Self::CompletedWithErrors,
        }
    }
}

impl TaskStatus {
    /// Whether the state machine allows `self -> next`.
    ///
    /// ```text
    /// queued  -> running | cancelled
    /// running -> running (reclaimed after its lease expired) | queued (retry later, or
    ///            released on shutdown) | succeeded | failed | cancelled
    /// failed | cancelled -> queued   (retry)
    /// succeeded: final
    /// ```
    pub fn can_become(self, next: Self) -> bool {
        use TaskStatus::*;
        matches!(
            (self, next),
            (Queued, Running | Cancelled)
                | (Running, Running | Queued | Succeeded | Failed | Cancelled)
                | (Failed | Cancelled, Queued)
        )
    }

    /// Whether the task is finished (until a retry).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Which tickers a job covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Universe {
    /// The job's `symbols`.
    #[default]
    Symbols,
    /// Every ticker the source has for each day (bulk sources only); `symbols` is empty.
    All,
}

impl Universe {
    /// The name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Symbols => "symbols",
            Self::All => "all",
        }
    }
}

impl FromStr for Universe {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "symbols" => Ok(Self::Symbols),
            "all" => Ok(Self::All),
            other => Err(Error::InvalidJob(format!(
                "unknown universe {:?}: expected symbols or all",
                excerpt(other)
            ))),
        }
    }
}

/// What a job fetches one task at a time: a symbol's whole range (the rest source), or one
/// trading day of every ticker (the bulk sources).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TaskUnit {
    Symbol(Symbol),
    /// A New York trading date.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    Day(NaiveDate),
}

impl TaskUnit {
    /// The symbol of a symbol task.
    pub fn symbol(&self) -> Option<&Symbol> {
        match self {
            Self::Symbol(s) => Some(s),
            Self::Day(_) => None,
        }
    }

    /// The date of a day task.
    pub fn day(&self) -> Option<NaiveDate> {
        match self {
            Self::Symbol(_) => None,
            Self::Day(d) => Some(*d),
        }
    }
}

impl fmt::Display for TaskUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symbol(s) => s.fmt(f),
            Self::Day(d) => d.fmt(f),
        }
    }
}

/// What a user asked for: validated, with symbols de-duplicated in their given order, and the
/// source that serves it (resolved: never `auto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "JobSpecRepr")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobSpec {
    /// The symbols (empty when the universe is `all`).
    symbols: Vec<Symbol>,
    universe: Universe,
    timeframe: Timeframe,
    range: DateRange,
    adjusted: bool,
    mode: BackfillMode,
    source: Source,
    /// Why this source serves the job (for `auto`, how it compared with the others).
    source_reason: Option<String>,
}

impl JobSpec {
    /// A job of the rest source over `symbols`: 1 to [`MAX_SYMBOLS_PER_JOB`] distinct symbols,
    /// repeats dropped.
    pub fn new(
        symbols: Vec<Symbol>,
        timeframe: Timeframe,
        range: DateRange,
        adjusted: bool,
        mode: BackfillMode,
    ) -> Result<Self> {
        Self::from_parts(
            Some(symbols),
            timeframe,
            range,
            adjusted,
            mode,
            Source::Rest,
            None,
        )
    }

    /// A job served by `chosen`, over `symbols` (`None`: the whole market). Checks that the
    /// source can serve it ([`Source::refusal`]), the number of symbols (1 to
    /// [`MAX_SYMBOLS_PER_JOB`] for the rest source, up to [`MAX_SYMBOLS_PER_BULK_JOB`] for the
    /// bulk ones) and, for bulk sources, that the range holds 1 to [`MAX_DAYS_PER_JOB`]
    /// weekdays.
    pub fn with_source(
        symbols: Option<Vec<Symbol>>,
        timeframe: Timeframe,
        range: DateRange,
        adjusted: bool,
        mode: BackfillMode,
        chosen: Chosen,
    ) -> Result<Self> {
        Self::from_parts(
            symbols,
            timeframe,
            range,
            adjusted,
            mode,
            chosen.source,
            Some(chosen.reason),
        )
    }

    /// A job over `symbols` (`None`: the whole market) from the source `choice` resolves to
    /// among those `available` (no choice: `rest` for listed symbols, `auto` for the whole
    /// market), with what every source would cost it.
    ///
    /// # Errors
    /// As [`crate::choose`] and [`JobSpec::with_source`].
    pub fn plan(
        symbols: Option<Vec<Symbol>>,
        timeframe: Timeframe,
        range: DateRange,
        adjusted: bool,
        mode: BackfillMode,
        choice: Option<SourceChoice>,
        available: Sources,
    ) -> Result<(Self, Vec<SourceCost>)> {
        let listed = symbols.as_deref();
        let costs = costs(timeframe, &range, adjusted, listed, available);
        let chosen = match choice {
            Some(choice) => choose(choice, timeframe, &range, adjusted, listed, available)?,
            None => choose_default(timeframe, &range, adjusted, listed, available)?,
        };
        let spec = Self::with_source(symbols, timeframe, range, adjusted, mode, chosen)?;
        Ok((spec, costs))
    }

    /// A spec from its parts, as storage keeps them (`symbols` `None`: the whole market), checked
    /// like [`JobSpec::with_source`].
    pub fn from_parts(
        symbols: Option<Vec<Symbol>>,
        timeframe: Timeframe,
        range: DateRange,
        adjusted: bool,
        mode: BackfillMode,
        source: Source,
        source_reason: Option<String>,
    ) -> Result<Self> {
        let universe = match symbols {
            Some(_) => Universe::Symbols,
            None => Universe::All,
        };
        let symbols = match symbols {
            Some(list) => {
                let mut seen = HashSet::with_capacity(list.len());
                let list: Vec<Symbol> = list
                    .into_iter()
                    .filter(|s| seen.insert(s.clone()))
                    .collect();
                let max = if source.is_bulk() {
                    MAX_SYMBOLS_PER_BULK_JOB
                } else {
                    MAX_SYMBOLS_PER_JOB
                };
                if list.is_empty() {
                    return Err(Error::InvalidJob("at least one symbol is required".into()));
                }
                if list.len() > max {
                    return Err(Error::InvalidJob(format!(
                        "at most {max} symbols per job of the {source} source, got {}",
                        list.len()
                    )));
                }
                list
            }
            None => Vec::new(),
        };
        let listed = (universe == Universe::Symbols).then_some(symbols.as_slice());
        if let Some(why) = source.refusal(timeframe, adjusted, listed) {
            return Err(Error::InvalidSource(why));
        }
        if source.is_bulk() {
            let days = weekdays(&range).len();
            if days == 0 {
                return Err(Error::InvalidJob(format!(
                    "the range {range} holds no weekday: the {source} source has one file or \
                     answer per trading day"
                )));
            }
            if days > MAX_DAYS_PER_JOB {
                return Err(Error::InvalidJob(format!(
                    "at most {MAX_DAYS_PER_JOB} days per job of the {source} source, got {days}"
                )));
            }
        }
        Ok(Self {
            symbols,
            universe,
            timeframe,
            range,
            adjusted,
            mode,
            source,
            source_reason,
        })
    }

    /// The listed symbols; empty when the universe is the whole market.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    pub fn universe(&self) -> Universe {
        self.universe
    }

    pub fn timeframe(&self) -> Timeframe {
        self.timeframe
    }

    pub fn range(&self) -> DateRange {
        self.range
    }

    /// Split- and dividend-adjusted prices (Polygon's default) or raw ones. The two series are
    /// stored apart and never mix.
    pub fn adjusted(&self) -> bool {
        self.adjusted
    }

    pub fn mode(&self) -> BackfillMode {
        self.mode
    }

    pub fn source(&self) -> Source {
        self.source
    }

    pub fn source_reason(&self) -> Option<&str> {
        self.source_reason.as_deref()
    }

    /// The units of work, one task each, in order: the symbols (the rest source) or the
    /// weekdays of the range (the bulk sources).
    pub fn units(&self) -> Vec<TaskUnit> {
        if self.source.is_bulk() {
            weekdays(&self.range)
                .into_iter()
                .map(TaskUnit::Day)
                .collect()
        } else {
            self.symbols.iter().cloned().map(TaskUnit::Symbol).collect()
        }
    }
}

#[derive(Deserialize)]
struct JobSpecRepr {
    symbols: Vec<Symbol>,
    #[serde(default)]
    universe: Universe,
    timeframe: Timeframe,
    range: DateRange,
    adjusted: bool,
    mode: BackfillMode,
    #[serde(default)]
    source: Source,
    #[serde(default)]
    source_reason: Option<String>,
}

impl TryFrom<JobSpecRepr> for JobSpec {
    type Error = Error;
    fn try_from(r: JobSpecRepr) -> Result<Self> {
        let symbols = match r.universe {
            Universe::Symbols => Some(r.symbols),
            Universe::All => None,
        };
        Self::from_parts(
            symbols,
            r.timeframe,
            r.range,
            r.adjusted,
            r.mode,
            r.source,
            r.source_reason,
        )
    }
}

/// A backfill job: a spec, its status and its times. Its progress is derived from its tasks
/// ([`crate::JobProgress`]), never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackfillJob {
    pub id: JobId,
    #[serde(flatten)]
    pub spec: JobSpec,
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the job failed or was cancelled, for people.
    pub error: Option<String>,
    /// The candles come from the built-in simulator (a server in demo mode), not the market.
    #[serde(default)]
    pub simulated: bool,
}

/// One unit of a job (a symbol, or a trading day of a bulk source): what was fetched and
/// stored, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: TaskId,
    pub job_id: JobId,
    /// `"symbol": "AAPL"` or `"day": "2024-01-02"`.
    #[serde(flatten)]
    pub unit: TaskUnit,
    pub status: TaskStatus,
    /// How many times a worker has started this task.
    pub attempts: u32,
    /// Bars received from upstream.
    pub candles_fetched: u64,
    /// Bars written (new or changed); re-fetching identical bars adds nothing here.
    pub candles_stored: u64,
    /// Pages stored.
    pub pages: u64,
    /// Upstream calls made (requests, retries included, or file downloads).
    #[serde(default)]
    pub requests: u64,
    /// Bytes received from upstream (as sent: compressed).
    #[serde(default)]
    pub bytes: u64,
    /// Every bar at or before this instant has been stored; a restart resumes after it (symbol
    /// tasks).
    pub checkpoint: Option<DateTime<Utc>>,
    /// Rows of the day's file handled so far, in file order; a restart skips them (day tasks).
    #[serde(default)]
    pub rows_done: u64,
    /// How far into the day's file (compressed bytes) the stored rows reach, and its size, for
    /// progress (day tasks of the flatfiles source).
    #[serde(default)]
    pub file_offset: u64,
    #[serde(default)]
    pub file_size: Option<u64>,
    /// The ETag of the file those rows came from: a restart skips them only in that same file.
    #[serde(default)]
    pub file_etag: Option<String>,
    /// What people should know about how the task ended, when it is not an error (a day without
    /// a file, a file unchanged since it was stored).
    #[serde(default)]
    pub note: Option<String>,
    /// Why the last attempt failed, for people.
    pub last_error: Option<String>,
    /// When a task that failed transiently may be claimed again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The worker holding the lease, while running.
    pub worker_id: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Task {
    /// A task as a new job has it: queued, nothing done yet.
    pub fn queued(id: TaskId, job_id: JobId, unit: TaskUnit, at: DateTime<Utc>) -> Self {
        Self {
            id,
            job_id,
            unit,
            status: TaskStatus::Queued,
            attempts: 0,
            candles_fetched: 0,
            candles_stored: 0,
            pages: 0,
            requests: 0,
            bytes: 0,
            checkpoint: None,
            rows_done: 0,
            file_offset: 0,
            file_size: None,
            file_etag: None,
            note: None,
            last_error: None,
            next_attempt_at: None,
            worker_id: None,
            lease_expires_at: None,
            started_at: None,
            finished_at: None,
            updated_at: at,
        }
    }

    /// The task's symbol, for a symbol task.
    pub fn symbol(&self) -> Option<&Symbol> {
        self.unit.symbol()
    }

    /// The share of its work the task has done, from 0 to 1: all of it once it succeeded;
    /// otherwise, for a symbol task, how far its checkpoint reaches through the job's `range`,
    /// and for a day task, how far into the day's file its stored rows reach.
    pub fn fraction_done(&self, range: &DateRange) -> f64 {
        match (self.status, &self.unit) {
            (TaskStatus::Succeeded, _) => 1.0,
            (_, TaskUnit::Symbol(_)) => {
                self.checkpoint.map_or(0.0, |cp| range.fraction_through(cp))
            }
            (_, TaskUnit::Day(_)) => match self.file_size {
                Some(size) if size > 0 => (self.file_offset as f64 / size as f64).clamp(0.0, 1.0),
                _ => 0.0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RangeBound;

    #[test]
    fn job_ids_are_v7_and_ordered() {
        let a = JobId::new();
        let b = JobId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b);
        assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
        assert!("not-a-uuid".parse::<JobId>().is_err());
    }

    #[test]
    fn legal_job_transitions() {
        use JobStatus::*;
        for (from, to) in [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, Succeeded),
            (Running, CompletedWithErrors),
            (Running, Failed),
            (Running, Cancelled),
            (CompletedWithErrors, Queued),
            (Failed, Queued),
            (Cancelled, Queued),
        ] {
            assert_eq!(from.transition(to), Ok(to), "{from} -> {to}");
        }
    }

    #[test]
    fn illegal_job_transitions_are_rejected() {
        use JobStatus::*;
        let legal = 9;
        let mut illegal = 0;
        for &from in JobStatus::ALL {
            for &to in JobStatus::ALL {
                if !from.can_become(to) {
                    illegal += 1;
                    let err = from.transition(to).unwrap_err();
                    assert_eq!(
                        err.to_string(),
                        format!("illegal job transition from {from} to {to}")
                    );
                }
            }
        }
        assert_eq!(illegal, 36 - legal);
        assert!(
            !Succeeded.can_become(Queued),
            "a succeeded job has nothing to retry"
        );
        assert!(
            !Queued.can_become(Succeeded),
            "a job runs before it succeeds"
        );
        assert!(!Cancelled.can_become(Running));
    }

    #[test]
    fn task_transitions() {
        use TaskStatus::*;
        for (from, to) in [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, Running),
            (Running, Queued),
            (Running, Succeeded),
            (Running, Failed),
            (Running, Cancelled),
            (Failed, Queued),
            (Cancelled, Queued),
        ] {
            assert!(from.can_become(to), "{from} -> {to}");
        }
        for (from, to) in [
            (Succeeded, Queued),
            (Succeeded, Running),
            (Queued, Succeeded),
            (Queued, Failed),
            (Failed, Running),
            (Cancelled, Running),
            (Failed, Succeeded),
        ] {
            assert!(
                matches!(
                    from.transition(to),
                    Err(Error::IllegalTransition { entity: "task", .. })
                ),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn settled_status_follows_the_tasks() {
        assert_eq!(JobStatus::settled(3, 0), JobStatus::Succeeded);
        assert_eq!(JobStatus::settled(0, 3), JobStatus::Failed);
        assert_eq!(JobStatus::settled(2, 1), JobStatus::CompletedWithErrors);
    }

    #[test]
    fn statuses_parse_and_print() {
        for &s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for &s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), s);
        }
        assert!("done".parse::<JobStatus>().is_err());
        for &m in BackfillMode::ALL {
            assert_eq!(m.as_str().parse::<BackfillMode>().unwrap(), m);
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.as_str())
            );
        }
        assert!("partial".parse::<BackfillMode>().is_err());
    }

    fn spec(symbols: &[&str]) -> Result<JobSpec> {
        let range = DateRange::new_at(
            RangeBound::parse("2024-01-01").unwrap(),
            RangeBound::parse("2024-01-31").unwrap(),
            "2024-06-01T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
        JobSpec::new(
            symbols.iter().map(|s| Symbol::parse(s).unwrap()).collect(),
            Timeframe::parse("1m").unwrap(),
            range,
            true,
            BackfillMode::Missing,
        )
    }

    #[test]
    fn spec_dedupes_symbols_in_order() {
        let s = spec(&["msft", "AAPL", "MSFT", "aapl", "X:BTCUSD"]).unwrap();
        let names: Vec<&str> = s.symbols().iter().map(Symbol::as_str).collect();
        assert_eq!(names, ["MSFT", "AAPL", "X:BTCUSD"]);
    }

    #[test]
    fn spec_requires_one_to_a_thousand_symbols() {
        assert!(spec(&[]).unwrap_err().to_string().contains("at least one"));
        let many: Vec<String> = (0..1001).map(|i| format!("S{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(spec(&many)
            .unwrap_err()
            .to_string()
            .contains("at most 1000"));
        assert!(spec(&many[..1000]).is_ok());
    }

    #[test]
    fn job_serialises_flat() {
        let job = BackfillJob {
            id: JobId::new(),
            spec: spec(&["AAPL"]).unwrap(),
            status: JobStatus::Queued,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            error: None,
            simulated: false,
        };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["symbols"][0], "AAPL");
        assert_eq!(json["timeframe"], "1m");
        assert_eq!(json["mode"], "missing");
        assert_eq!(json["status"], "queued");
        assert_eq!(json["source"], "rest");
        assert_eq!(json["universe"], "symbols");
        assert_eq!(serde_json::from_value::<BackfillJob>(json).unwrap(), job);
    }

    fn chosen(source: Source) -> Chosen {
        Chosen {
            source,
            reason: "asked for".to_owned(),
        }
    }

    fn range(from: &str, to: &str) -> DateRange {
        DateRange::new(
            RangeBound::parse(from).unwrap(),
            RangeBound::parse(to).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_bulk_job_has_a_task_per_weekday_and_may_cover_the_whole_market() {
        let spec = JobSpec::with_source(
            None,
            Timeframe::parse("1m").unwrap(),
            range("2024-01-05", "2024-01-09"), // Friday to Tuesday
            false,
            BackfillMode::Missing,
            chosen(Source::FlatFiles),
        )
        .unwrap();
        assert_eq!(spec.universe(), Universe::All);
        assert!(spec.symbols().is_empty());
        let days: Vec<String> = spec.units().iter().map(ToString::to_string).collect();
        assert_eq!(days, ["2024-01-05", "2024-01-08", "2024-01-09"]);
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["source"], "flatfiles");
        assert_eq!(json["universe"], "all");
        assert_eq!(json["source_reason"], "asked for");
        assert_eq!(serde_json::from_value::<JobSpec>(json).unwrap(), spec);
    }

    #[test]
    fn a_bulk_job_checks_what_its_source_can_serve() {
        let tf = |s: &str| Timeframe::parse(s).unwrap();
        let bulk = |symbols: Option<Vec<Symbol>>, t: &str, adjusted: bool, r: DateRange, s| {
            JobSpec::with_source(
                symbols,
                tf(t),
                r,
                adjusted,
                BackfillMode::Missing,
                chosen(s),
            )
        };
        let week = range("2024-01-01", "2024-01-07");
        let err = bulk(None, "1m", true, week, Source::FlatFiles).unwrap_err();
        assert!(err.to_string().contains("raw prices"), "{err}");
        let err = bulk(None, "1d", true, week, Source::Rest).unwrap_err();
        assert!(err.to_string().contains("whole market"), "{err}");
        let weekend = range("2024-01-06", "2024-01-07");
        let err = bulk(None, "1d", true, weekend, Source::Grouped).unwrap_err();
        assert!(err.to_string().contains("no weekday"), "{err}");
        // A bulk job may list more symbols than a REST job.
        let many: Vec<Symbol> = (0..2_000)
            .map(|i| Symbol::parse(&format!("T{i}")).unwrap())
            .collect();
        let spec = bulk(Some(many.clone()), "1d", true, week, Source::Grouped).unwrap();
        assert_eq!(spec.symbols().len(), 2_000);
        assert_eq!(spec.units().len(), 5);
        assert!(bulk(Some(many), "1d", true, week, Source::Rest).is_err());
    }

    #[test]
    fn a_day_task_reports_its_progress_through_its_file() {
        let job = JobId::new();
        let mut task = Task::queued(
            TaskId(1),
            job,
            TaskUnit::Day("2024-01-02".parse().unwrap()),
            Utc::now(),
        );
        let r = range("2024-01-01", "2024-01-31");
        assert_eq!(task.fraction_done(&r), 0.0);
        task.status = TaskStatus::Running;
        task.file_size = Some(400);
        task.file_offset = 100;
        assert_eq!(task.fraction_done(&r), 0.25);
        task.status = TaskStatus::Succeeded;
        assert_eq!(task.fraction_done(&r), 1.0);
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(json["day"], "2024-01-02");
        assert!(json.get("symbol").is_none());
    }
}
