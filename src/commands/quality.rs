//! `backfill quality`: the quality report of a stored series, read from the database.

use std::io::Write;

use anyhow::Context;
use backfill_domain::QualityReport;
use backfill_storage::QualityQuery;
use chrono::Utc;

use crate::app;
use crate::cli::QualityArgs;

pub(crate) async fn run(args: QualityArgs) -> anyhow::Result<()> {
    let now = Utc::now();
    let range = args.series.range(now).context("--from and --to")?;
    let database = app::open_storage(&args.database, args.demo).await?;
    let report = backfill_storage::quality(
        database.storage.as_ref(),
        &QualityQuery {
            symbol: args.symbol.clone(),
            timeframe: args.series.timeframe,
            adjusted: args.series.adjusted,
            range,
        },
        now,
    )
    .await
    .context("reading the series")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        render(&mut out, &report)?;
    }
    Ok(())
}

fn render(out: &mut impl Write, r: &QualityReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{} {} {}",
        r.symbol,
        r.timeframe,
        if r.adjusted { "adjusted" } else { "raw" }
    )?;
    if r.covered.is_empty() {
        writeln!(out, "covered    nothing in this range")?;
    }
    for c in &r.covered {
        writeln!(out, "covered    {c}")?;
    }
    writeln!(
        out,
        "bars       {}{}",
        r.bars,
        match (r.first_bar, r.last_bar) {
            (Some(a), Some(b)) => format!(" from {a} to {b}"),
            _ => String::new(),
        }
    )?;
    writeln!(
        out,
        "days       {} trading days covered, {} with bars, {} without{}",
        r.days.covered,
        r.days.with_bars,
        r.days.without_bars,
        if r.days.without_bars_dates.is_empty() {
            String::new()
        } else {
            format!(
                " (market holidays, or missing data): {}",
                r.days
                    .without_bars_dates
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    )?;
    if let Some(g) = &r.session_gaps {
        writeln!(
            out,
            "minutes    regular session: {} of {} without a bar; extended: {} of {} \
             (no eligible trade in a minute means no bar)",
            g.regular_missing, g.regular_minutes, g.extended_missing, g.extended_minutes
        )?;
        for d in &g.worst_days {
            writeln!(
                out,
                "           {}: {} regular, {} extended",
                d.date, d.regular_missing, d.extended_missing
            )?;
        }
        for gap in &g.longest_gaps {
            writeln!(
                out,
                "           gap {} to {} ({} minutes)",
                gap.from, gap.to, gap.minutes
            )?;
        }
    }
    writeln!(
        out,
        "values     {} bars with contradictory values",
        r.ohlc.violations
    )?;
    for v in &r.ohlc.examples {
        writeln!(out, "           {}: {}", v.ts, v.problem)?;
    }
    if r.outside_session > 0 {
        writeln!(
            out,
            "session    {} bars outside 04:00-20:00 New York",
            r.outside_session
        )?;
    }
    if let Some(a) = &r.day_agreement {
        writeln!(
            out,
            "day bars   {} days compared, {} disagree (beyond {} % on prices, {} % on volume); \
             {} days without a day bar, {} day bars without minutes",
            a.days_compared,
            a.days_disagreeing,
            a.price_tolerance * 100.0,
            a.volume_tolerance * 100.0,
            a.days_without_day_bar,
            a.day_bars_without_minutes
        )?;
        for d in &a.examples {
            writeln!(
                out,
                "           {} {}: minutes {} against day bar {}",
                d.date, d.field, d.from_minutes, d.day_bar
            )?;
        }
    }
    Ok(())
}
