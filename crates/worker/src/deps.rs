use std::sync::Arc;

use backfill_polygon::{FlatFiles, MarketData};
use backfill_storage::{CandleStore, TaskQueue};

/// The services a worker is written against: storage's traits and the market data sources. The
/// binary passes one storage backend for both storage roles.
#[derive(Clone)]
pub struct WorkerDeps {
    pub queue: Arc<dyn TaskQueue>,
    pub candles: Arc<dyn CandleStore>,
    /// The REST API: aggregates (symbol tasks) and grouped daily bars (day tasks).
    pub market: Arc<dyn MarketData>,
    /// Flat Files, when the worker has S3 credentials; day tasks of the flatfiles source fail
    /// without them.
    pub files: Option<Arc<dyn FlatFiles>>,
}

impl std::fmt::Debug for WorkerDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerDeps").finish_non_exhaustive()
    }
}
