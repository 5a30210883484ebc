//! Latency of `GET /api/v1/backfill/status/{id}` under 200 concurrent clients while a job
//! ingests: `backfill serve` runs as its own process (embedded worker, PostgreSQL or SQLite), the
//! simulator and the clients run in this process, over loopback HTTP.
//!
//! `cargo bench --bench api [-- sqlite|postgres]`. Two load shapes are measured:
//! - paced: each client asks every 100 ms, like 200 dashboards polling at 10 Hz (2,000 req/s),
//!   and five times as often (10,000 req/s), the clients' ticks spread evenly;
//! - flat out: each client asks again as soon as it has its answer (closed loop), which shows the
//!   server's capacity.
#![expect(clippy::print_stdout, reason = "a benchmark prints its results")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: usize = 200;
const WINDOW: Duration = Duration::from_secs(8);

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    println!("| backend | load | requests | errors | req/s | p50 | p90 | p99 | max | job still running |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for backend in ["postgres", "sqlite"] {
        if only.as_deref().is_some_and(|o| o != backend) {
            continue;
        }
        for hz in [Some(10), Some(50), None] {
            rt.block_on(run(backend, hz));
        }
    }
}

/// Starts `backfill ARGS...` and returns it with the first word after `marker` on its standard
/// error (the address it listens on).
fn start(
    args: &[&str],
    envs: &[(&str, &str)],
    marker: &'static str,
    dir: &std::path::Path,
) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_backfill"))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .stderr(Stdio::piped())
        .spawn()
        .expect("backfill");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(marker).nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned(),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the process started");
    (child, addr)
}

async fn run(backend: &str, hz: Option<u64>) {
    let period = Duration::from_micros(1_000_000 / hz.unwrap_or(1_000_000));
    let dir = tempfile::tempdir().expect("temp dir");
    // The simulator stands in for Polygon, which runs on other machines: it is a process of its
    // own here, at the lowest CPU priority, so that rendering pages does not stall the clients
    // that measure the latency.
    let (mut sim, sim_url) = start(
        &["sim", "--addr", "127.0.0.1:0", "--api-key", "bench"],
        &[("BACKFILL_LOG_FORMAT", "text"), ("RUST_LOG", "info")],
        "base_url=",
        dir.path(),
    );
    let _ = Command::new("renice")
        .args(["-n", "19", "-p", &sim.id().to_string()])
        .output();
    let url = match backend {
        "sqlite" => format!("sqlite://{}", dir.path().join("bench.db").display()),
        _ => fresh_pg_database(),
    };
    let (mut child, addr) = start(
        &["serve", "--bind", "127.0.0.1:0"],
        &[
            ("DATABASE_URL", &url),
            ("POLYGON_API_KEY", "bench"),
            ("POLYGON_BASE_URL", &sim_url),
            ("RUST_LOG", "info,backfill_api=warn,tower_http=warn"),
        ],
        "listening on http://",
        dir.path(),
    );
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("client");

    // A job big enough to ingest for the whole measurement: 50 symbols x 6 months of minutes.
    let symbols: Vec<String> = (0..50).map(|i| format!("SYM{i:03}")).collect();
    let body = serde_json::json!({
        "symbols": symbols, "timeframe": "1m", "from": "2024-01-01", "to": "2024-06-30",
    });
    let created: serde_json::Value = client
        .post(format!("{base}/api/v1/backfill"))
        .json(&body)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let status_url = format!(
        "{base}/api/v1/backfill/status/{}",
        created["job"]["id"].as_str().expect("job id")
    );
    // Let ingest get going before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let client = client.clone();
            let url = status_url.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                // Spread the paced clients evenly over the interval (each client's ticks start
                // at its own offset, so requests do not arrive in bursts of 200).
                let offset = period * i as u32 / CLIENTS as u32;
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                while started.elapsed() < WINDOW {
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
                    lat.push(t.elapsed());
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.expect("client task");
        all.extend(lat);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    let last: serde_json::Value = client
        .get(&status_url)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    let running = last["job"]["status"] == "running";
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "| {backend} | {} | {} | {errors} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} ({:.0} %) |",
        hz.map_or_else(|| "flat out".to_owned(), |hz| format!("paced, {hz} Hz per client")),
        all.len(),
        all.len() as f64 / secs,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        if running { "yes" } else { "no" },
        last["progress"]["percent"].as_f64().unwrap_or_default(),
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = sim.kill();
    let _ = sim.wait();
}

fn fresh_pg_database() -> String {
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("backfill_bench_api_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        let ok = Command::new("psql")
            .args([admin.as_str(), "-q", "-c", &sql])
            .status()
            .expect("psql")
            .success();
        assert!(ok, "{sql}");
    }
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}
