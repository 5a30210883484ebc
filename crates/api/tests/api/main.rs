//! Handler tests: the real router over mock repositories, one request at a time through
//! `tower::ServiceExt::oneshot`. No network, no database.

mod actions;
mod auth;
mod candles;
mod dashboard;
mod events;
mod health;
mod helpers;
mod jobs;
mod logs;
mod openapi;
mod routing;
mod schedules;
mod sources;
mod telemetry;
