//! A Polygon-compatible aggregates server for tests, benchmarks and the offline demo: deterministic
//! candles from a seeded random walk, `next_url` pagination, authentication, rate limits and fault
//! injection, with request counters that tests can read.
