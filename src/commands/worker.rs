//! `backfill worker`: takes tasks from the shared database until SIGINT or SIGTERM.

use anyhow::Context;
use backfill_progress::ProgressBus;
use tracing::info;

use crate::app;
use crate::cli::WorkerCommand;

pub(crate) async fn run(args: WorkerCommand) -> anyhow::Result<()> {
    let shutdown = app::shutdown_on_signal();
    let mut market = app::market(&args.polygon).await?;
    let database = app::open_storage(&args.database, args.polygon.demo).await?;
    market.share_quota(&database)?;
    let (storage, backend) = (database.storage, database.backend);
    let worker = app::worker(
        &storage,
        &market,
        &args.worker,
        None,
        ProgressBus::new(1024),
    );
    info!(%backend, worker = %worker.config().id, "starting worker");
    let scheduler = app::spawn_scheduler(
        &storage,
        market.sources(),
        Some(&market),
        args.scheduler.no_scheduler,
        shutdown.clone(),
    );
    worker.run(shutdown).await?;
    if let Some(scheduler) = scheduler {
        scheduler.await.context("the scheduler panicked")?;
    }
    market.settle().await;
    drop(market.simulator);
    Ok(())
}
