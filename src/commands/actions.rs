//! `backfill actions show|refresh|fix SYMBOL`: a symbol's corporate actions through a running
//! `backfill serve`.

use std::io::Write;

use anyhow::Context;
use backfill_api::{CorporateActionsBody, FixBody};
use reqwest::Method;

use crate::cli::{ActionsAction, ActionsArgs};
use crate::commands::client;

pub(crate) async fn run(args: ActionsArgs) -> anyhow::Result<()> {
    let (method, path) = match &args.action {
        ActionsAction::Show { symbol } => {
            (Method::GET, format!("/api/v1/corporate-actions/{symbol}"))
        }
        ActionsAction::Refresh { symbol } => (
            Method::POST,
            format!("/api/v1/corporate-actions/{symbol}/refresh"),
        ),
        ActionsAction::Fix { symbol } => (
            Method::POST,
            format!("/api/v1/corporate-actions/{symbol}/fix"),
        ),
    };
    let answer = client::call(&args.server, method, &path, None).await?;
    let mut out = std::io::stdout().lock();
    if args.server.json {
        return client::json(&mut out, &answer);
    }
    match &args.action {
        ActionsAction::Fix { symbol } => {
            let fix: FixBody = serde_json::from_slice(&answer).context("decoding the answer")?;
            if fix.jobs.is_empty() {
                writeln!(out, "{symbol}: no stale adjusted series, no job started")?;
            }
            for job in fix.jobs {
                writeln!(
                    out,
                    "{symbol} {}: full adjusted backfill {} from {} to {}",
                    job.timeframe,
                    job.job_id,
                    job.range.from(),
                    job.range.to()
                )?;
            }
        }
        _ => {
            let body: CorporateActionsBody =
                serde_json::from_slice(&answer).context("decoding the answer")?;
            print_actions(&mut out, &body)?;
        }
    }
    Ok(())
}

fn print_actions(out: &mut impl Write, body: &CorporateActionsBody) -> anyhow::Result<()> {
    writeln!(out, "symbol     {}", body.symbol)?;
    if let Some(changed) = body.changed {
        writeln!(
            out,
            "refreshed  {} splits and {} dividends new or changed",
            changed.splits, changed.dividends
        )?;
    }
    writeln!(out, "splits     {}", body.splits.len())?;
    for s in &body.splits {
        writeln!(
            out,
            "  {}  {} -> {}",
            s.execution_date, s.split_from, s.split_to
        )?;
    }
    writeln!(out, "dividends  {}", body.dividends.len())?;
    if let Some(last) = body.dividends.last() {
        writeln!(
            out,
            "  latest {}  {} {}",
            last.ex_dividend_date,
            last.cash_amount,
            last.currency.as_deref().unwrap_or("")
        )?;
    }
    writeln!(out, "adjusted series")?;
    for series in &body.series {
        let fetched = series
            .adjusted_fetched_at
            .map_or_else(|| "never recorded".to_owned(), |t| t.to_rfc3339());
        match &series.stale_since {
            Some(split) => writeln!(
                out,
                "  {:<4} fetched {fetched}: STALE since the split of {} (backfill actions fix {})",
                series.timeframe.to_string(),
                split.execution_date,
                body.symbol
            )?,
            None => writeln!(
                out,
                "  {:<4} fetched {fetched}: current",
                series.timeframe.to_string()
            )?,
        }
    }
    Ok(())
}
