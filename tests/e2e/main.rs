//! End-to-end tests of the `backfill` binary and its services, in one test binary.

mod actions;
mod api;
mod architecture;
mod cli;
mod dashboard;
mod export;
mod faults;
mod fuzz;
mod helpers;
mod jobs_cli;
mod priority;
mod quality;
mod quota;
mod run;
mod schedules;
