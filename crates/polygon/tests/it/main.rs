//! The client against recorded Polygon bodies and, over real HTTP, against the simulator.

mod actions;
mod faults;
mod fixtures;
mod flatfiles;
mod flatfiles_faults;
mod helpers;
mod pagination;
mod rate_limit;
mod secrets;
mod tickers;
