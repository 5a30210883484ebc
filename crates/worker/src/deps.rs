use std::sync::Arc;

use backfill_polygon::MarketData;
use backfill_storage::{CandleStore, TaskQueue};

/// The services a worker is written against: storage's traits and a market data source. The
/// binary passes one storage backend for both storage roles.
#[derive(Clone)]
pub struct WorkerDeps {
    pub queue: Arc<dyn TaskQueue>,
    pub candles: Arc<dyn CandleStore>,
    pub market: Arc<dyn MarketData>,
}

impl std::fmt::Debug for WorkerDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerDeps").finish_non_exhaustive()
    }
}
