//! The backfill REST API on axum: job submission, status, cancel and retry, live progress over
//! Server-Sent Events, candle read-back, health, metrics and the OpenAPI document, with one JSON
//! error shape. Its state holds trait objects only, so every handler can be tested against mocks.
