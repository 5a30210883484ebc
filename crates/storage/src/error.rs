use backfill_domain::TaskId;

/// Everything storage can fail with. Callers match on the semantic variants; sqlx never leaks
/// beyond [`Error::Database`], whose source it is.
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
    Database(#[source] sqlx::Error),
}

/// The storage result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True for failures that retrying later (on a new connection) may cure: lost or refused
    /// connections, pool timeouts, serialization failures and deadlocks, a busy or locked SQLite
    /// file, a server shutting down. Callers keep their state and try again.
    pub fn is_transient(&self) -> bool {
        let Self::Database(err) = self else {
            return false;
        };
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

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }
}

/// SQLSTATE classes and codes (PostgreSQL) and result codes (SQLite) worth retrying.
fn transient_code(code: &str) -> bool {
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
            _ => Self::Database(err),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Database(sqlx::Error::Migrate(Box::new(err)))
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

    #[test]
    fn transient_codes() {
        for code in ["08006", "08001", "40001", "40P01", "57P01", "5", "517", "6"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "1", "19", "2067"] {
            assert!(!transient_code(code), "{code}");
        }
        assert!(Error::Database(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!Error::Conflict("x".into()).is_transient());
        assert!(!Error::Database(sqlx::Error::ColumnNotFound("x".into())).is_transient());
    }

    #[test]
    fn messages_are_lowercase_without_period() {
        let errs = [
            Error::not_found("job 1"),
            Error::Conflict("illegal job transition from succeeded to queued".into()),
            Error::LeaseLost { task_id: TaskId(7) },
            Error::InvalidInput("limit must be at least 1".into()),
            Error::InvalidData("bad status".into()),
            Error::Database(sqlx::Error::PoolTimedOut),
        ];
        for e in errs {
            let msg = e.to_string();
            assert!(!msg.ends_with('.'), "{msg}");
            assert!(msg.starts_with(|c: char| !c.is_uppercase()), "{msg}");
        }
    }
}
