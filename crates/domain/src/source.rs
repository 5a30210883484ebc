//! Where a job's bars come from, which source can serve which job, and what each would cost.
//!
//! - `rest`: the aggregates endpoint, per symbol, one request per 50,000 base aggregates.
//! - `flatfiles`: Polygon/Massive Flat Files, one gzipped CSV per trading day holding every
//!   ticker's minute or day bars, raw prices only, no vwap.
//! - `grouped`: the grouped daily endpoint, one request per date for every ticker's day bar.
//!
//! `auto` picks the cheapest source that can serve a job, counting upstream calls (requests or
//! downloads), and says why.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::error::{excerpt, Error, Result};
use crate::{requests_needed, DateRange, Session, Symbol, Timeframe, Timespan};

/// A source of bars that a job fetches from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Source {
    /// The aggregates endpoint, one symbol at a time.
    #[default]
    #[serde(rename = "rest")]
    Rest,
    /// Flat Files: a gzipped CSV per trading day with every ticker (minute or day bars, raw).
    #[serde(rename = "flatfiles")]
    FlatFiles,
    /// The grouped daily endpoint: every ticker's day bar of one date per request.
    #[serde(rename = "grouped")]
    Grouped,
}

/// The source a user asks for: one of the [`Source`]s, or `auto`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SourceChoice {
    #[serde(rename = "rest")]
    Rest,
    #[serde(rename = "flatfiles")]
    FlatFiles,
    #[serde(rename = "grouped")]
    Grouped,
    /// The cheapest source that can serve the job.
    #[default]
    #[serde(rename = "auto")]
    Auto,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 3] = [Self::Rest, Self::FlatFiles, Self::Grouped];

    /// The name used in JSON, SQL and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::FlatFiles => "flatfiles",
            Self::Grouped => "grouped",
        }
    }

    /// Whether the source fetches per trading day (every ticker at once) rather than per symbol.
    pub fn is_bulk(self) -> bool {
        !matches!(self, Self::Rest)
    }

    /// Why this source cannot serve a job of `timeframe`, `adjusted` prices and `symbols`
    /// (`None`: the whole market), if it cannot: a sentence that names the fix.
    pub fn refusal(
        self,
        timeframe: Timeframe,
        adjusted: bool,
        symbols: Option<&[Symbol]>,
    ) -> Option<String> {
        let day_or_minute = is_one(timeframe, Timespan::Minute) || is_one(timeframe, Timespan::Day);
        match self {
            Self::Rest if symbols.is_none() => Some(
                "the rest source fetches symbol by symbol and cannot serve the whole market: \
                 list the symbols, or use the flatfiles or grouped source"
                    .to_owned(),
            ),
            Self::Rest => None,
            Self::FlatFiles if !day_or_minute => Some(format!(
                "the flatfiles source has minute and day bars only (timeframe 1m or 1d), not \
                 {timeframe}: use the rest source"
            )),
            Self::FlatFiles if adjusted => Some(
                "the flatfiles source has raw prices only: set \"adjusted\": false (--adjusted \
                 false), or use the rest or grouped source"
                    .to_owned(),
            ),
            Self::Grouped if !is_one(timeframe, Timespan::Day) => Some(format!(
                "the grouped source has day bars only (timeframe 1d), not {timeframe}: use the \
                 rest source"
            )),
            Self::FlatFiles | Self::Grouped => symbols
                .and_then(|list| list.iter().find(|s| !is_us_stock(s)))
                .map(|s| {
                    format!(
                        "the {self} source serves US stocks only, not {s}: use the rest source \
                         for crypto, forex, indices and options"
                    )
                }),
        }
    }
}

fn is_one(timeframe: Timeframe, timespan: Timespan) -> bool {
    timeframe.multiplier() == 1 && timeframe.timespan() == timespan
}

/// Whether a ticker is a US stock (not crypto `X:`, forex `C:`, an index `I:` or an option `O:`).
fn is_us_stock(symbol: &Symbol) -> bool {
    !["X:", "C:", "I:", "O:"]
        .iter()
        .any(|p| symbol.as_str().starts_with(p))
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rest" => Ok(Self::Rest),
            "flatfiles" => Ok(Self::FlatFiles),
            "grouped" => Ok(Self::Grouped),
            "auto" => Ok(Self::Auto),
            other => Err(Error::InvalidSource(format!(
                "unknown source {:?}: expected rest, flatfiles, grouped or auto",
                excerpt(other)
            ))),
        }
    }
}

impl FromStr for Source {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.parse::<SourceChoice>()? {
            SourceChoice::Rest => Ok(Self::Rest),
            SourceChoice::FlatFiles => Ok(Self::FlatFiles),
            SourceChoice::Grouped => Ok(Self::Grouped),
            SourceChoice::Auto => Err(Error::InvalidSource(
                "auto is not a source but a choice among them".to_owned(),
            )),
        }
    }
}

/// Which sources this deployment can use: Flat Files need S3 credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources {
    pub flat_files: bool,
}

/// What one source would cost a job, before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceCost {
    pub source: Source,
    /// Upstream calls at least: REST requests (one per 50,000 base aggregates of each symbol),
    /// grouped requests (one per weekday), or file downloads (one per weekday).
    pub calls: u64,
    /// A rough estimate of the bytes those calls transfer (compressed, as sent).
    pub estimated_bytes: u64,
    /// Why the source cannot serve the job, when it cannot.
    pub unavailable: Option<String>,
}

/// Estimated bytes a bar takes on the wire: aggregates JSON (gzip-compressed by the server,
/// about 30 bytes a bar), a grouped answer (about 35), a Flat Files row (gzipped CSV, about 14
/// bytes a row).
const REST_BYTES_PER_BAR: u64 = 30;
const GROUPED_BYTES_PER_TICKER: u64 = 35;
const FILE_BYTES_PER_ROW: u64 = 14;
/// A whole-market day, for estimates: about 11,000 tickers with a day bar, 1.5 million minute
/// rows.
const MARKET_TICKERS: u64 = 11_000;
const MARKET_MINUTE_ROWS: u64 = 1_500_000;

/// The weekdays (New York dates) of a range: the days a bulk source has a file or an answer for
/// (market holidays included: they turn out empty).
pub fn weekdays(range: &DateRange) -> Vec<NaiveDate> {
    let first = range.from_ny_date();
    let last = range.to_ny_date();
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .collect()
}

/// What each source would cost a job of `timeframe` over `range` with `adjusted` prices and
/// `symbols` (`None`: the whole market), with `available` sources.
pub fn costs(
    timeframe: Timeframe,
    range: &DateRange,
    adjusted: bool,
    symbols: Option<&[Symbol]>,
    available: Sources,
) -> Vec<SourceCost> {
    let days = weekdays(range).len() as u64;
    Source::ALL
        .iter()
        .map(|&source| {
            let mut unavailable = source.refusal(timeframe, adjusted, symbols);
            if source == Source::FlatFiles && unavailable.is_none() && !available.flat_files {
                unavailable = Some(
                    "Flat Files need S3 credentials: set POLYGON_S3_ACCESS_KEY_ID and \
                     POLYGON_S3_SECRET_ACCESS_KEY (from the Flat Files page of your Polygon / \
                     Massive dashboard)"
                        .to_owned(),
                );
            }
            let (calls, estimated_bytes) = match source {
                Source::Rest => {
                    let list = symbols.unwrap_or_default();
                    let calls: u64 = list
                        .iter()
                        .map(|s| u64::from(requests_needed(range, timeframe, Session::of(s))))
                        .sum();
                    let bars = bars_per_symbol(timeframe, range, days);
                    (calls, bars * list.len() as u64 * REST_BYTES_PER_BAR)
                }
                Source::Grouped => (days, days * MARKET_TICKERS * GROUPED_BYTES_PER_TICKER),
                Source::FlatFiles => {
                    let rows = if is_one(timeframe, Timespan::Day) {
                        MARKET_TICKERS
                    } else {
                        MARKET_MINUTE_ROWS
                    };
                    (days, days * rows * FILE_BYTES_PER_ROW)
                }
            };
            SourceCost {
                source,
                calls,
                estimated_bytes,
                unavailable,
            }
        })
        .collect()
}

/// Roughly how many bars one stock symbol has in a range: 16 hours of a weekday for intraday
/// timeframes, one a weekday for days and longer.
fn bars_per_symbol(timeframe: Timeframe, _range: &DateRange, days: u64) -> u64 {
    match timeframe.duration() {
        Some(bar) if timeframe.timespan() < Timespan::Day => {
            let ms = bar.num_milliseconds().max(1) as u64;
            days * (16 * 3_600_000 / ms).max(1)
        }
        _ => days,
    }
}

/// The source chosen for a job, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub source: Source,
    pub reason: String,
}

/// How the reason of a source that was named begins.
const ASKED_FOR: &str = "asked for: ";

impl Chosen {
    /// The same source, taken by default rather than asked for.
    fn by_default(self) -> Self {
        let reason = match self.reason.strip_prefix(ASKED_FOR) {
            Some(rest) => format!("the default for listed symbols: {rest}"),
            None => self.reason,
        };
        Self { reason, ..self }
    }
}

/// [`choose`] for a job that names no source: `rest` for listed symbols, `auto` for the whole
/// market, with the reason saying so.
pub(crate) fn choose_default(
    timeframe: Timeframe,
    range: &DateRange,
    adjusted: bool,
    symbols: Option<&[Symbol]>,
    available: Sources,
) -> Result<Chosen> {
    match symbols {
        Some(_) => Ok(choose(
            SourceChoice::Rest,
            timeframe,
            range,
            adjusted,
            symbols,
            available,
        )?
        .by_default()),
        None => choose(
            SourceChoice::Auto,
            timeframe,
            range,
            adjusted,
            symbols,
            available,
        ),
    }
}

/// Resolves `choice` for a job: a named source if it can serve the job (otherwise the reason it
/// cannot, as an error), or for `auto` the source with the fewest upstream calls among those
/// that can (REST on a tie: it carries vwap), with the comparison as the reason.
pub fn choose(
    choice: SourceChoice,
    timeframe: Timeframe,
    range: &DateRange,
    adjusted: bool,
    symbols: Option<&[Symbol]>,
    available: Sources,
) -> Result<Chosen> {
    let costs = costs(timeframe, range, adjusted, symbols, available);
    let cost = |s: Source| costs.iter().find(|c| c.source == s);
    let named = match choice {
        SourceChoice::Rest => Some(Source::Rest),
        SourceChoice::FlatFiles => Some(Source::FlatFiles),
        SourceChoice::Grouped => Some(Source::Grouped),
        SourceChoice::Auto => None,
    };
    if let Some(source) = named {
        let c =
            cost(source).ok_or_else(|| Error::InvalidSource(format!("no cost for {source}")))?;
        if let Some(why) = &c.unavailable {
            return Err(if source.refusal(timeframe, adjusted, symbols).is_some() {
                Error::InvalidSource(why.clone())
            } else {
                Error::SourceUnavailable(why.clone())
            });
        }
        return Ok(Chosen {
            source,
            reason: format!("{ASKED_FOR}{}", describe(c)),
        });
    }
    let usable: Vec<&SourceCost> = costs.iter().filter(|c| c.unavailable.is_none()).collect();
    let Some(best) = usable
        .iter()
        .min_by_key(|c| (c.calls, c.source != Source::Rest))
    else {
        let why: Vec<String> = costs
            .iter()
            .filter_map(|c| c.unavailable.as_ref().map(|w| format!("{}: {w}", c.source)))
            .collect();
        let message = format!("no source can serve this job ({})", why.join("; "));
        // Some source could, were it configured: that is the fix to name.
        let configurable = costs
            .iter()
            .any(|c| c.source.refusal(timeframe, adjusted, symbols).is_none());
        return Err(if configurable {
            Error::SourceUnavailable(message)
        } else {
            Error::InvalidSource(message)
        });
    };
    let others: Vec<String> = usable
        .iter()
        .filter(|c| c.source != best.source)
        .map(|c| describe(c))
        .collect();
    let reason = if others.is_empty() {
        format!(
            "auto: {}, the only source that can serve this job",
            describe(best)
        )
    } else {
        format!(
            "auto: {} instead of {}",
            describe(best),
            others.join(" or ")
        )
    };
    Ok(Chosen {
        source: best.source,
        reason,
    })
}

fn describe(c: &SourceCost) -> String {
    let unit = match c.source {
        Source::Rest => "requests",
        Source::Grouped => "requests (one per weekday)",
        Source::FlatFiles => "file downloads (one per weekday)",
    };
    format!("{} with {} {unit}", c.source, c.calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RangeBound;

    fn range(from: &str, to: &str) -> DateRange {
        DateRange::new(
            RangeBound::parse(from).unwrap(),
            RangeBound::parse(to).unwrap(),
        )
        .unwrap()
    }

    fn symbols(n: usize) -> Vec<Symbol> {
        (0..n)
            .map(|i| Symbol::parse(&format!("S{i}")).unwrap())
            .collect()
    }

    fn tf(s: &str) -> Timeframe {
        Timeframe::parse(s).unwrap()
    }

    const WITH_FILES: Sources = Sources { flat_files: true };
    const NO_FILES: Sources = Sources { flat_files: false };

    #[test]
    fn weekdays_skip_weekends() {
        // 2024-01-01 (a Monday) to 2024-01-14: ten weekdays.
        let days = weekdays(&range("2024-01-01", "2024-01-14"));
        assert_eq!(days.len(), 10);
        assert_eq!(days[0].to_string(), "2024-01-01");
        assert_eq!(days[9].to_string(), "2024-01-12");
    }

    #[test]
    fn each_source_says_what_it_cannot_serve() {
        let r = range("2024-01-01", "2024-01-31");
        let list = symbols(3);
        let why =
            |s: Source, t: &str, adj: bool, sym: Option<&[Symbol]>| s.refusal(tf(t), adj, sym);
        assert!(why(Source::Rest, "1m", true, None)
            .unwrap()
            .contains("whole market"));
        assert!(why(Source::FlatFiles, "5m", false, Some(&list))
            .unwrap()
            .contains("1m or 1d"));
        assert!(why(Source::FlatFiles, "1m", true, Some(&list))
            .unwrap()
            .contains("adjusted"));
        assert!(why(Source::Grouped, "1m", true, Some(&list))
            .unwrap()
            .contains("1d"));
        let crypto = [Symbol::parse("X:BTCUSD").unwrap()];
        assert!(why(Source::Grouped, "1d", true, Some(&crypto))
            .unwrap()
            .contains("X:BTCUSD"));
        assert_eq!(why(Source::FlatFiles, "1d", false, None), None);
        assert_eq!(why(Source::Grouped, "1d", false, None), None);
        let _ = r;
    }

    #[test]
    fn auto_takes_the_fewest_calls_and_says_why() {
        let r = range("2024-01-01", "2024-01-31"); // 23 weekdays
                                                   // Day bars of 500 symbols: 500 requests against 23 grouped ones.
        let c = choose(
            SourceChoice::Auto,
            tf("1d"),
            &r,
            true,
            Some(&symbols(500)),
            NO_FILES,
        )
        .unwrap();
        assert_eq!(c.source, Source::Grouped);
        assert!(
            c.reason.contains("23") && c.reason.contains("500"),
            "{}",
            c.reason
        );
        // Two symbols: REST is cheaper.
        let c = choose(
            SourceChoice::Auto,
            tf("1d"),
            &r,
            true,
            Some(&symbols(2)),
            NO_FILES,
        )
        .unwrap();
        assert_eq!(c.source, Source::Rest);
        // Raw minutes of the whole market: only Flat Files can, when configured.
        let c = choose(SourceChoice::Auto, tf("1m"), &r, false, None, WITH_FILES).unwrap();
        assert_eq!(c.source, Source::FlatFiles);
        assert!(c.reason.contains("only source"), "{}", c.reason);
        let err = choose(SourceChoice::Auto, tf("1m"), &r, false, None, NO_FILES).unwrap_err();
        assert!(matches!(err, Error::SourceUnavailable(_)), "{err:?}");
        assert!(
            err.to_string().contains("POLYGON_S3_ACCESS_KEY_ID"),
            "{err}"
        );
        // Minutes of 5,000 symbols over a month: 5,000 x 1 REST requests against 23 files.
        let c = choose(
            SourceChoice::Auto,
            tf("1m"),
            &r,
            false,
            Some(&symbols(5_000)),
            WITH_FILES,
        )
        .unwrap();
        assert_eq!(c.source, Source::FlatFiles);
    }

    #[test]
    fn a_named_source_that_cannot_serve_is_an_error_naming_the_fix() {
        let r = range("2024-01-01", "2024-01-31");
        let err = choose(
            SourceChoice::FlatFiles,
            tf("1m"),
            &r,
            true,
            None,
            WITH_FILES,
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"adjusted\": false"), "{err}");
        assert!(matches!(err, Error::InvalidSource(_)), "{err:?}");
        let err = choose(SourceChoice::FlatFiles, tf("1m"), &r, false, None, NO_FILES).unwrap_err();
        assert!(
            err.to_string().contains("POLYGON_S3_SECRET_ACCESS_KEY"),
            "{err}"
        );
        let c = choose(
            SourceChoice::Rest,
            tf("1m"),
            &r,
            true,
            Some(&symbols(1)),
            NO_FILES,
        )
        .unwrap();
        assert_eq!(c.source, Source::Rest);
        assert!(c.reason.starts_with("asked for: rest"), "{}", c.reason);
        let d = choose_default(tf("1m"), &r, true, Some(&symbols(1)), NO_FILES).unwrap();
        assert_eq!(d.source, Source::Rest);
        assert!(
            d.reason.starts_with("the default for listed symbols: rest"),
            "{}",
            d.reason
        );
        assert!("ftp"
            .parse::<SourceChoice>()
            .unwrap_err()
            .to_string()
            .contains("ftp"));
    }
}
