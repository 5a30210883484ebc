/// What can stop a worker as a whole. Failures of single tasks are not errors of the worker:
/// they are recorded on the task (its status and last error) and the worker carries on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Storage failed (while releasing leases at shutdown, the leases will expire instead).
    #[error("storage failed")]
    Storage(#[from] backfill_storage::Error),
    /// Corporate actions could not be read upstream (the split watch; nothing was stored).
    #[error("corporate actions could not be read upstream: {0}")]
    Actions(#[source] backfill_polygon::Error),
}

/// The worker's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
