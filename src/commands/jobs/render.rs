//! Printing the answers of `backfill jobs` for people, or as pretty JSON.

use std::io::Write;

use anyhow::Context;
use backfill_api::{JobStatusBody, RecentJobsBody};

use crate::cli::JobsAction;

/// The answer to `action` as a table (a listing) or a job's report.
pub(super) fn text(out: &mut impl Write, action: &JobsAction, body: &[u8]) -> anyhow::Result<()> {
    match action {
        JobsAction::List { .. } => {
            let recent: RecentJobsBody =
                serde_json::from_slice(body).context("decoding the answer")?;
            writeln!(
                out,
                "{:<36}  {:<21}  {:>6}  {:>8}  {:>12}  symbols",
                "job", "status", "tf", "percent", "candles"
            )?;
            for j in recent.jobs {
                let symbols: Vec<&str> = j
                    .job
                    .spec
                    .symbols()
                    .iter()
                    .map(backfill_domain::Symbol::as_str)
                    .collect();
                let mut symbols = symbols.join(",");
                if symbols.len() > 40 {
                    symbols.truncate(37);
                    symbols.push_str("...");
                }
                writeln!(
                    out,
                    "{:<36}  {:<21}  {:>6}  {:>7.1}%  {:>12}  {symbols}",
                    j.job.id.to_string(),
                    j.job.status.as_str(),
                    j.job.spec.timeframe().to_string(),
                    j.progress.percent,
                    j.progress.candles_stored,
                )?;
            }
        }
        _ => {
            let s: JobStatusBody = serde_json::from_slice(body).context("decoding the answer")?;
            let p = &s.progress;
            writeln!(out, "job       {}", s.job.id)?;
            writeln!(out, "status    {}", s.job.status)?;
            writeln!(
                out,
                "spec      {} {} {} adjusted={} mode={}",
                s.job.spec.timeframe(),
                s.job.spec.range(),
                s.job.spec.symbols().len(),
                s.job.spec.adjusted(),
                s.job.spec.mode()
            )?;
            writeln!(
                out,
                "progress  {:.1}%  {}/{} symbols done, {} failed, {} candles",
                p.percent, p.symbols_done, p.symbols_total, p.symbols_failed, p.candles_stored
            )?;
            if let Some(error) = &s.job.error {
                writeln!(out, "error     {error}")?;
            }
            for t in &s.tasks {
                writeln!(
                    out,
                    "  {:<24} {:<10} {:>10} candles  attempts {}{}",
                    t.unit.to_string(),
                    t.status.as_str(),
                    t.candles_stored,
                    t.attempts,
                    t.last_error
                        .as_deref()
                        .map(|e| format!("  {e}"))
                        .unwrap_or_default()
                )?;
            }
        }
    }
    Ok(())
}
