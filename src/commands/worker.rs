//! `backfill worker`: takes tasks from the shared database until SIGINT or SIGTERM.

use anyhow::Context;
use backfill_progress::ProgressBus;
use tracing::info;

use crate::app;
use crate::cli::WorkerCommand;

pub(crate) async fn run(args: WorkerCommand) -> anyhow::Result<()> {
    let shutdown = app::shutdown_on_signal();
    let market = app::market(&args.polygon).await?;
    let (storage, backend) = app::open_storage(&args.database, args.polygon.demo).await?;
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
        args.scheduler.no_scheduler,
        shutdown.clone(),
    );
    worker.run(shutdown).await?;
    if let Some(scheduler) = scheduler {
        scheduler.await.context("the scheduler panicked")?;
    }
    drop(market.simulator);
    Ok(())
}
