//! Polygon's JSON: the aggregates and grouped daily bodies, the reference tickers body
//! (`tickers`), error bodies, and how each becomes candles, tickers or an [`Error`]. Nothing
//! outside this module knows the field names.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use backfill_domain::{Candle, DateRange, Ohlcv, Symbol, Timeframe, Timespan};
use chrono::{DateTime, NaiveDate};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::{Error, Result};

mod actions;
mod tickers;

pub use actions::{decode_dividends, decode_splits, ActionsPage};
pub use tickers::{decode_tickers, TickersPage};

/// One decoded aggregates response, before pagination bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedPage {
    /// The bars that make valid candles, in the order Polygon sent them.
    pub candles: Vec<Candle>,
    /// Bars dropped because a required field was missing or [`Candle::new`] rejected them.
    pub invalid_bars: u64,
    /// The `next_url`, verbatim.
    pub next_url: Option<String>,
    /// The `adjusted` flag Polygon echoed, if any.
    pub adjusted: Option<bool>,
    /// The body's `status` (`OK`, `DELAYED`, ...).
    pub status: Option<String>,
}

/// Turns one HTTP response into candles or a typed error.
///
/// Success is decided on the HTTP status (2xx) first; `ERROR` and `NOT_AUTHORIZED` bodies are then
/// rejected whatever the status, and every other `status` word (`OK`, `DELAYED`, plan names) is
/// data. `results` absent or `null` means no bars, unless the counts claim results (a glitch,
/// reported as [`Error::Decode`] so that it is retried). Error bodies may carry `error` or
/// `message`, or be HTML or plain text.
pub fn decode_aggregates(
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    symbol: &Symbol,
    timeframe: Timeframe,
) -> Result<DecodedPage> {
    if !(200..300).contains(&http_status) {
        return Err(status_error(http_status, retry_after, body));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed { symbol, timeframe }
        .deserialize(&mut de)
        .and_then(|parsed| de.end().map(|()| parsed))
        .map_err(|e| Error::Decode {
            message: format!(
                "invalid aggregates json ({e}); the body starts with {:?}",
                excerpt(body, 80)
            ),
        })?;
    refused_by_status(
        parsed.status.as_deref(),
        http_status,
        parsed.error.clone(),
        parsed.message.clone(),
    )?;
    let Bars {
        candles,
        invalid: invalid_bars,
    } = match parsed.results {
        Some(bars) => bars,
        None => {
            let claimed = parsed.results_count.unwrap_or(0.0);
            if claimed > 0.0 {
                return Err(Error::Decode {
                    message: format!(
                        "the response claims {claimed} results but carries none (request_id {})",
                        parsed.request_id.as_deref().unwrap_or("unknown")
                    ),
                });
            }
            Bars::default()
        }
    };
    if invalid_bars > 0 {
        tracing::warn!(%symbol, %timeframe, invalid_bars, "dropped invalid bars from a page");
    }
    Ok(DecodedPage {
        candles,
        invalid_bars,
        next_url: parsed.next_url,
        adjusted: parsed.adjusted,
        status: parsed.status,
    })
}

/// Fails for a body whose `status` word refuses the request (`ERROR`, `NOT_AUTHORIZED`) whatever
/// the HTTP status; every other word (`OK`, `DELAYED`, plan names) is data.
fn refused_by_status(
    status: Option<&str>,
    http_status: u16,
    error: Option<String>,
    message: Option<String>,
) -> Result<()> {
    match status {
        Some("ERROR") => Err(Error::BadRequest {
            message: text_of(error, message, "polygon answered ERROR"),
        }),
        Some("NOT_AUTHORIZED") => Err(Error::NotEntitled {
            status: http_status,
            message: text_of(error, message, "polygon answered NOT_AUTHORIZED"),
        }),
        _ => Ok(()),
    }
}

/// Turns one grouped daily response into candles of many tickers, each stamped with New York
/// midnight of `day` (the aggregates endpoint's stamp for day bars; the grouped endpoint stamps
/// them at the close). Statuses and errors are read as by [`decode_aggregates`]. Bars without a
/// valid ticker (`T`) or with invalid values are dropped and counted.
pub fn decode_grouped(
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    day: NaiveDate,
) -> Result<DecodedPage> {
    let parsed: GroupedBody = parse_body(http_status, retry_after, body, "grouped daily")?;
    refused_by_status(
        parsed.status.as_deref(),
        http_status,
        parsed.error,
        parsed.message,
    )?;
    let midnight = DateRange::ny_day(day).from().timestamp_millis();
    let daily = Timeframe::new(1, Timespan::Day).map_err(|e| Error::Decode {
        message: e.to_string(),
    })?;
    let mut candles = Vec::new();
    let mut invalid_bars = 0;
    match parsed.results {
        Some(bars) => {
            candles.reserve(bars.len());
            for GroupedBar { ticker, mut bar } in bars {
                let symbol = ticker.as_deref().map(Symbol::parse);
                bar.t = bar.t.map(|_| midnight);
                match symbol {
                    Some(Ok(symbol)) => match bar.into_candle(&symbol, daily) {
                        Ok(c) => candles.push(c),
                        Err(_) => invalid_bars += 1,
                    },
                    _ => invalid_bars += 1,
                }
            }
        }
        None if parsed.results_count.unwrap_or(0.0) > 0.0 => {
            return Err(Error::Decode {
                message: format!(
                    "the grouped response claims {} results but carries none",
                    parsed.results_count.unwrap_or(0.0)
                ),
            })
        }
        None => {}
    }
    if invalid_bars > 0 {
        tracing::warn!(%day, invalid_bars, "dropped invalid bars from a grouped day");
    }
    Ok(DecodedPage {
        candles,
        invalid_bars,
        next_url: None,
        adjusted: parsed.adjusted,
        status: parsed.status,
    })
}

/// A 2xx body parsed as `T`, or the typed error of a non-2xx response; `what` names the body in
/// the error of one that does not parse.
fn parse_body<T: serde::de::DeserializeOwned>(
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    what: &str,
) -> Result<T> {
    if !(200..300).contains(&http_status) {
        return Err(status_error(http_status, retry_after, body));
    }
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        message: format!(
            "invalid {what} json ({e}); the body starts with {:?}",
            excerpt(body, 80)
        ),
    })
}

/// The grouped daily body: every ticker's bar of one day, no pagination.
#[derive(Deserialize)]
struct GroupedBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    results: Option<Vec<GroupedBar>>,
    #[serde(default, rename = "resultsCount")]
    results_count: Option<f64>,
    #[serde(default)]
    adjusted: Option<bool>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// One ticker's bar in a grouped answer.
#[derive(Deserialize)]
struct GroupedBar {
    #[serde(default, rename = "T")]
    ticker: Option<String>,
    #[serde(flatten)]
    bar: WireBar,
}

/// The aggregates body. `results` is decoded straight into candles, bar by bar, so that a page
/// of 50,000 bars never exists twice in memory.
#[derive(Default)]
struct AggsBody {
    status: Option<String>,
    results: Option<Bars>,
    results_count: Option<f64>,
    next_url: Option<String>,
    adjusted: Option<bool>,
    request_id: Option<String>,
    error: Option<String>,
    message: Option<String>,
}

/// The bars of `results` that make valid candles, and how many did not.
#[derive(Default)]
struct Bars {
    candles: Vec<Candle>,
    invalid: u64,
}

/// Decodes an [`AggsBody`] for one symbol and timeframe. Unknown fields are skipped; a field
/// given twice keeps its last value.
struct BodySeed<'a> {
    symbol: &'a Symbol,
    timeframe: Timeframe,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = AggsBody;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<AggsBody, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = AggsBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an aggregates object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<AggsBody, A::Error> {
        let mut body = AggsBody::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "status" => body.status = map.next_value()?,
                "results" => {
                    body.results = map.next_value_seed(ResultsSeed {
                        symbol: self.symbol,
                        timeframe: self.timeframe,
                    })?;
                }
                "resultsCount" => body.results_count = map.next_value()?,
                "next_url" => body.next_url = map.next_value()?,
                "adjusted" => body.adjusted = map.next_value()?,
                "request_id" => body.request_id = map.next_value()?,
                "error" => body.error = map.next_value()?,
                "message" => body.message = map.next_value()?,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(body)
    }
}

/// `results`: `null` or an array of bars, each turned into a candle as it is read.
struct ResultsSeed<'a> {
    symbol: &'a Symbol,
    timeframe: Timeframe,
}

impl<'de> DeserializeSeed<'de> for ResultsSeed<'_> {
    type Value = Option<Bars>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Option<Bars>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ResultsSeed<'_> {
    type Value = Option<Bars>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of bars or null")
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Option<Bars>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Option<Bars>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Option<Bars>, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Option<Bars>, A::Error> {
        let mut bars = Bars {
            candles: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_BARS_HINT)),
            invalid: 0,
        };
        while let Some(bar) = seq.next_element::<WireBar>()? {
            match bar.into_candle(self.symbol, self.timeframe) {
                Ok(candle) => bars.candles.push(candle),
                Err(reason) => {
                    bars.invalid += 1;
                    tracing::debug!(symbol = %self.symbol, reason, "dropping an invalid bar");
                }
            }
        }
        Ok(Some(bars))
    }
}

/// The most bars a page holds (Polygon's `limit`), to cap a size hint.
const MAX_BARS_HINT: usize = 50_000;

/// One bar. Every field is optional here so that one bad bar is dropped instead of failing the
/// page; `T` (grouped endpoints) and `otc` are ignored.
#[derive(Deserialize)]
struct WireBar {
    #[serde(default)]
    o: Option<f64>,
    #[serde(default)]
    h: Option<f64>,
    #[serde(default)]
    l: Option<f64>,
    #[serde(default)]
    c: Option<f64>,
    #[serde(default)]
    v: Option<f64>,
    #[serde(default)]
    vw: Option<f64>,
    #[serde(default, deserialize_with = "lenient_integer")]
    t: Option<i64>,
    #[serde(default, deserialize_with = "lenient_integer")]
    n: Option<i64>,
}

impl WireBar {
    fn into_candle(
        self,
        symbol: &Symbol,
        timeframe: Timeframe,
    ) -> std::result::Result<Candle, &'static str> {
        let (Some(t), Some(open), Some(high), Some(low), Some(close), Some(volume)) =
            (self.t, self.o, self.h, self.l, self.c, self.v)
        else {
            return Err("a required field (t, o, h, l, c or v) is missing");
        };
        let ts = DateTime::from_timestamp_millis(t).ok_or("the timestamp is out of range")?;
        let values = Ohlcv {
            open,
            high,
            low,
            close,
            volume,
            vwap: self.vw,
            trades: self.n.and_then(|n| u64::try_from(n).ok()),
        };
        Candle::new(symbol.clone(), timeframe, ts, values)
            .map_err(|_| "the values are not finite or the volume is negative")
    }
}

/// Reads an integer that may have been written as a float (`1.6e12`, `74.0`); anything else that
/// is not a whole number becomes `None`.
fn lenient_integer<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    struct Lenient;
    impl<'de> Visitor<'de> for Lenient {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
            Ok(i64::try_from(v).ok())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
            let whole = v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15;
            Ok(whole.then_some(v as i64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Lenient)
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The typed error for a non-2xx response.
fn status_error(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Error {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let body_status = parsed.as_ref().and_then(|b| b.status.clone());
    let message = match parsed {
        Some(b) if b.error.is_some() || b.message.is_some() => text_of(b.error, b.message, ""),
        Some(_) => reason(status),
        None => describe_non_json(status, body),
    };
    if body_status.as_deref() == Some("NOT_AUTHORIZED") {
        return Error::NotEntitled { status, message };
    }
    match status {
        400 => Error::BadRequest { message },
        401 => Error::Unauthorized { message },
        403 => Error::NotEntitled { status, message },
        404 => Error::NotFound { message },
        429 => Error::RateLimited {
            retry_after,
            message,
        },
        408 | 413 | 425 | 499 | 500..=599 => Error::Server { status, message },
        _ => Error::UnexpectedStatus { status, message },
    }
}

fn text_of(error: Option<String>, message: Option<String>, fallback: &str) -> String {
    let text = error.or(message).unwrap_or_else(|| fallback.to_owned());
    clean(&text, 300)
}

/// A short description of a body that is not Polygon's JSON: an HTML page's title, the text, or
/// the status's reason.
fn describe_non_json(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(4_096)]);
    let lower = text.to_ascii_lowercase();
    if let (Some(start), Some(end)) = (lower.find("<title>"), lower.find("</title>")) {
        if start + 7 <= end {
            return format!("html page: {}", clean(&text[start + 7..end], 200));
        }
    }
    let cleaned = clean(&text, 200);
    if cleaned.is_empty() {
        reason(status)
    } else {
        cleaned
    }
}

/// The status's reason phrase, lower-cased (`bad gateway`).
fn reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("no details")
        .to_ascii_lowercase()
}

/// Collapses whitespace and control characters and cuts to `max` characters.
fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > max {
            let cut: String = out.chars().take(max).collect();
            return format!("{cut}…");
        }
    }
    out
}

fn excerpt(body: &[u8], max: usize) -> String {
    clean(
        &String::from_utf8_lossy(&body[..body.len().min(max * 4)]),
        max,
    )
}

/// Reads `Retry-After` as delta-seconds (fractions tolerated) or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol() -> Symbol {
        Symbol::parse("AAPL").unwrap()
    }

    fn tf() -> Timeframe {
        Timeframe::parse("1m").unwrap()
    }

    fn decode(status: u16, body: &str) -> Result<DecodedPage> {
        decode_aggregates(status, None, body.as_bytes(), &symbol(), tf())
    }

    #[test]
    fn parses_scientific_volume_optional_fields_and_float_integers() {
        let page = decode(
            200,
            r#"{"status":"OK","results":[
                {"v":1.029145e+06,"o":1,"h":2,"l":0.5,"c":1.5,"t":1.6e12},
                {"v":10,"vw":1.2,"o":1,"h":2,"l":0.5,"c":1.5,"t":1600000060000,"n":74.0,"otc":true}
            ]}"#,
        )
        .unwrap();
        assert_eq!(page.candles.len(), 2);
        let a = &page.candles[0];
        assert_eq!(a.volume(), 1_029_145.0);
        assert_eq!((a.vwap(), a.trades()), (None, None));
        assert_eq!(a.ts().timestamp_millis(), 1_600_000_000_000);
        assert_eq!(page.candles[1].trades(), Some(74));
        assert_eq!(page.candles[1].vwap(), Some(1.2));
    }

    #[test]
    fn drops_and_counts_bars_that_cannot_be_candles() {
        let page = decode(
            200,
            r#"{"status":"OK","results":[
                {"v":-5,"o":1,"h":2,"l":0.5,"c":1.5,"t":1600000000000},
                {"v":5,"h":2,"l":0.5,"c":1.5,"t":1600000060000},
                {"v":5,"o":null,"h":2,"l":0.5,"c":1.5,"t":1600000060000},
                {"v":5,"o":1,"h":2,"l":0.5,"c":1.5,"t":"soon"},
                {"v":5,"o":1,"h":2,"l":0.5,"c":1.5,"t":1600000120000}
            ]}"#,
        )
        .unwrap();
        assert_eq!(page.invalid_bars, 4);
        assert_eq!(page.candles.len(), 1);
    }

    #[test]
    fn statuses_other_than_error_and_not_authorized_are_data() {
        for status in ["OK", "DELAYED", "STOCKSBUSINESS"] {
            let body = format!(
                r#"{{"status":"{status}","results":[{{"v":1,"o":1,"h":1,"l":1,"c":1,"t":0}}]}}"#
            );
            let page = decode(200, &body).unwrap();
            assert_eq!(page.candles.len(), 1, "{status}");
            assert_eq!(page.status.as_deref(), Some(status));
        }
        assert_eq!(decode(200, "{}").unwrap().candles, vec![]);
    }

    #[test]
    fn unknown_fields_of_any_shape_are_skipped_and_a_malformed_body_is_an_error() {
        let page = decode(
            200,
            r#"{"ticker":"AAPL","queryCount":2,"extra":{"a":[1,{"b":null}]},"results":[
                {"v":1,"o":1,"h":1,"l":1,"c":1,"t":0,"T":"AAPL","new":[1,2]}
            ],"status":"OK","next_url":"https://x/y?cursor=z","adjusted":true}"#,
        )
        .unwrap();
        assert_eq!(page.candles.len(), 1);
        assert_eq!(page.next_url.as_deref(), Some("https://x/y?cursor=z"));
        assert_eq!(page.adjusted, Some(true));
        for body in [
            r#"{"status":"OK","results":{"v":1}}"#,
            r#"{"status":"OK","results":"none"}"#,
            r#"{"status":"OK","results":[]} trailing"#,
            r#"["status","OK"]"#,
        ] {
            let err = decode(200, body).unwrap_err();
            assert!(matches!(err, Error::Decode { .. }), "{body}: {err}");
        }
    }

    #[test]
    fn errors_on_2xx_are_typed() {
        let err = decode(200, r#"{"status":"ERROR","error":"bad things"}"#).unwrap_err();
        assert_eq!(
            err,
            Error::BadRequest {
                message: "bad things".to_owned()
            }
        );
        let err = decode(200, r#"{"status":"NOT_AUTHORIZED","message":"upgrade"}"#).unwrap_err();
        assert_eq!(
            err,
            Error::NotEntitled {
                status: 200,
                message: "upgrade".to_owned()
            }
        );
    }

    #[test]
    fn null_results_with_claimed_counts_is_a_retryable_glitch() {
        let err = decode(200, r#"{"status":"OK","resultsCount":3,"results":null}"#).unwrap_err();
        assert!(
            matches!(err, Error::Decode { .. }) && err.is_transient(),
            "{err}"
        );
        let ok = decode(200, r#"{"status":"OK","resultsCount":0,"results":null}"#).unwrap();
        assert!(ok.candles.is_empty());
    }

    #[test]
    fn truncated_and_html_bodies_are_tolerated() {
        let err = decode(200, r#"{"status":"OK","results":[{"v":1,"o""#).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err}");
        let html =
            "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body></body></html>";
        let err = decode(504, html).unwrap_err();
        assert_eq!(
            err,
            Error::Server {
                status: 504,
                message: "html page: 504 Gateway Time-out".to_owned()
            }
        );
        let err = decode(502, "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "polygon server error (http 502): bad gateway"
        );
        let err = decode(503, "upstream\n\n  unavailable").unwrap_err();
        assert_eq!(
            err.to_string(),
            "polygon server error (http 503): upstream unavailable"
        );
        for status in [408, 413, 499, 500, 529] {
            let err = decode(status, "{}").unwrap_err();
            assert!(
                matches!(err, Error::Server { .. }) && err.is_transient(),
                "{status}: {err}"
            );
        }
        let err = decode(418, "{}").unwrap_err();
        assert_eq!(err.message(), "i'm a teapot");
        assert!(
            matches!(err, Error::UnexpectedStatus { status: 418, .. }),
            "{err}"
        );
        assert!(err.is_permanent());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 0.25 "),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn long_server_texts_are_cut() {
        let long = format!(r#"{{"status":"ERROR","error":"{}"}}"#, "x".repeat(10_000));
        let err = decode(400, &long).unwrap_err();
        assert!(err.to_string().len() < 400);
    }
}
