//! The real worker: the `backfill` binary run as its own process against the simulator.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};

/// The binary under test, built by cargo for this benchmark.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_backfill");

/// What one `backfill run --json` did.
#[derive(Debug, Clone)]
pub(crate) struct RunOutcome {
    /// Wall-clock seconds of the process, from spawn to exit (migrations already applied).
    pub(crate) wall_secs: f64,
    /// `candles_stored` of the JSON summary.
    pub(crate) candles_stored: u64,
    /// The job's own `elapsed_seconds` (creation to end), when reported.
    pub(crate) job_secs: Option<f64>,
    /// The worker process's peak resident memory (`VmHWM`), when reported.
    pub(crate) peak_rss_bytes: Option<u64>,
}

/// `backfill migrate` against `database_url`, so that a timed run does not include it.
pub(crate) async fn migrate(database_url: &str, dir: &Path) -> anyhow::Result<()> {
    let mut cmd = Command::new(BIN);
    cmd.arg("migrate")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .current_dir(dir);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .context("starting backfill migrate")?;
    if !out.status.success() {
        bail!(
            "backfill migrate failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A backfill of `symbols` in `timeframe` over `[from, to]`: `backfill run ... --json` with the
/// simulator at `sim_base_url` as Polygon, timed from spawn to exit.
pub(crate) async fn run(
    database_url: &str,
    sim_base_url: &str,
    symbols: &[String],
    timeframe: &str,
    (from, to): (&str, &str),
    concurrency: u32,
    dir: &Path,
) -> anyhow::Result<RunOutcome> {
    let mut args: Vec<String> = symbols.to_vec();
    args.extend(
        ["--timeframe", timeframe, "--from", from, "--to", to]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    run_with(database_url, sim_base_url, args, &[], concurrency, dir).await
}

/// `backfill run ARGS --concurrency N --json` with the simulator at `sim_base_url` as Polygon
/// (and `env` set), timed from spawn to exit; fails unless the job succeeded.
pub(crate) async fn run_with(
    database_url: &str,
    sim_base_url: &str,
    args: Vec<String>,
    env: &[(&str, &str)],
    concurrency: u32,
    dir: &Path,
) -> anyhow::Result<RunOutcome> {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .args(args)
        .args(["--concurrency", &concurrency.to_string(), "--json"])
        .env("DATABASE_URL", database_url)
        .env("POLYGON_API_KEY", crate::API_KEY)
        .env("POLYGON_BASE_URL", sim_base_url)
        .env_remove("POLYGON_REQUESTS_PER_MINUTE")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .current_dir(dir);
    let (out, wall_secs) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = cmd.output();
        (out, started.elapsed().as_secs_f64())
    })
    .await?;
    let out = out.context("starting backfill run")?;
    if !out.status.success() {
        bail!(
            "backfill run exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .context("backfill run --json printed no JSON summary")?;
    if summary["status"] != "succeeded" {
        bail!("the job ended {}", summary["status"]);
    }
    Ok(RunOutcome {
        wall_secs,
        candles_stored: summary["candles_stored"].as_u64().unwrap_or(0),
        job_secs: summary["elapsed_seconds"].as_f64(),
        peak_rss_bytes: summary["peak_rss_bytes"].as_u64(),
    })
}

/// Runs `backfill run` for `w` against a fresh PostgreSQL database (migrated and checkpointed
/// first, the simulator's counters reset), then lets `read` query the database before it is
/// dropped.
pub(crate) async fn run_on_fresh_pg<T>(
    ctx: &crate::Ctx,
    w: &crate::Workload,
    tag: &str,
    dir: &Path,
    read: impl AsyncFnOnce(&mut sqlx::PgConnection) -> anyhow::Result<T>,
) -> anyhow::Result<(RunOutcome, backfill_polygon_sim::SimStats, T)> {
    use sqlx::Connection as _;
    let db = crate::db::TempPg::create(&ctx.admin_url, tag).await?;
    let measured = async {
        migrate(&db.url, dir).await?;
        crate::db::checkpoint(&db.options).await;
        ctx.sim.reset_stats();
        let outcome = run(
            &db.url,
            ctx.sim.base_url(),
            &w.symbols,
            "1m",
            (&w.from, &w.to),
            ctx.sizes.concurrency,
            dir,
        )
        .await?;
        let stats = ctx.sim.stats();
        let mut conn = sqlx::PgConnection::connect_with(&db.options).await?;
        let read = read(&mut conn).await?;
        conn.close().await?;
        anyhow::Ok((outcome, stats, read))
    }
    .await;
    db.drop_db().await?;
    measured
}
