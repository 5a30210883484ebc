use std::io::Write;

use backfill_domain::{DateRange, JobSpec, Session, SourceCost, Sources};
use backfill_polygon::requests_needed;
use serde_json::json;

use crate::cli::{PlanArgs, SpecArgs};

/// Validates the arguments into a job spec, with messages that name the bad value, and
/// resolves its source among those `available`; also answers what each source would cost.
pub(crate) fn spec(
    args: SpecArgs,
    available: Sources,
) -> anyhow::Result<(JobSpec, Vec<SourceCost>)> {
    let range = DateRange::new(args.from, args.to)?;
    let symbols = (!args.all_tickers).then_some(args.symbols);
    let (spec, costs) = JobSpec::plan(
        symbols,
        args.timeframe,
        range,
        args.adjusted,
        args.mode.into(),
        args.source,
        available,
    )?;
    Ok((spec, costs))
}

pub(crate) fn run(args: PlanArgs) -> anyhow::Result<()> {
    let available = Sources {
        flat_files: args.files.configured(),
    };
    let (spec, costs) = spec(args.spec, available)?;
    let range = spec.range();
    let base = spec
        .timeframe()
        .base()
        .duration()
        .num_milliseconds()
        .unsigned_abs();
    let base_bars = range.len_ms().unsigned_abs().div_ceil(base);
    let per_symbol: Vec<_> = spec
        .symbols()
        .iter()
        .map(|symbol| {
            let session = Session::of(symbol);
            json!({
                "symbol": symbol,
                "session": match session {
                    Session::AroundTheClock => "around_the_clock",
                    Session::ExtendedHours => "extended_hours",
                },
                "requests": requests_needed(&range, spec.timeframe(), session),
            })
        })
        .collect();
    let requests: u64 = per_symbol
        .iter()
        .filter_map(|s| s["requests"].as_u64())
        .sum();
    let plan = json!({
        "job": spec,
        "source": spec.source(),
        "source_reason": spec.source_reason(),
        "tasks": spec.units().len(),
        "costs": costs,
        "base_aggregates_at_most_per_symbol": base_bars,
        "per_symbol": per_symbol,
        "requests": requests,
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &plan)?;
    writeln!(out)?;
    Ok(())
}
