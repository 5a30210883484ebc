//! Section 6 (`wide`): a job of many symbols, each one request of day bars, so that the work per
//! task outside fetching (claims, completions, settling the job, progress) is what is measured.
//! The time per symbol of a 1,000-symbol job is compared with that of a 100-symbol job of the
//! same days: work that grows with the size of the job at every task (reading the whole job back
//! after each task, say) makes the large job's symbols slower, quadratically.

use std::path::Path;

use crate::db::{checkpoint, TempPg};
use crate::report::{per_second, thousands, Row};
use crate::worker::{self, RunOutcome};
use crate::Ctx;

/// The largest ratio of the large job's time per symbol to the small job's that passes.
const TARGET_RATIO: f64 = 1.25;
/// The days of each symbol.
const FROM: &str = "2024-01-01";
const TO: &str = "2024-12-31";

/// The table's rows: PostgreSQL, then SQLite.
pub(crate) async fn rows(ctx: &Ctx) -> Vec<Row> {
    let (small, large) = if ctx.sizes.quick {
        (10, 100)
    } else {
        (100, 1_000)
    };
    let mut rows = Vec::new();
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let name = format!(
            "A wide job, {}: `backfill run` (concurrency {}) of {} stock-like symbols x day bars \
             from {FROM} to {TO} (one request each)",
            backend.name(),
            ctx.sizes.concurrency,
            thousands(large as u64),
        );
        let measured = async {
            let s = run(ctx, backend, small).await?;
            let l = run(ctx, backend, large).await?;
            anyhow::Ok((s, l))
        }
        .await;
        let ((s, s_n), (l, l_n)) = match measured {
            Ok(m) => m,
            Err(e) => {
                rows.push(Row::failed(name, &e));
                continue;
            }
        };
        let per_symbol = |r: &RunOutcome, n: usize| r.wall_secs / n as f64;
        let ratio = per_symbol(&l, l_n) / per_symbol(&s, s_n);
        rows.push(Row::new(
            name,
            format!(
                "{:.2} s: {:.2} ms a symbol, {} symbols/s, {} candles",
                l.wall_secs,
                per_symbol(&l, l_n) * 1e3,
                per_second(l_n as u64, l.wall_secs),
                thousands(l.candles_stored)
            ),
            format!(
                "{} symbols of the same days: {:.2} s, {:.2} ms a symbol",
                thousands(s_n as u64),
                s.wall_secs,
                per_symbol(&s, s_n) * 1e3
            ),
            format!(
                "time per symbol {ratio:.2} of the small job's (target <= {TARGET_RATIO}: no \
                 work per task that grows with the job)"
            ),
            ratio <= TARGET_RATIO,
        ));
    }
    rows
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Sqlite => "SQLite",
        }
    }
}

/// One job of `n` symbols on a fresh database of `backend`; returns the run and `n`.
async fn run(ctx: &Ctx, backend: Backend, n: usize) -> anyhow::Result<(RunOutcome, usize)> {
    let symbols: Vec<String> = (0..n).map(|i| format!("WIDE{i:04}")).collect();
    let dir = tempfile::tempdir()?;
    let outcome = match backend {
        Backend::Postgres => {
            let db = TempPg::create(&ctx.admin_url, &format!("wide{n}")).await?;
            let measured = async {
                worker::migrate(&db.url, dir.path()).await?;
                checkpoint(&db.options).await;
                one_run(ctx, &db.url, &symbols, dir.path()).await
            }
            .await;
            db.drop_db().await?;
            measured?
        }
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("wide.db").display());
            worker::migrate(&url, dir.path()).await?;
            one_run(ctx, &url, &symbols, dir.path()).await?
        }
    };
    Ok((outcome, n))
}

async fn one_run(
    ctx: &Ctx,
    url: &str,
    symbols: &[String],
    dir: &Path,
) -> anyhow::Result<RunOutcome> {
    worker::run(
        url,
        ctx.sim.base_url(),
        symbols,
        "1d",
        (FROM, TO),
        ctx.sizes.concurrency,
        dir,
    )
    .await
}
