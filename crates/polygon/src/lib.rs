//! The market data client: the `MarketData` trait that yields candles page by page, and
//! `PolygonClient`, its implementation for Polygon.io (Massive) aggregates, with range chunking under the
//! 50,000 base-bar limit, `next_url` pagination, retries with backoff and a shared rate limit.
//! This is the only crate that uses reqwest or knows Polygon's JSON.
