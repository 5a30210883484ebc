//! The header line: what the figures were measured on.

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};

/// `machine: N CPUs (MODEL), RAM, PostgreSQL VERSION, SQLite VERSION, load average, date`.
pub(crate) async fn describe(admin: &PgConnectOptions) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let load = load_average();
    let postgres = match PgConnection::connect_with(admin).await {
        Ok(mut conn) => {
            let v: Result<String, _> = sqlx::query_scalar("SHOW server_version")
                .fetch_one(&mut conn)
                .await;
            let _ = conn.close().await;
            v.unwrap_or_else(|e| format!("unknown ({e})"))
        }
        Err(e) => format!("unreachable ({e})"),
    };
    let sqlite = match SqliteConnection::connect("sqlite::memory:").await {
        Ok(mut conn) => {
            let v: Result<String, _> = sqlx::query_scalar("SELECT sqlite_version()")
                .fetch_one(&mut conn)
                .await;
            let _ = conn.close().await;
            v.unwrap_or_else(|_| "unknown".to_owned())
        }
        Err(_) => "unknown".to_owned(),
    };
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    format!(
        "**machine:** {cpus} CPUs (nproc), {model}, {:.1} GiB RAM, PostgreSQL {postgres} \
         (server, from DATABASE_URL), SQLite {sqlite} (bundled by sqlx), load average \
         {load} at start; {date}; release profile",
        ram_kib as f64 / (1024.0 * 1024.0)
    )
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` has them.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}
