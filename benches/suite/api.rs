//! Section 4: `GET /api/v1/backfill/status/{id}` under 200 concurrent clients while a job
//! ingests. `backfill serve` (API and embedded worker) runs as its own process on PostgreSQL and
//! then SQLite; the simulator runs as another process at the lowest CPU priority (it stands in for
//! Polygon, which runs on other machines); the clients run in this process, over loopback HTTP.
//!
//! Three load shapes, 8 seconds each, on a job of 50 symbols x a year of minutes that is still
//! ingesting at the end: 200 clients each asking every 100 ms (200 dashboards polling at 10 Hz,
//! 2,000 requests a second, the clients' ticks spread evenly; the target applies to this one),
//! five times as often (10,000 requests a second), and flat out (each client asks again as soon as
//! it has its answer: the server's capacity, where latency is mostly queueing).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::db::TempPg;
use crate::report::{thousands, Row};
use crate::{Ctx, API_KEY};

const CLIENTS: usize = 200;
/// The p99 target, in milliseconds.
const TARGET_P99_MS: f64 = 20.0;

/// A `backfill` process, stopped when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Starts `backfill ARGS...` and returns it with the first word after `marker` on its standard
/// error (where it listens).
fn start(
    args: &[&str],
    envs: &[(&str, &str)],
    marker: &'static str,
    dir: &Path,
) -> anyhow::Result<(Process, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_backfill"))
        .args(args)
        .envs(envs.iter().copied())
        .env("BACKFILL_LOG_FORMAT", "text")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting backfill")?;
    let stderr = child.stderr.take().context("standard error")?;
    let process = Process(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(marker).nth(1) {
                let word = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(word.trim_matches('"').to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .with_context(|| format!("`backfill {}` did not start", args.join(" ")))?;
    Ok((process, addr))
}

/// What one load shape measured.
struct Load {
    hz: Option<u32>,
    latencies: Vec<Duration>,
    errors: u64,
    secs: f64,
    job_running: bool,
    percent: f64,
}

impl Load {
    fn percentile(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies
            .get(i)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }

    fn row(&self, backend: &str) -> Row {
        let shape = self.hz.map_or_else(
            || "flat out (each asks again at once)".to_owned(),
            |hz| format!("each asking at {hz} Hz"),
        );
        let p99 = self.percentile(0.99);
        let result = format!(
            "p50 {:.1} ms, p90 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms; {} requests, {} errors, \
             {} req/s; the job was {} ({:.0} %) at the end",
            self.percentile(0.5),
            self.percentile(0.9),
            self.percentile(1.0),
            thousands(self.latencies.len() as u64),
            self.errors,
            thousands((self.latencies.len() as f64 / self.secs) as u64),
            if self.job_running {
                "still running"
            } else {
                "no longer running"
            },
            self.percent,
        );
        let measurement = format!(
            "API under load, {backend}: `GET /api/v1/backfill/status/{{id}}`, {CLIENTS} clients \
             {shape}, while 50 symbols x a year of 1m bars ingest"
        );
        let valid = self.job_running && self.errors == 0;
        match self.hz {
            Some(10) => Row::new(
                measurement,
                result,
                "-",
                format!("p99 {p99:.1} ms, no errors, job ingesting (target: p99 <= 20 ms)"),
                valid && p99 <= TARGET_P99_MS,
            ),
            _ => Row::new(
                measurement,
                result,
                "-",
                format!("p99 {p99:.1} ms (no target: a heavier load than the target's, for headroom; errors must be 0)"),
                valid,
            ),
        }
    }
}

pub(crate) async fn rows(ctx: &Ctx) -> Vec<Row> {
    let mut rows = Vec::new();
    for backend in ["postgres", "sqlite"] {
        for hz in [Some(10), Some(50), None] {
            match measure(ctx, backend, hz).await {
                Ok(load) => rows.push(load.row(backend)),
                Err(err) => rows.push(Row::failed(
                    format!("API under load, {backend}, {hz:?} Hz"),
                    &err,
                )),
            }
        }
    }
    rows
}

async fn measure(ctx: &Ctx, backend: &str, hz: Option<u32>) -> anyhow::Result<Load> {
    let window = if ctx.sizes.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(8)
    };
    let dir = tempfile::tempdir()?;
    let (sim, sim_url) = start(
        &["sim", "--addr", "127.0.0.1:0", "--api-key", API_KEY],
        &[("RUST_LOG", "info")],
        "base_url=",
        dir.path(),
    )?;
    let _ = Command::new("renice")
        .args(["-n", "19", "-p", &sim.0.id().to_string()])
        .output();
    let pg = match backend {
        "postgres" => Some(TempPg::create(&ctx.admin_url, "api").await?),
        _ => None,
    };
    let url = pg.as_ref().map_or_else(
        || format!("sqlite://{}", dir.path().join("bench.db").display()),
        |pg| pg.url.clone(),
    );
    let (server, addr) = start(
        &["serve", "--bind", "127.0.0.1:0"],
        &[
            ("DATABASE_URL", &url),
            ("POLYGON_API_KEY", API_KEY),
            ("POLYGON_BASE_URL", &sim_url),
            ("RUST_LOG", "info,backfill_api=warn,tower_http=warn"),
        ],
        "listening on http://",
        dir.path(),
    )?;
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;

    // A job big enough to ingest for the whole measurement.
    let symbols: Vec<String> = (0..50).map(|i| format!("SYM{i:03}")).collect();
    let body = serde_json::json!({
        "symbols": symbols, "timeframe": "1m", "from": "2024-01-01", "to": "2024-12-31",
    });
    let created: serde_json::Value = client
        .post(format!("{base}/api/v1/backfill"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let status_url = format!(
        "{base}/api/v1/backfill/status/{}",
        created["job"]["id"].as_str().context("the job's id")?
    );
    // Let ingest get going before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let period = Duration::from_micros(1_000_000 / u64::from(hz.unwrap_or(1_000_000)));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let client = client.clone();
            let url = status_url.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                // Each client's ticks start at its own offset, so requests arrive evenly.
                let offset = period * i as u32 / CLIENTS as u32;
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                while started.elapsed() < window {
                    if hz.is_some() {
                        tick.tick().await;
                    }
                    let t = Instant::now();
                    match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            if r.bytes().await.is_err() {
                                errors += 1;
                            }
                        }
                        _ => errors += 1,
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    let last: serde_json::Value = client.get(&status_url).send().await?.json().await?;
    latencies.sort();
    drop(server);
    drop(sim);
    if let Some(pg) = pg {
        pg.drop_db().await?;
    }
    Ok(Load {
        hz,
        latencies,
        errors,
        secs,
        job_running: last["job"]["status"] == "running",
        percent: last["progress"]["percent"].as_f64().unwrap_or_default(),
    })
}
