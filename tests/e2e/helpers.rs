//! Running the binary as a user would.

use std::path::Path;
use std::process::{Command, Output};

/// The `backfill` binary with a clean environment: no keys, no database URL, in `dir`.
pub(crate) fn backfill(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backfill"));
    cmd.current_dir(dir)
        .env_remove("POLYGON_API_KEY")
        .env_remove("MASSIVE_API_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("BACKFILL_DEMO")
        .env("RUST_LOG", "info");
    cmd
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
