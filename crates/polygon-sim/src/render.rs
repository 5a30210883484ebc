//! Response bodies in Polygon's wire format.

use serde::Serialize;

use crate::bar::SimBar;
use crate::listing::SimTicker;

/// What the `results` key of a body holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Results<'a> {
    /// The bars; the key is left out when there are none, as Polygon does.
    Bars(&'a [SimBar]),
    /// An explicit `null`, while the counts still claim results (the glitch fault).
    Null,
}

#[derive(Serialize)]
struct OkBody<'a> {
    ticker: &'a str,
    #[serde(rename = "queryCount")]
    query_count: u64,
    #[serde(rename = "resultsCount")]
    results_count: usize,
    adjusted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<Option<&'a [SimBar]>>,
    status: &'a str,
    request_id: &'a str,
    count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<&'a str>,
}

/// A 200 aggregates body.
pub(crate) fn ok_body(
    ticker: &str,
    adjusted: bool,
    status: &str,
    request_id: &str,
    results: Results<'_>,
    query_count: u64,
    next_url: Option<&str>,
) -> Vec<u8> {
    let (results, results_count) = match results {
        Results::Bars([]) => (None, 0),
        Results::Bars(bars) => (Some(Some(bars)), bars.len()),
        Results::Null => (Some(None), query_count.max(1) as usize),
    };
    let body = OkBody {
        ticker,
        query_count,
        results_count,
        adjusted,
        results,
        status,
        request_id,
        count: results_count,
        next_url,
    };
    let mut out = Vec::with_capacity(256 + results_count * 112);
    // Serialising plain numbers and strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &body);
    out
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// An `ERROR` body with an `error` text, as Polygon sends for bad requests, keys and rate limits.
pub(crate) fn error_body(request_id: &str, error: &str) -> Vec<u8> {
    let body = ErrorBody {
        status: "ERROR",
        request_id,
        error: Some(error),
        message: None,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// A body with a status word and a `message` text (`NOT_AUTHORIZED`, `NOT_FOUND`).
pub(crate) fn message_body(status: &str, request_id: &str, message: &str) -> Vec<u8> {
    let body = ErrorBody {
        status,
        request_id,
        error: None,
        message: Some(message),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// nginx's gateway time-out page, as Polygon's edge serves it during outages.
pub(crate) const HTML_504: &str = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// Polygon's rate-limit text.
pub(crate) const RATE_LIMIT_TEXT: &str = "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue.";

/// Polygon's text for a plan that does not cover the data.
pub(crate) const NOT_ENTITLED_TEXT: &str =
    "You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing";

/// One result of the grouped daily endpoint: a ticker's day bar.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupedBar<'a> {
    #[serde(rename = "T")]
    pub(crate) ticker: &'a str,
    pub(crate) v: f64,
    pub(crate) vw: f64,
    pub(crate) o: f64,
    pub(crate) c: f64,
    pub(crate) h: f64,
    pub(crate) l: f64,
    pub(crate) t: i64,
    pub(crate) n: u64,
}

#[derive(Serialize)]
struct GroupedBody<'a> {
    #[serde(rename = "queryCount")]
    query_count: usize,
    #[serde(rename = "resultsCount")]
    results_count: usize,
    adjusted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<Option<&'a [GroupedBar<'a>]>>,
    status: &'a str,
    request_id: &'a str,
    count: usize,
}

/// A 200 grouped daily body: `results` is left out when there are none (weekends, holidays),
/// or `null` while the counts claim results (the glitch fault, `null_results`).
pub(crate) fn grouped_body(
    adjusted: bool,
    status: &str,
    request_id: &str,
    bars: &[GroupedBar<'_>],
    null_results: bool,
) -> Vec<u8> {
    let results = match (bars, null_results) {
        ([], _) => None,
        (_, true) => Some(None),
        (bars, false) => Some(Some(bars)),
    };
    let body = GroupedBody {
        query_count: bars.len(),
        results_count: bars.len(),
        adjusted,
        results,
        status,
        request_id,
        count: bars.len(),
    };
    let mut out = Vec::with_capacity(256 + bars.len() * 120);
    // Serialising plain numbers and strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &body);
    out
}

/// One record of the reference tickers endpoint, in Polygon's field order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TickerResult<'a> {
    ticker: &'a str,
    name: &'a str,
    market: &'static str,
    locale: &'static str,
    primary_exchange: &'a str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    ticker_type: Option<&'a str>,
    active: bool,
    currency_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cik: Option<&'a str>,
    composite_figi: &'a str,
    share_class_figi: &'a str,
    last_updated_utc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    delisted_utc: Option<String>,
}

impl<'a> TickerResult<'a> {
    /// The record as listed among the `active` ones or the delisted ones; only the latter
    /// carry `delisted_utc`.
    pub(crate) fn new(record: &'a SimTicker, active: bool) -> Self {
        let midnight = |d: chrono::NaiveDate| format!("{d}T00:00:00Z");
        Self {
            ticker: &record.ticker,
            name: &record.name,
            market: "stocks",
            locale: "us",
            primary_exchange: &record.primary_exchange,
            ticker_type: record.ticker_type.as_deref(),
            active,
            currency_name: "usd",
            cik: record.cik.as_deref(),
            composite_figi: &record.composite_figi,
            share_class_figi: &record.share_class_figi,
            last_updated_utc: midnight(record.last_updated),
            delisted_utc: if active {
                None
            } else {
                record.delisted.map(midnight)
            },
        }
    }
}

#[derive(Serialize)]
struct TickersBody<'a> {
    results: Option<&'a [TickerResult<'a>]>,
    status: &'a str,
    request_id: &'a str,
    count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<&'a str>,
}

/// A 200 reference tickers body, keys in the order of Polygon's fixture; `results` is `null`
/// while `count` claims results for the glitch fault (`null_results`).
pub(crate) fn tickers_body(
    results: &[TickerResult<'_>],
    status: &str,
    request_id: &str,
    next_url: Option<&str>,
    null_results: bool,
) -> Vec<u8> {
    let body = TickersBody {
        results: (!null_results).then_some(results),
        status,
        request_id,
        count: if null_results {
            results.len().max(1)
        } else {
            results.len()
        },
        next_url,
    };
    let mut out = Vec::with_capacity(256 + results.len() * 400);
    // Serialising plain numbers and strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &body);
    out
}
