//! The `backfill` command: validates and plans backfills of Polygon.io (Massive) aggregates.
//!
//! This binary is the only place that reads the environment and picks concrete types; the
//! libraries in `crates/` receive typed values.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use backfill_domain::{BackfillMode, DateRange, JobSpec, RangeBound, Symbol, Timeframe};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

/// Durable, resumable backfills of historical market data into PostgreSQL or SQLite.
#[derive(Debug, Parser)]
#[command(name = "backfill", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a backfill and print the job it would create and the requests it needs.
    Plan(PlanArgs),
}

#[derive(Debug, clap::Args)]
struct PlanArgs {
    /// Tickers as Polygon spells them: AAPL, BRK.A, X:BTCUSD, C:EURUSD, I:SPX, O:SPY251219C00650000.
    #[arg(required = true, value_parser = parse_symbol)]
    symbols: Vec<Symbol>,
    /// Bar size: 1s, 5m, 1h, 1d, 1w, 1mo, 1q or 1y.
    #[arg(long, short = 't', default_value = "1d", value_parser = parse_timeframe)]
    timeframe: Timeframe,
    /// First day (YYYY-MM-DD, a New York date), Unix milliseconds or RFC 3339.
    #[arg(long, value_parser = parse_bound)]
    from: RangeBound,
    /// Last day, inclusive (YYYY-MM-DD, a New York date), Unix milliseconds or RFC 3339.
    #[arg(long, value_parser = parse_bound)]
    to: RangeBound,
    /// Split- and dividend-adjusted prices (Polygon's default); `false` for raw prices.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    adjusted: bool,
    /// `missing` fetches only what is not stored yet; `full` fetches the whole range again.
    #[arg(long, value_enum, default_value_t = Mode::Missing)]
    mode: Mode,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Missing,
    Full,
}

impl From<Mode> for BackfillMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Missing => Self::Missing,
            Mode::Full => Self::Full,
        }
    }
}

fn parse_symbol(s: &str) -> Result<Symbol, String> {
    Symbol::parse(s).map_err(|e| e.to_string())
}

fn parse_timeframe(s: &str) -> Result<Timeframe, String> {
    Timeframe::parse(s).map_err(|e| e.to_string())
}

fn parse_bound(s: &str) -> Result<RangeBound, String> {
    RangeBound::parse(s).map_err(|e| e.to_string())
}

/// The most base aggregates Polygon reads for one request.
const POLYGON_BASE_LIMIT: u64 = 50_000;

fn plan(args: PlanArgs) -> anyhow::Result<serde_json::Value> {
    let range = DateRange::new(args.from, args.to)?;
    let spec = JobSpec::new(
        args.symbols,
        args.timeframe,
        range,
        args.adjusted,
        args.mode.into(),
    )?;
    let base = spec
        .timeframe()
        .base()
        .duration()
        .num_milliseconds()
        .unsigned_abs();
    let base_bars = range.len_ms().unsigned_abs().div_ceil(base);
    let requests = base_bars.div_ceil(POLYGON_BASE_LIMIT);
    Ok(json!({
        "job": spec,
        "per_symbol": {
            "base_aggregates_at_most": base_bars,
            "requests_at_least": requests,
        },
        "requests_at_least": requests * spec.symbols().len() as u64,
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => plan(args).and_then(|v| {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out).context("writing to standard output")
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
