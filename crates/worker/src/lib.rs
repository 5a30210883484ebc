//! The backfill orchestrator: a worker claims per-symbol tasks with leases, fetches their candles
//! through the `MarketData` trait, stores each page with its checkpoint through the storage traits,
//! and publishes progress events. It depends on traits only, never on concrete backends.
