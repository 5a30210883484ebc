//! The `backfill` command: runs backfills, workers, the Polygon simulator and migrations.
//!
//! This binary is the only place that reads the environment and picks concrete types; the
//! libraries in `crates/` receive typed values.

mod app;
mod cli;
mod commands;
mod quota;
mod reference;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// jemalloc keeps a long backfill's memory flat: pages of candles are allocated and freed on
/// several threads, which fragments glibc's per-thread arenas (measured in docs/PERFORMANCE.md).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at start-up (`_RJEM_MALLOC_CONF` in the environment still
/// overrides them). One arena instead of one per thread and core: a worker's large allocations
/// (5 MB pages and their decoded candles) are freed on other threads than they were allocated on,
/// and per-thread arenas each kept their own freed pages: peak RSS of 50 symbols x a year of
/// minutes went from 151 MB to 104 MB, no slower (docs/PERFORMANCE.md, "Worker memory"). Freed
/// pages go back to the system after about a second instead of ten.
#[cfg(all(unix, not(target_env = "musl")))]
#[expect(
    unsafe_code,
    reason = "jemalloc reads its configuration from this exported C string (a NUL-terminated \
              static, never written), the documented way to set it at build time"
)]
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: &[u8] = b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

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
                        Command::Schedules(args) => commands::schedules::schedules(args)
                            .await
                            .map(|()| ExitCode::SUCCESS),
                        Command::Universes(args) => commands::schedules::universes(args)
                            .await
                            .map(|()| ExitCode::SUCCESS),
                        Command::Actions(args) => commands::actions::run(args)
                            .await
                            .map(|()| ExitCode::SUCCESS),
                        Command::Quality(args) => commands::quality::run(args)
                            .await
                            .map(|()| ExitCode::SUCCESS),
                        Command::Export(args) => commands::export::run(args)
                            .await
                            .map(|()| ExitCode::SUCCESS),
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
