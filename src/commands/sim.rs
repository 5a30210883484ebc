//! `backfill sim`: serves the Polygon simulator until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::Context;
use backfill_polygon_sim::{SimConfig, Simulator};
use tracing::info;

use crate::app;
use crate::cli::SimArgs;

pub(crate) async fn run(args: SimArgs) -> anyhow::Result<()> {
    let shutdown = app::shutdown_on_signal();
    let mut config = SimConfig::new().seed(args.seed);
    if let Some(key) = args.api_key {
        config = config.api_key(key);
    }
    if let Some(rpm) = args.requests_per_minute {
        config = config.rate_limit(rpm, Duration::from_secs(60));
    }
    let sim = Simulator::new(config)
        .spawn(args.addr)
        .await
        .with_context(|| format!("starting the simulator on {}", args.addr))?;
    info!(
        base_url = sim.base_url(),
        "Polygon simulator serving; Ctrl-C stops it"
    );
    shutdown.cancelled().await;
    sim.shutdown().await.context("stopping the simulator")?;
    Ok(())
}
