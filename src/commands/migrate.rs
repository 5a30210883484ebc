use tracing::info;

use crate::app;
use crate::cli::MigrateArgs;

pub(crate) async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let (_, backend) = app::open_storage(&args.database, false).await?;
    info!(%backend, "the database schema is up to date");
    Ok(())
}
