use std::io::Write;

use backfill_domain::{DateRange, JobSpec};
use serde_json::json;

use crate::cli::{PlanArgs, SpecArgs};

/// The most base aggregates Polygon reads for one request.
const POLYGON_BASE_LIMIT: u64 = 50_000;

/// Validates the arguments into a job spec, with messages that name the bad value.
pub(crate) fn spec(args: SpecArgs) -> anyhow::Result<JobSpec> {
    let range = DateRange::new(args.from, args.to)?;
    Ok(JobSpec::new(
        args.symbols,
        args.timeframe,
        range,
        args.adjusted,
        args.mode.into(),
    )?)
}

pub(crate) fn run(args: PlanArgs) -> anyhow::Result<()> {
    let spec = spec(args.spec)?;
    let range = spec.range();
    let base = spec
        .timeframe()
        .base()
        .duration()
        .num_milliseconds()
        .unsigned_abs();
    let base_bars = range.len_ms().unsigned_abs().div_ceil(base);
    let requests = base_bars.div_ceil(POLYGON_BASE_LIMIT);
    let plan = json!({
        "job": spec,
        "per_symbol": {
            "base_aggregates_at_most": base_bars,
            "requests_at_least": requests,
        },
        "requests_at_least": requests * spec.symbols().len() as u64,
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &plan)?;
    writeln!(out)?;
    Ok(())
}
