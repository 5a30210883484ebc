use std::sync::Arc;

use backfill_worker::{ProgressBus, Worker, WorkerDeps};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::app;
use crate::cli::WorkerCommand;

pub(crate) async fn run(args: WorkerCommand) -> anyhow::Result<()> {
    let signal = app::shutdown_signal();
    let market = app::market(&args.polygon).await?;
    let (storage, backend) = app::open_storage(&args.database, args.polygon.demo).await?;
    let config = app::worker_config(&args.worker);
    info!(%backend, worker = %config.id, "starting worker");
    let deps = WorkerDeps {
        queue: storage.clone(),
        candles: storage.clone(),
        jobs: storage,
        market: Arc::new(market.client),
    };
    let worker = Worker::new(deps, ProgressBus::new(1024), config);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        signal.await;
        info!("signal received; finishing in-flight pages and releasing leases");
        stop.cancel();
    });
    worker.run(shutdown).await?;
    drop(market.simulator);
    Ok(())
}
