//! Peak resident memory of a worker (`backfill run`, a separate process) backfilling one-minute
//! bars from the Polygon simulator (served from this process over loopback HTTP), for growing
//! numbers of symbols and lengths of range, on SQLite and on PostgreSQL.
//!
//! `cargo bench --bench memory` (PostgreSQL from DATABASE_URL, default
//! postgres://postgres@127.0.0.1:5432/postgres; a fresh database per run).
#![expect(clippy::print_stdout, reason = "a benchmark prints its results")]

use std::process::Command;
use std::time::Instant;

use backfill_polygon_sim::{SimConfig, Simulator};

struct Case {
    symbols: usize,
    from: &'static str,
    to: &'static str,
}

const CASES: [Case; 3] = [
    Case {
        symbols: 10,
        from: "2024-01-01",
        to: "2024-03-31",
    },
    Case {
        symbols: 50,
        from: "2024-01-01",
        to: "2024-03-31",
    },
    Case {
        symbols: 50,
        from: "2024-01-01",
        to: "2024-12-31",
    },
];

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = rt
        .block_on(Simulator::new(SimConfig::new().api_key("bench")).spawn("127.0.0.1:0"))
        .expect("simulator");
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));

    println!("| backend | symbols | range | candles | seconds | candles/s | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for backend in ["sqlite", "postgres"] {
        if only.as_deref().is_some_and(|o| o != backend) {
            continue;
        }
        for case in &CASES {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = match backend {
                "sqlite" => format!("sqlite://{}", dir.path().join("bench.db").display()),
                _ => fresh_pg_database(&admin),
            };
            let symbols: Vec<String> = (0..case.symbols).map(|i| format!("SYM{i:03}")).collect();
            let started = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_backfill"))
                .arg("run")
                .args(&symbols)
                .args([
                    "--timeframe",
                    "1m",
                    "--from",
                    case.from,
                    "--to",
                    case.to,
                    "--json",
                ])
                .env("DATABASE_URL", &url)
                .env("POLYGON_API_KEY", "bench")
                .env("POLYGON_BASE_URL", sim.base_url())
                .env("RUST_LOG", "warn")
                .current_dir(dir.path())
                .output()
                .expect("backfill run");
            let secs = started.elapsed().as_secs_f64();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let summary: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("JSON summary");
            let candles = summary["candles_stored"].as_u64().unwrap_or_default();
            let rss = summary["peak_rss_bytes"].as_u64().unwrap_or_default();
            println!(
                "| {backend} | {} | {} to {} | {candles} | {secs:.1} | {:.0} | {:.1} MB |",
                case.symbols,
                case.from,
                case.to,
                candles as f64 / secs,
                rss as f64 / 1e6
            );
        }
    }
}

/// Creates an empty database on the server of `admin` and returns its URL.
fn fresh_pg_database(admin: &str) -> String {
    let name = format!("backfill_bench_{}", std::process::id());
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let status = Command::new("psql")
            .args([admin, "-q", "-c", &sql])
            .status()
            .expect("psql");
        assert!(status.success(), "{sql}");
    }
    format!("{base}/{name}")
}
