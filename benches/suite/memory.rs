//! Section 3: the peak resident memory of a worker backfilling many symbols over a long range.

use anyhow::Context;
use sqlx::PgConnection;

use crate::report::{per_second, thousands, Row};
use crate::requests::Recorded;
use crate::worker::{self, RunOutcome};
use crate::Ctx;

/// The target, in bytes (MB as in docs/PERFORMANCE.md: 10^6 bytes).
const TARGET_BYTES: u64 = 150_000_000;

/// `backfill run` of stock-like symbols on PostgreSQL; returns the rows and what the simulator
/// served to the worker.
pub(crate) async fn postgres(ctx: &Ctx) -> (Vec<Row>, Option<Recorded>) {
    let w = match ctx.stock_workload() {
        Ok(w) => w,
        Err(e) => {
            return (
                vec![Row::failed("Peak resident memory of `backfill run`", &e)],
                None,
            )
        }
    };
    let name = format!(
        "Peak resident memory of `backfill run` (concurrency {}), {}, PostgreSQL",
        ctx.sizes.concurrency, w.label
    );
    let measured = async {
        let dir = tempfile::tempdir()?;
        worker::run_on_fresh_pg(
            ctx,
            w,
            "memory",
            dir.path(),
            async |conn: &mut PgConnection| {
                let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM candles")
                    .fetch_one(conn)
                    .await?;
                Ok(u64::try_from(stored).unwrap_or(0))
            },
        )
        .await
    }
    .await;
    let (run, stats, stored) = match measured {
        Ok(m) => m,
        Err(e) => return (vec![Row::failed(name, &e)], None),
    };
    let rows = vec![
        rss_row(name, &run, stored),
        Row::new(
            "Candles stored by the memory run above = the simulator's expected candles",
            format!(
                "{} rows in `candles` ({} in the run's summary)",
                thousands(stored),
                thousands(run.candles_stored)
            ),
            format!(
                "{} (`Simulator::expected_candles`)",
                thousands(w.expected_total())
            ),
            "equal",
            stored == w.expected_total() && run.candles_stored == stored,
        ),
    ];
    let recorded = Recorded {
        label: w.label.clone(),
        symbols: w.symbols.clone(),
        base_bars: w.expected.clone(),
        stats,
    };
    (rows, Some(recorded))
}

fn rss_row(name: String, run: &RunOutcome, stored: u64) -> Row {
    let result = run
        .peak_rss_bytes
        .context("`backfill run --json` reported no peak_rss_bytes");
    match result {
        Ok(rss) => Row::new(
            name,
            format!(
                "{:.1} MB (the worker process's VmHWM; {} candles in {:.1} s: {} candles/s)",
                rss as f64 / 1e6,
                thousands(stored),
                run.wall_secs,
                per_second(stored, run.wall_secs)
            ),
            "-",
            format!(
                "{:.2} of the target (target <= 150 MB)",
                rss as f64 / TARGET_BYTES as f64
            ),
            rss <= TARGET_BYTES,
        ),
        Err(e) => Row::failed(name, &e),
    }
}
