//! Latency of `GET /api/v1/backfill/status/{id}` under 200 concurrent clients while a job
//! ingests: `backfill serve` runs as its own process (embedded worker, PostgreSQL or SQLite), the
//! simulator and the clients run in this process, over loopback HTTP.
//!
//! `cargo bench --bench api [-- sqlite|postgres]`. Two load shapes are measured:
//! - paced: each client asks every 100 ms, like 200 dashboards polling at 10 Hz;
//! - flat out: each client asks again as soon as it has its answer (closed loop), which shows the
//!   server's capacity.
#![expect(clippy::print_stdout, reason = "a benchmark prints its results")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backfill_polygon_sim::{SimConfig, Simulator};

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
        for paced in [true, false] {
            rt.block_on(run(backend, paced));
        }
    }
}

async fn run(backend: &str, paced: bool) {
    let sim = Simulator::new(SimConfig::new().api_key("bench"))
        .spawn("127.0.0.1:0")
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        "sqlite" => format!("sqlite://{}", dir.path().join("bench.db").display()),
        _ => fresh_pg_database(),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_backfill"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", &url)
        .env("POLYGON_API_KEY", "bench")
        .env("POLYGON_BASE_URL", sim.base_url())
        .env("RUST_LOG", "info,backfill_api=warn,tower_http=warn")
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("backfill serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve started");
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
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                // Spread the paced clients over the interval.
                tokio::time::sleep(Duration::from_micros((i as u64 * 100_000) / CLIENTS as u64))
                    .await;
                while started.elapsed() < WINDOW {
                    if paced {
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
        if paced { "paced, 10 Hz per client" } else { "flat out" },
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
