//! The `backfill` command: runs backfills, workers, the Polygon simulator and migrations.
//!
//! This binary is the only place that reads the environment and picks concrete types; the
//! libraries in `crates/` receive typed values.

mod app;
mod cli;
mod commands;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// jemalloc keeps a long backfill's memory flat: pages of candles are allocated and freed on
/// several threads, which fragments glibc's per-thread arenas (measured in docs/PERFORMANCE.md).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // Planning needs no runtime and logs nothing.
        Command::Plan(args) => commands::plan::run(args).map(|()| ExitCode::SUCCESS),
        command => {
            app::init_logging(cli.log.log_format);
            match tokio::runtime::Runtime::new() {
                Ok(rt) => rt.block_on(async move {
                    match command {
                        Command::Run(args) => commands::run::run(args).await,
                        Command::Jobs(args) => {
                            commands::jobs::run(args).await.map(|()| ExitCode::SUCCESS)
                        }
                        Command::Serve(args) => {
                            commands::serve::run(args).await.map(|()| ExitCode::SUCCESS)
                        }
                        Command::Worker(args) => commands::worker::run(args)
                            .await
                            .map(|()| ExitCode::SUCCESS),
                        Command::Migrate(args) => commands::migrate::run(args)
                            .await
                            .map(|()| ExitCode::SUCCESS),
                        Command::Sim(args) => {
                            commands::sim::run(args).await.map(|()| ExitCode::SUCCESS)
                        }
                        Command::Plan(_) => Ok(ExitCode::SUCCESS),
                    }
                }),
                Err(err) => Err(anyhow::Error::new(err).context("starting the async runtime")),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
