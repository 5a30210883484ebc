//! `backfill serve`: the REST API and dashboard, with an embedded worker unless `--no-worker`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backfill_api::{ApiConfig, AppState};
use backfill_worker::{ProgressBus, Worker, WorkerDeps};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app;
use crate::cli::ServeArgs;

/// How long open connections (progress streams in particular) may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let signal = app::shutdown_signal();
    let metrics = app::install_metrics()?;
    backfill_api::describe_metrics();
    let market = if args.no_worker {
        None
    } else {
        Some(app::market(&args.polygon).await?)
    };
    let (storage, backend) = app::open_storage(&args.database, args.polygon.demo).await?;

    let mut config = ApiConfig::default()
        .with_api_token(args.api_token.clone())
        .context("BACKFILL_API_TOKEN")?
        .with_cors_origins(&args.cors_origins)
        .context("BACKFILL_CORS_ORIGINS")?
        .with_demo(args.polygon.demo);
    if let Some(key) = &args.polygon.polygon_api_key {
        config = config.with_redacted_secret(key.clone());
    }
    let mut state = AppState::new(storage.clone(), storage.clone(), config)
        .with_metrics_renderer(move || metrics.render());

    let shutdown = CancellationToken::new();
    app::export_job_metrics(storage.clone(), shutdown.clone());
    let mut worker_task = None;
    let mut simulator = None;
    if let Some(market) = market {
        let bus = ProgressBus::new(4096);
        state = state.with_progress_bus(bus.clone());
        app::export_client_metrics(market.client.clone(), shutdown.clone());
        let config = app::worker_config(&args.worker);
        info!(
            worker = %config.id,
            concurrency = config.concurrency,
            nice = args.worker_nice,
            "embedded worker"
        );
        let worker = Worker::new(
            WorkerDeps {
                queue: storage.clone(),
                candles: storage.clone(),
                jobs: storage.clone(),
                market: Arc::new(market.client),
            },
            bus,
            config,
        );
        // The worker runs on a runtime of its own at a lower CPU priority (see `ingest_runtime`),
        // on a thread that owns that runtime and drops it when the worker has stopped.
        let runtime = app::ingest_runtime(args.worker_nice)?;
        let token = shutdown.clone();
        let (done, finished) = tokio::sync::oneshot::channel();
        let nice = args.worker_nice;
        std::thread::Builder::new()
            .name("backfill-ingest".to_owned())
            .spawn(move || {
                app::lower_thread_priority(nice);
                let _ = done.send(runtime.block_on(worker.run(token)));
            })
            .context("starting the embedded worker's thread")?;
        worker_task = Some(finished);
        simulator = market.simulator;
    }

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    info!(
        %backend,
        demo = args.polygon.demo,
        "listening on http://{addr} (dashboard at /, API under /api/v1, OpenAPI at /api/openapi.json)"
    );

    let stop = shutdown.clone();
    tokio::spawn(async move {
        signal.await;
        info!("signal received; shutting down");
        stop.cancel();
    });
    let graceful = shutdown.clone();
    let server = backfill_api::serve(listener, state, async move { graceful.cancelled().await });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result.context("serving HTTP")?,
        () = async { shutdown.cancelled().await; tokio::time::sleep(DRAIN).await } => {
            warn!("connections still open after {DRAIN:?}; closing them");
        }
    }
    if let Some(task) = worker_task {
        task.await
            .context("the embedded worker's thread stopped without an answer")?
            .context("stopping the worker")?;
    }
    if let Some(sim) = simulator {
        sim.shutdown().await.context("stopping the simulator")?;
    }
    info!("stopped");
    Ok(())
}
