use tracing::info;

use crate::app;
use crate::cli::MigrateArgs;

pub(crate) async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let backend = app::open_storage(&args.database, false).await?.backend;
    info!(%backend, "the database schema is up to date");
    Ok(())
}
