use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{excerpt, Error, Result};
use crate::{DateRange, Symbol, Timeframe};

/// The most symbols one job may hold.
pub const MAX_SYMBOLS_PER_JOB: usize = 1_000;

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

/// What a user asked for: validated, with symbols de-duplicated in their given order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "JobSpecRepr")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobSpec {
    symbols: Vec<Symbol>,
    timeframe: Timeframe,
    range: DateRange,
    adjusted: bool,
    mode: BackfillMode,
}

impl JobSpec {
    /// Checks that there are 1 to [`MAX_SYMBOLS_PER_JOB`] distinct symbols and drops repeats.
    pub fn new(
        symbols: Vec<Symbol>,
        timeframe: Timeframe,
        range: DateRange,
        adjusted: bool,
        mode: BackfillMode,
    ) -> Result<Self> {
        let mut seen = HashSet::with_capacity(symbols.len());
        let symbols: Vec<Symbol> = symbols
            .into_iter()
            .filter(|s| seen.insert(s.clone()))
            .collect();
        if symbols.is_empty() {
            return Err(Error::InvalidJob("at least one symbol is required".into()));
        }
        if symbols.len() > MAX_SYMBOLS_PER_JOB {
            return Err(Error::InvalidJob(format!(
                "at most {MAX_SYMBOLS_PER_JOB} symbols per job, got {}",
                symbols.len()
            )));
        }
        Ok(Self {
            symbols,
            timeframe,
            range,
            adjusted,
            mode,
        })
    }

    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
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
}

#[derive(Deserialize)]
struct JobSpecRepr {
    symbols: Vec<Symbol>,
    timeframe: Timeframe,
    range: DateRange,
    adjusted: bool,
    mode: BackfillMode,
}

impl TryFrom<JobSpecRepr> for JobSpec {
    type Error = Error;
    fn try_from(r: JobSpecRepr) -> Result<Self> {
        Self::new(r.symbols, r.timeframe, r.range, r.adjusted, r.mode)
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

/// One symbol's share of a job: what was fetched and stored, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SymbolTask {
    pub id: TaskId,
    pub job_id: JobId,
    pub symbol: Symbol,
    pub status: TaskStatus,
    /// How many times a worker has started this task.
    pub attempts: u32,
    /// Bars received from upstream.
    pub candles_fetched: u64,
    /// Bars written (new or changed); re-fetching identical bars adds nothing here.
    pub candles_stored: u64,
    /// Pages stored.
    pub pages: u64,
    /// Every bar at or before this instant has been stored; a restart resumes after it.
    pub checkpoint: Option<DateTime<Utc>>,
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
        assert_eq!(serde_json::from_value::<BackfillJob>(json).unwrap(), job);
    }
}
