//! One module per subcommand.

pub(crate) mod actions;
pub(crate) mod client;
pub(crate) mod export;
pub(crate) mod jobs;
pub(crate) mod migrate;
pub(crate) mod plan;
pub(crate) mod quality;
pub(crate) mod run;
pub(crate) mod schedules;
pub(crate) mod serve;
pub(crate) mod sim;
pub(crate) mod worker;
