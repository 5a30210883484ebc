//! End-to-end tests of the `backfill` binary and its services, in one test binary.

mod cli;
mod helpers;
mod run;
