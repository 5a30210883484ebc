use backfill_domain::TaskId;

/// Everything storage can fail with. Callers match on the semantic variants; the database
/// driver never shows through: [`Error::Database`] carries an opaque source and says whether
/// retrying may help.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job, task or series asked for does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The request contradicts the stored state: an illegal status transition, nothing to
    /// retry, or an idempotency key reused for a different job.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller no longer holds the lease on this task (it expired, was reclaimed by another
    /// worker or released, or the task finished). Nothing was written.
    #[error("lease on task {task_id} is no longer held")]
    LeaseLost { task_id: TaskId },
    /// The caller passed something storage cannot accept as given, such as a candle of another
    /// symbol than the task's, or a page limit of zero.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A stored row does not convert to the domain types (a corrupt or foreign database).
    #[error("invalid stored data: {0}")]
    InvalidData(String),
    /// The database failed. [`Error::is_transient`] tells whether retrying may help.
    #[error("database error")]
    Database(#[source] DatabaseError),
}

/// A failure of the database itself: the driver's error, kept as an opaque source (its text
/// appears in error chains), and whether retrying on a new connection may cure it.
#[derive(Debug)]
pub struct DatabaseError {
    source: Box<dyn std::error::Error + Send + Sync>,
    transient: bool,
}

impl DatabaseError {
    /// Wraps a database failure; `transient` says whether retrying later may help.
    pub fn new(
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
        transient: bool,
    ) -> Self {
        Self {
            source: source.into(),
            transient,
        }
    }

    /// True for failures that retrying later may cure.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

/// The storage result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure of the database: `transient` says whether retrying later may help. Backends
    /// build these from their driver's errors; tests and other implementations of the traits
    /// may build them too.
    pub fn database(
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
        transient: bool,
    ) -> Self {
        Self::Database(DatabaseError::new(source, transient))
    }

    /// True for failures that retrying later (on a new connection) may cure: lost or refused
    /// connections, pool timeouts, serialization failures and deadlocks, a busy or locked SQLite
    /// file, a server shutting down. Callers keep their state and try again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Database(db) if db.is_transient())
    }

    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// The error for an unknown job.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub(crate) fn job_not_found(id: backfill_domain::JobId) -> Self {
        Self::not_found(format!("job {id}"))
    }

    /// The error for a spec that differs from the one stored under an idempotency key.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub(crate) fn key_reused(key: &str) -> Self {
        let shown: String = key.chars().take(64).collect();
        Self::Conflict(format!(
            "idempotency key {shown:?} was already used for a different job"
        ))
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sqlx_errors {
    use super::{DatabaseError, Error};

    /// True for sqlx errors that retrying later (on a new connection) may cure.
    fn transient(err: &sqlx::Error) -> bool {
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
            _ => false,
        }
    }

    /// SQLSTATE classes and codes (PostgreSQL) and result codes (SQLite) worth retrying.
    pub(super) fn transient_code(code: &str) -> bool {
        // PostgreSQL: connection exceptions (08xxx), serialization failure, deadlock, too many
        // connections, admin or crash shutdown, cannot connect now.
        if code.starts_with("08")
            || matches!(
                code,
                "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03"
            )
        {
            return true;
        }
        // SQLite reports (extended) numeric result codes: SQLITE_BUSY = 5, SQLITE_LOCKED = 6.
        code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
    }

    impl From<sqlx::Error> for Error {
        fn from(err: sqlx::Error) -> Self {
            match &err {
                sqlx::Error::RowNotFound => Self::not_found("row"),
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    Self::Conflict(format!("unique constraint violated: {}", db.message()))
                }
                _ => {
                    let transient = transient(&err);
                    Self::Database(DatabaseError::new(err, transient))
                }
            }
        }
    }

    impl From<sqlx::migrate::MigrateError> for Error {
        fn from(err: sqlx::migrate::MigrateError) -> Self {
            Self::from(sqlx::Error::Migrate(Box::new(err)))
        }
    }
}

impl From<backfill_domain::Error> for Error {
    /// Domain errors met by storage are illegal transitions (conflicts) or stored values that
    /// no longer validate.
    fn from(err: backfill_domain::Error) -> Self {
        match err {
            backfill_domain::Error::IllegalTransition { .. } => Self::Conflict(err.to_string()),
            other => Self::InvalidData(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    #[test]
    fn transient_codes() {
        use super::sqlx_errors::transient_code;
        for code in ["08006", "08001", "40001", "40P01", "57P01", "5", "517", "6"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "1", "19", "2067"] {
            assert!(!transient_code(code), "{code}");
        }
        assert!(Error::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!Error::Conflict("x".into()).is_transient());
        assert!(!Error::from(sqlx::Error::ColumnNotFound("x".into())).is_transient());
    }

    #[test]
    fn a_database_error_shows_its_source_but_not_its_type() {
        let err = Error::database("connection refused", true);
        assert!(err.is_transient());
        assert_eq!(err.to_string(), "database error");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection refused"));
        assert!(!Error::database("syntax error", false).is_transient());
    }

    #[test]
    fn messages_are_lowercase_without_period() {
        let errs = [
            Error::NotFound {
                what: "job 1".into(),
            },
            Error::Conflict("illegal job transition from succeeded to queued".into()),
            Error::LeaseLost { task_id: TaskId(7) },
            Error::InvalidInput("limit must be at least 1".into()),
            Error::InvalidData("bad status".into()),
            Error::database("pool timed out", true),
        ];
        for e in errs {
            let msg = e.to_string();
            assert!(!msg.ends_with('.'), "{msg}");
            assert!(msg.starts_with(|c: char| !c.is_uppercase()), "{msg}");
        }
    }
}
