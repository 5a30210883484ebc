//! The command line: every flag also reads an environment variable.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use backfill_domain::{BackfillMode, DateRange, RangeBound, SourceChoice, Symbol, Timeframe};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

/// Durable, resumable backfills of Polygon.io (Massive) aggregates into PostgreSQL or SQLite.
#[derive(Parser)]
#[command(name = "backfill", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Serve the REST API and the dashboard, with a worker in the same process.
    Serve(ServeArgs),
    /// Run a backfill in this process, with progress bars, and exit when it ends.
    Run(RunArgs),
    /// Talk to a running `backfill serve`: list jobs, show, cancel or retry one.
    Jobs(JobsArgs),
    /// Run a worker that takes tasks from the shared database until SIGINT or SIGTERM.
    Worker(WorkerCommand),
    /// Apply the database migrations and exit.
    Migrate(MigrateArgs),
    /// Serve the Polygon simulator (deterministic data, for tests and demos).
    Sim(SimArgs),
    /// Validate a backfill and print the job it would create and the requests it needs.
    Plan(PlanArgs),
    /// Talk to a running `backfill serve`: schedules that keep series current.
    Schedules(SchedulesArgs),
    /// Talk to a running `backfill serve`: named lists of symbols for schedules.
    Universes(UniversesArgs),
    /// Talk to a running `backfill serve`: a symbol's splits and dividends, its adjusted series
    /// that a later split made stale, and the jobs that fetch them again.
    Actions(ActionsArgs),
    /// Report the quality of a stored series: gaps, days without bars, contradictory values,
    /// minute bars against day bars.
    Quality(QualityArgs),
    /// Write stored candles to Parquet (zstd) or CSV files: one file, or partitions by symbol
    /// and month (`symbol=AAPL/month=2024-01/part-0.parquet`) under a directory.
    Export(ExportArgs),
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// Tickers whose stored series to write, one after the other.
    #[arg(required = true, value_parser = parse_symbol)]
    pub(crate) symbols: Vec<Symbol>,
    #[command(flatten)]
    pub(crate) series: StoredSeriesArgs,
    /// parquet (zstd-compressed) or csv.
    #[arg(long, default_value = "parquet", value_parser = parse_format)]
    pub(crate) format: backfill_export::Format,
    /// A file ending in .parquet or .csv gets every row; anything else is a directory that
    /// gets one file per symbol and month (`symbol=AAPL/month=2024-01/part-0.parquet`).
    #[arg(long)]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
    /// Read the demo's database (`serve --demo`, `run --demo`).
    #[arg(long, env = "BACKFILL_DEMO")]
    pub(crate) demo: bool,
}

/// A stored series' timeframe, adjustment and range, for the commands that read the database.
#[derive(Args)]
pub(crate) struct StoredSeriesArgs {
    /// Bar size of the stored series.
    #[arg(long, short = 't', default_value = "1m", value_parser = parse_timeframe)]
    pub(crate) timeframe: Timeframe,
    /// First day (YYYY-MM-DD), Unix milliseconds or RFC 3339; default: everything stored.
    #[arg(long, value_parser = parse_bound)]
    pub(crate) from: Option<RangeBound>,
    /// Last day, inclusive; default: now.
    #[arg(long, value_parser = parse_bound)]
    pub(crate) to: Option<RangeBound>,
    /// The adjusted series (default) or the raw one (`false`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) adjusted: bool,
}

impl StoredSeriesArgs {
    /// `--from` to `--to`: from the beginning of time to `now` by default.
    pub(crate) fn range(&self, now: DateTime<Utc>) -> Result<DateRange, backfill_domain::Error> {
        DateRange::new(
            self.from.unwrap_or(RangeBound::from_millis(0)?),
            self.to.unwrap_or(RangeBound::Instant(now)),
        )
    }
}

#[derive(Args)]
pub(crate) struct QualityArgs {
    /// The ticker.
    #[arg(value_parser = parse_symbol)]
    pub(crate) symbol: Symbol,
    #[command(flatten)]
    pub(crate) series: StoredSeriesArgs,
    /// Print the report as JSON.
    #[arg(long, env = "BACKFILL_JSON")]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
    /// Read the demo's database (`serve --demo`, `run --demo`).
    #[arg(long, env = "BACKFILL_DEMO")]
    pub(crate) demo: bool,
}

#[derive(Args)]
pub(crate) struct LogArgs {
    /// Log format on standard error.
    #[arg(long, global = true, env = "BACKFILL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
pub(crate) struct DatabaseArgs {
    /// `postgres://...` for PostgreSQL, `sqlite://FILE` for SQLite; unset: the SQLite file
    /// `./backfill.db` (`./backfill-demo.db` with --demo), created on first use.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
}

#[derive(Args)]
pub(crate) struct PolygonArgs {
    /// Polygon.io / Massive API key (MASSIVE_API_KEY is read too). Sent only as a Bearer header.
    #[arg(long, env = "POLYGON_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub(crate) polygon_api_key: Option<SecretString>,
    /// The API's base URL (the legacy https://api.polygon.io works the same).
    #[arg(
        long,
        env = "POLYGON_BASE_URL",
        default_value = "https://api.massive.com"
    )]
    pub(crate) polygon_base_url: String,
    /// Requests per minute allowed by the key's plan: 5 for a free key; unset for no limit.
    /// On PostgreSQL every process using the key shares it; on SQLite the process has it alone.
    #[arg(long, env = "POLYGON_REQUESTS_PER_MINUTE")]
    pub(crate) requests_per_minute: Option<NonZeroU32>,
    /// The window the requests-per-minute limit applies to: 60s as Polygon counts; a shorter
    /// one (such as 2s or 500ms) for tests against the simulator.
    #[arg(long, env = "POLYGON_RATE_WINDOW", default_value = "60s", value_parser = parse_window)]
    pub(crate) rate_window: Duration,
    /// Fetch from a simulator started inside this process instead of Polygon, into a database
    /// of its own, so that simulated candles never mix with real ones.
    #[arg(long, env = "BACKFILL_DEMO")]
    pub(crate) demo: bool,
    #[command(flatten)]
    pub(crate) files: FlatFilesArgs,
}

#[derive(Args)]
pub(crate) struct WorkerArgs {
    /// Tasks (symbols) run at the same time; they share the rate limit.
    #[arg(long, env = "BACKFILL_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) concurrency: u16,
    /// Seconds a task's lease lasts without a heartbeat; a dead worker's tasks move on after it.
    #[arg(long, env = "BACKFILL_LEASE_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub(crate) lease_seconds: u64,
    /// Attempts of a symbol before a transient failure, or its worker dying mid-task, fails it.
    #[arg(long, env = "BACKFILL_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) max_attempts: u32,
}

#[derive(Args)]
pub(crate) struct WorkerCommand {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
    #[command(flatten)]
    pub(crate) polygon: PolygonArgs,
    #[command(flatten)]
    pub(crate) worker: WorkerArgs,
    #[command(flatten)]
    pub(crate) scheduler: SchedulerArgs,
}

#[derive(Args)]
pub(crate) struct SchedulerArgs {
    /// Do not fire schedules in this process. Any number of processes may fire them (each due
    /// time fires once); by default every `serve` and `worker` does.
    #[arg(long, env = "BACKFILL_NO_SCHEDULER")]
    pub(crate) no_scheduler: bool,
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "BACKFILL_BIND", default_value = "127.0.0.1:8080")]
    pub(crate) bind: SocketAddr,
    /// Serve the API only; `backfill worker` processes do the work.
    #[arg(long, env = "BACKFILL_NO_WORKER")]
    pub(crate) no_worker: bool,
    /// Require `Authorization: Bearer <token>` on every /api/v1 route.
    #[arg(long, env = "BACKFILL_API_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub(crate) api_token: Option<SecretString>,
    /// Origins allowed to call the API from a browser, comma-separated (`*` for any); CORS is
    /// off when unset.
    #[arg(long, env = "BACKFILL_CORS_ORIGINS", value_delimiter = ',')]
    pub(crate) cors_origins: Vec<String>,
    /// CPU niceness (0 to 19) of the embedded worker's threads, so that the API answers first
    /// when ingest keeps every core busy; 0 runs them at the server's own priority. Linux only.
    #[arg(long, env = "BACKFILL_WORKER_NICE", default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=19))]
    pub(crate) worker_nice: u8,
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
    #[command(flatten)]
    pub(crate) polygon: PolygonArgs,
    #[command(flatten)]
    pub(crate) worker: WorkerArgs,
    #[command(flatten)]
    pub(crate) scheduler: SchedulerArgs,
}

#[derive(Args)]
pub(crate) struct JobsArgs {
    #[command(subcommand)]
    pub(crate) action: JobsAction,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// How the client commands reach a running `backfill serve`.
#[derive(Args)]
pub(crate) struct ServerArgs {
    /// The server's base URL.
    #[arg(
        long,
        global = true,
        env = "BACKFILL_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) server: String,
    /// The server's API token, if it requires one.
    #[arg(long, global = true, env = "BACKFILL_API_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub(crate) api_token: Option<SecretString>,
    /// Print the server's JSON answer.
    #[arg(long, global = true, env = "BACKFILL_JSON")]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
pub(crate) enum JobsAction {
    /// The most recent jobs, newest first.
    List {
        /// How many (1 to 100).
        #[arg(long, env = "BACKFILL_LIMIT", default_value_t = 20)]
        limit: u32,
        /// Only jobs in this status (queued, running, succeeded, completed_with_errors, failed, cancelled).
        #[arg(long, env = "BACKFILL_STATUS")]
        status: Option<String>,
    },
    /// A job with its progress and every symbol.
    Status { id: String },
    /// Cancel a queued or running job (stored candles are kept).
    Cancel { id: String },
    /// Run a job's failed and cancelled symbols again.
    Retry { id: String },
}

#[derive(Args)]
pub(crate) struct SchedulesArgs {
    #[command(subcommand)]
    pub(crate) action: SchedulesAction,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

#[derive(Subcommand)]
pub(crate) enum SchedulesAction {
    /// Every schedule with its next due time and last run.
    List,
    /// One schedule.
    Show { name: String },
    /// Create a schedule: at each due time, one job per timeframe in `missing` mode over the
    /// look-back.
    Create(CreateSchedule),
    /// Stop a schedule from firing.
    Pause { name: String },
    /// Make a paused schedule due again from its next due time.
    Resume { name: String },
    /// Delete a schedule (its jobs stay).
    Delete { name: String },
}

#[derive(Args)]
pub(crate) struct CreateSchedule {
    /// 1 to 64 letters, digits, '.', '_' or '-'.
    pub(crate) name: String,
    /// Tickers to keep current.
    #[arg(required_unless_present = "universe")]
    pub(crate) symbols: Vec<String>,
    /// A named universe instead of symbols, or `all` for every ticker of a bulk source.
    #[arg(long, conflicts_with = "symbols")]
    pub(crate) universe: Option<String>,
    /// Timeframes, comma-separated: one job each per run.
    #[arg(long, short = 't', value_delimiter = ',', default_value = "1d")]
    pub(crate) timeframes: Vec<String>,
    /// A cron pattern in New York time (`0 18 * * 1-5`), or `after_close[+DELAY]` (16:00 New
    /// York on weekdays plus a delay such as 30m).
    #[arg(long, default_value = "after_close+30m")]
    pub(crate) trigger: String,
    /// Days each run covers, up to its due day.
    #[arg(long, default_value_t = 5)]
    pub(crate) lookback_days: u32,
    /// Split-adjusted prices, or `false` for raw ones.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) adjusted: bool,
    /// rest, flatfiles, grouped or auto.
    #[arg(long)]
    pub(crate) source: Option<String>,
}

#[derive(Args)]
pub(crate) struct UniversesArgs {
    #[command(subcommand)]
    pub(crate) action: UniversesAction,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

#[derive(Subcommand)]
pub(crate) enum UniversesAction {
    /// Every universe with its size and origin.
    List,
    /// One universe with its symbols.
    Show { name: String },
    /// Create or replace a universe with these symbols.
    Set {
        name: String,
        #[arg(required = true)]
        symbols: Vec<String>,
    },
    /// Replace (or create) a universe with Polygon's reference tickers (US stocks).
    Refresh {
        name: String,
        /// active, delisted or all.
        #[arg(long, default_value = "active")]
        status: String,
        /// The tickers as they stood on this day (YYYY-MM-DD).
        #[arg(long)]
        date: Option<String>,
        /// Only this ticker type: CS, ETF, ADRC, ...
        #[arg(long = "type")]
        kind: Option<String>,
    },
    /// Delete a universe (refused while a schedule names it).
    Delete { name: String },
}

#[derive(Args)]
pub(crate) struct ActionsArgs {
    #[command(subcommand)]
    pub(crate) action: ActionsAction,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

#[derive(Subcommand)]
pub(crate) enum ActionsAction {
    /// The stored splits and dividends, and which adjusted series are stale.
    Show {
        #[arg(value_parser = parse_symbol)]
        symbol: Symbol,
    },
    /// Fetch the splits and dividends from Polygon now and store them.
    Refresh {
        #[arg(value_parser = parse_symbol)]
        symbol: Symbol,
    },
    /// Start a full, split-adjusted backfill of each stale series of the symbol.
    Fix {
        #[arg(value_parser = parse_symbol)]
        symbol: Symbol,
    },
}

#[derive(Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
}

#[derive(Args)]
pub(crate) struct SimArgs {
    /// Address to listen on.
    #[arg(long, env = "BACKFILL_SIM_ADDR", default_value = "127.0.0.1:9090")]
    pub(crate) addr: SocketAddr,
    /// The key clients must send; unset: any non-empty key.
    #[arg(long, env = "BACKFILL_SIM_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,
    /// Seed of the random walk: the same seed serves the same candles.
    #[arg(long, env = "BACKFILL_SIM_SEED", default_value_t = 42)]
    pub(crate) seed: u64,
    /// Requests per minute before the simulator answers 429.
    #[arg(long, env = "BACKFILL_SIM_REQUESTS_PER_MINUTE")]
    pub(crate) requests_per_minute: Option<u32>,
}

#[derive(Args)]
pub(crate) struct SpecArgs {
    /// Tickers as Polygon spells them: AAPL, BRK.A, X:BTCUSD, C:EURUSD, I:SPX, O:SPY251219C00650000.
    #[arg(required_unless_present = "all_tickers", value_parser = parse_symbol)]
    pub(crate) symbols: Vec<Symbol>,
    /// Every ticker the source has each day instead of listed symbols (the flatfiles and
    /// grouped sources).
    #[arg(long, env = "BACKFILL_ALL_TICKERS", conflicts_with = "symbols")]
    pub(crate) all_tickers: bool,
    /// Where the bars come from: rest (symbol by symbol), flatfiles (1m or 1d files of the whole
    /// market per day, raw prices; needs S3 credentials), grouped (1d bars of the whole market
    /// per request) or auto (the fewest upstream calls). Default: rest, or auto with
    /// --all-tickers.
    #[arg(long, env = "BACKFILL_SOURCE", value_parser = parse_source)]
    pub(crate) source: Option<SourceChoice>,
    /// Bar size: 1s, 5m, 1h, 1d, 1w, 1mo, 1q or 1y.
    #[arg(long, short = 't', env = "BACKFILL_TIMEFRAME", default_value = "1d", value_parser = parse_timeframe)]
    pub(crate) timeframe: Timeframe,
    /// First day (YYYY-MM-DD, a New York date), Unix milliseconds or RFC 3339.
    #[arg(long, env = "BACKFILL_FROM", value_parser = parse_bound)]
    pub(crate) from: RangeBound,
    /// Last day, inclusive (YYYY-MM-DD, a New York date), Unix milliseconds or RFC 3339.
    #[arg(long, env = "BACKFILL_TO", value_parser = parse_bound)]
    pub(crate) to: RangeBound,
    /// Split- and dividend-adjusted prices (Polygon's default); `false` for raw prices.
    #[arg(long, env = "BACKFILL_ADJUSTED", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) adjusted: bool,
    /// `missing` fetches only what is not stored yet; `full` fetches the whole range again.
    #[arg(long, env = "BACKFILL_MODE", value_enum, default_value_t = Mode::Missing)]
    pub(crate) mode: Mode,
}

#[derive(Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) spec: SpecArgs,
    #[command(flatten)]
    pub(crate) files: FlatFilesArgs,
}

/// Polygon (Massive) Flat Files: S3 credentials from the Flat Files page of the dashboard.
#[derive(Args)]
pub(crate) struct FlatFilesArgs {
    /// The S3 access key id for Flat Files. Never logged.
    #[arg(long, env = "POLYGON_S3_ACCESS_KEY_ID", hide_env_values = true, value_parser = parse_secret)]
    pub(crate) s3_access_key_id: Option<SecretString>,
    /// The S3 secret access key for Flat Files. Never logged.
    #[arg(long, env = "POLYGON_S3_SECRET_ACCESS_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub(crate) s3_secret_access_key: Option<SecretString>,
    /// The S3 endpoint of Flat Files.
    #[arg(
        long,
        env = "POLYGON_S3_ENDPOINT",
        default_value = "https://files.massive.com"
    )]
    pub(crate) s3_endpoint: String,
    /// The bucket of Flat Files.
    #[arg(long, env = "POLYGON_S3_BUCKET", default_value = "flatfiles")]
    pub(crate) s3_bucket: String,
}

impl FlatFilesArgs {
    /// Whether Flat Files can be used: both keys are set.
    pub(crate) fn configured(&self) -> bool {
        self.s3_access_key_id.is_some() && self.s3_secret_access_key.is_some()
    }
}

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) spec: SpecArgs,
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
    #[command(flatten)]
    pub(crate) polygon: PolygonArgs,
    #[command(flatten)]
    pub(crate) worker: WorkerArgs,
    /// Print a JSON summary on standard output when the backfill ends.
    #[arg(long, env = "BACKFILL_JSON")]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Mode {
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

fn parse_format(s: &str) -> Result<backfill_export::Format, String> {
    s.parse().map_err(|e: backfill_export::Error| e.to_string())
}

fn parse_source(s: &str) -> Result<SourceChoice, String> {
    s.parse().map_err(|e: backfill_domain::Error| e.to_string())
}

/// A window: a whole number of milliseconds (`500ms`), seconds (`2s`) or minutes (`1m`), from
/// 1 ms to 1 hour.
fn parse_window(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |at| s.split_at(at));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a window such as 60s, 2s or 500ms"))?;
    let window = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("{s:?} is not a window such as 60s, 2s or 500ms")),
    };
    if window.is_zero() || window > Duration::from_secs(3600) {
        return Err(format!("the window {s:?} must be from 1ms to 1 hour"));
    }
    Ok(window)
}

fn parse_secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

/// Where the SQLite file goes when no DATABASE_URL is given.
pub(crate) fn default_sqlite_path(demo: bool) -> PathBuf {
    PathBuf::from(if demo {
        "backfill-demo.db"
    } else {
        "backfill.db"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_a_whole_number_of_milliseconds_seconds_or_minutes() {
        for (text, window) in [
            ("60s", Duration::from_secs(60)),
            ("2s", Duration::from_secs(2)),
            ("500ms", Duration::from_millis(500)),
            ("1m", Duration::from_secs(60)),
            (" 3s ", Duration::from_secs(3)),
        ] {
            assert_eq!(parse_window(text), Ok(window), "{text}");
        }
        for text in ["0s", "61m", "2", "fast", "1.5s", "-1s", ""] {
            let err = parse_window(text).unwrap_err();
            assert!(err.contains(text.trim()), "{text}: {err}");
        }
    }
}
