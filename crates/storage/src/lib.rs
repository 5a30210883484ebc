//! Persistence for backfill: the repository traits that the worker and the API are written against
//! (jobs and their per-symbol tasks, task leases, fenced candle ingest, candle reads and coverage),
//! and their PostgreSQL and embedded SQLite implementations. This is the only crate that uses sqlx.
