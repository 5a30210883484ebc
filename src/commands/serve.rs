//! `backfill serve`: the REST API and dashboard, with an embedded worker unless `--no-worker`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backfill_api::{ApiConfig, AppState};
use backfill_domain::Sources;
use backfill_progress::ProgressBus;
use backfill_worker::Worker;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app;
use crate::cli::ServeArgs;
use crate::quota::ClientQuota;
use crate::reference::PolygonReference;

/// How long open connections (progress streams in particular) may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = app::shutdown_on_signal();
    let metrics = app::install_metrics()?;
    backfill_api::describe_metrics();
    // An API-only node has a Polygon client too when it is given a key (universe refreshes).
    let has_key = args.polygon.polygon_api_key.is_some()
        || std::env::var("MASSIVE_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    let mut market = if args.no_worker && !args.polygon.demo && !has_key {
        None
    } else {
        Some(app::market(&args.polygon).await?)
    };
    let database = app::open_storage(&args.database, args.polygon.demo).await?;
    if let Some(market) = &mut market {
        market.share_quota(&database)?;
    }
    let (storage, backend) = (database.storage, database.backend);

    let sources = match &market {
        Some(market) => market.sources(),
        // An API-only node accepts Flat Files jobs when it is given the credentials its
        // workers use.
        None => Sources {
            flat_files: args.polygon.demo || args.polygon.files.configured(),
        },
    };
    let mut config = ApiConfig::default()
        .with_api_token(args.api_token.clone())
        .context("BACKFILL_API_TOKEN")?
        .with_cors_origins(&args.cors_origins)
        .context("BACKFILL_CORS_ORIGINS")?
        .with_demo(args.polygon.demo)
        .with_sources(sources);
    for secret in [
        &args.polygon.polygon_api_key,
        &args.polygon.files.s3_access_key_id,
        &args.polygon.files.s3_secret_access_key,
    ]
    .into_iter()
    .flatten()
    {
        config = config.with_redacted_secret(secret.clone());
    }
    let mut state = AppState::new(storage.clone(), storage.clone(), config)
        .with_schedules(storage.clone())
        .with_actions(storage.clone())
        .with_metrics_renderer(move || metrics.render());
    let scheduler = app::spawn_scheduler(
        &storage,
        sources,
        market.as_ref(),
        args.scheduler.no_scheduler,
        shutdown.clone(),
    );

    app::export_job_metrics(storage.clone(), shutdown.clone());
    let mut worker_stopped = None;
    let mut simulator = None;
    let mut fleet_quota = None;
    if let Some(mut market) = market {
        state = state
            .with_reference_tickers(Arc::new(PolygonReference(market.client.clone())))
            .with_actions_source(Arc::new(PolygonReference(market.client.clone())))
            .with_quota_view(Arc::new(ClientQuota(Arc::clone(market.client.quota()))));
        simulator = market.simulator.take();
        if let Some(quota) = &market.fleet_quota {
            app::export_quota_metrics(quota.clone(), shutdown.clone());
        }
        if args.no_worker {
            info!("no embedded worker (--no-worker)");
        } else {
            let bus = ProgressBus::new(4096);
            state = state.with_progress_bus(bus.clone());
            app::export_client_metrics(market.client.clone(), shutdown.clone());
            let worker = app::worker(&storage, &market, &args.worker, None, bus);
            info!(
                worker = %worker.config().id,
                concurrency = worker.config().concurrency,
                nice = args.worker_nice,
                "embedded worker"
            );
            worker_stopped = Some(spawn_embedded_worker(
                worker,
                args.worker_nice,
                shutdown.clone(),
            )?);
        }
        fleet_quota = market.fleet_quota;
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

    let graceful = shutdown.clone();
    let server = backfill_api::serve(listener, state, async move { graceful.cancelled().await });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result.context("serving HTTP")?,
        () = async { shutdown.cancelled().await; tokio::time::sleep(DRAIN).await } => {
            warn!("connections still open after {DRAIN:?}; closing them");
        }
    }
    if let Some(stopped) = worker_stopped {
        stopped
            .await
            .context("the embedded worker's thread stopped without an answer")?
            .context("stopping the worker")?;
    }
    if let Some(scheduler) = scheduler {
        scheduler.await.context("the scheduler panicked")?;
    }
    if let Some(quota) = fleet_quota {
        quota.settle().await;
    }
    if let Some(sim) = simulator {
        sim.shutdown().await.context("stopping the simulator")?;
    }
    info!("stopped");
    Ok(())
}

/// Runs the embedded worker until `shutdown`, on a tokio runtime of its own whose threads run
/// at CPU niceness `nice` (see [`app::ingest_runtime`]), on a thread that owns that runtime and
/// drops it when the worker has stopped. The answer arrives when the worker has stopped.
fn spawn_embedded_worker(
    worker: Worker,
    nice: u8,
    shutdown: CancellationToken,
) -> anyhow::Result<oneshot::Receiver<backfill_worker::Result<()>>> {
    let runtime = app::ingest_runtime(nice)?;
    let (done, stopped) = oneshot::channel();
    std::thread::Builder::new()
        .name("backfill-ingest".to_owned())
        .spawn(move || {
            app::lower_thread_priority(nice);
            let _ = done.send(runtime.block_on(worker.run(shutdown)));
        })
        .context("starting the embedded worker's thread")?;
    Ok(stopped)
}
