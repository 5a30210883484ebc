//! The reference tickers body (`/v3/reference/tickers`) and how its records become [`Ticker`]s.

use std::time::Duration;

use backfill_domain::Symbol;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::actions::reference_records;
use crate::{Result, SkipReason, SkippedTicker, Ticker};

/// One decoded page of reference tickers, before pagination bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct TickersPage {
    /// The records whose ticker is a [`Symbol`], in the order Polygon sent them (duplicates
    /// included).
    pub tickers: Vec<Ticker>,
    /// The records whose ticker is not (see [`SkipReason`]), in the order sent.
    pub skipped: Vec<SkippedTicker>,
    /// The `next_url`, verbatim.
    pub next_url: Option<String>,
    /// The body's `status`.
    pub status: Option<String>,
}

/// Turns one response of `/v3/reference/tickers` into tickers or a typed error.
///
/// Statuses and error bodies are read as by [`decode_aggregates`](crate::decode_aggregates).
/// `results` absent or `null` means no tickers, unless `count` claims some (a glitch, reported
/// as [`Error::Decode`] so that it is retried). Each record is read on its own: a field of an
/// unexpected type counts as absent, `active` defaults to "no `delisted_utc`", and a record
/// whose ticker is not a [`Symbol`] is skipped, not fatal. Times are RFC 3339 or plain dates
/// (read as midnight UTC); others count as absent.
pub fn decode_tickers(
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<TickersPage> {
    let parsed = reference_records(http_status, retry_after, body, "reference tickers")?;
    let records = parsed.records;
    let mut tickers = Vec::with_capacity(records.len());
    let mut skipped = Vec::new();
    for record in &records {
        match ticker_of(record) {
            Ok(ticker) => tickers.push(ticker),
            Err(skip) => skipped.push(skip),
        }
    }
    if !skipped.is_empty() {
        tracing::debug!(
            skipped = skipped.len(),
            "skipped reference tickers that are not symbols"
        );
    }
    Ok(TickersPage {
        tickers,
        skipped,
        next_url: parsed.next_url,
        status: parsed.status,
    })
}

/// The longest ticker text kept in a [`SkippedTicker`].
const SKIPPED_TICKER_CHARS: usize = 64;

fn ticker_of(record: &Value) -> std::result::Result<Ticker, SkippedTicker> {
    let empty = Map::new();
    let fields = record.as_object().unwrap_or(&empty);
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let raw = text("ticker").unwrap_or_default();
    let skip = |reason| SkippedTicker {
        ticker: raw.chars().take(SKIPPED_TICKER_CHARS).collect(),
        reason,
    };
    if raw.is_empty() {
        return Err(skip(SkipReason::Missing));
    }
    let symbol = Symbol::parse(&raw).map_err(|e| skip(SkipReason::NotASymbol(e.to_string())))?;
    if symbol.as_str() != raw {
        return Err(skip(SkipReason::CaseSensitive));
    }
    let delisted_utc = text("delisted_utc").as_deref().and_then(instant);
    Ok(Ticker {
        symbol,
        name: text("name").unwrap_or_default(),
        ticker_type: text("type"),
        primary_exchange: text("primary_exchange"),
        active: fields
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(delisted_utc.is_none()),
        delisted_utc,
        last_updated_utc: text("last_updated_utc").as_deref().and_then(instant),
        cik: text("cik"),
        composite_figi: text("composite_figi"),
    })
}

/// An RFC 3339 instant, or a date read as midnight UTC.
fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn decode(status: u16, body: &str) -> Result<TickersPage> {
        decode_tickers(status, None, body.as_bytes())
    }

    #[test]
    fn records_become_tickers_and_odd_fields_count_as_absent() {
        let page = decode(
            200,
            r#"{"status":"OK","count":3,"results":[
                {"ticker":"BRK.A","name":"Berkshire Hathaway Inc.","type":"CS","active":true,
                 "primary_exchange":"XNYS","last_updated_utc":"2024-01-02T00:00:00Z",
                 "cik":"0001067983","composite_figi":"BBG000DWCFL4"},
                {"ticker":"OLD","name":"Old Corp","active":false,"delisted_utc":"2023-04-26T05:00:00Z"},
                {"ticker":"ODD","name":7,"type":["CS"],"active":"yes","delisted_utc":"2021-06-01",
                 "last_updated_utc":"soon"}
            ]}"#,
        )
        .unwrap();
        assert!(page.skipped.is_empty());
        let [brk, old, odd] = page.tickers.as_slice() else {
            panic!("three tickers: {:?}", page.tickers);
        };
        assert_eq!(brk.symbol.as_str(), "BRK.A");
        assert_eq!(brk.ticker_type.as_deref(), Some("CS"));
        assert_eq!(brk.primary_exchange.as_deref(), Some("XNYS"));
        assert_eq!(brk.cik.as_deref(), Some("0001067983"));
        assert_eq!(brk.composite_figi.as_deref(), Some("BBG000DWCFL4"));
        assert!(brk.active && brk.delisted_utc.is_none());
        assert_eq!(
            brk.last_updated_utc,
            Some("2024-01-02T00:00:00Z".parse().unwrap())
        );
        assert!(!old.active);
        assert_eq!(
            old.delisted_utc,
            Some("2023-04-26T05:00:00Z".parse().unwrap())
        );
        assert_eq!((old.ticker_type.as_ref(), old.cik.as_ref()), (None, None));
        // Wrong types are absent; a delisting without `active` makes the record inactive.
        assert_eq!((odd.name.as_str(), odd.ticker_type.as_ref()), ("", None));
        assert!(!odd.active);
        assert_eq!(
            odd.delisted_utc,
            Some("2021-06-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(odd.last_updated_utc, None);
    }

    #[test]
    fn tickers_that_are_not_symbols_are_skipped_with_their_reason() {
        let page = decode(
            200,
            r#"{"status":"OK","results":[
                {"ticker":"AMpB","name":"AM preferred class B"},
                {"ticker":"AMPB","name":"AMPB class A"},
                {"name":"no ticker"},
                {"ticker":""},
                {"ticker":"BAD TICKER"},
                {"ticker":"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ"},
                "not an object",
                {"ticker":"X:BTCUSD","name":"Bitcoin - United States Dollar"}
            ]}"#,
        )
        .unwrap();
        let kept: Vec<&str> = page.tickers.iter().map(|t| t.symbol.as_str()).collect();
        assert_eq!(kept, ["AMPB", "X:BTCUSD"]);
        let skipped: Vec<(&str, &SkipReason)> = page
            .skipped
            .iter()
            .map(|s| (s.ticker.as_str(), &s.reason))
            .collect();
        assert_eq!(skipped[0], ("AMpB", &SkipReason::CaseSensitive));
        assert_eq!(skipped[1], ("", &SkipReason::Missing));
        assert_eq!(skipped[2], ("", &SkipReason::Missing));
        assert!(
            matches!(skipped[3], ("BAD TICKER", SkipReason::NotASymbol(m)) if m.contains("whitespace"))
        );
        assert_eq!(skipped[4].0.chars().count(), SKIPPED_TICKER_CHARS);
        assert!(matches!(skipped[4].1, SkipReason::NotASymbol(_)));
        assert_eq!(skipped[5], ("", &SkipReason::Missing));
        assert_eq!(skipped.len(), 6);
    }

    #[test]
    fn empty_pages_errors_and_glitches() {
        for body in [
            r#"{"status":"OK","count":0,"results":[]}"#,
            r#"{"status":"OK","count":0}"#,
            r#"{"status":"OK","results":null}"#,
            "{}",
        ] {
            let page = decode(200, body).unwrap();
            assert!(page.tickers.is_empty() && page.skipped.is_empty(), "{body}");
            assert_eq!(page.next_url, None);
        }
        let err = decode(200, r#"{"status":"OK","count":2,"results":null}"#).unwrap_err();
        assert!(
            matches!(err, Error::Decode { .. }) && err.is_transient(),
            "{err}"
        );
        let err = decode(200, r#"{"status":"ERROR","error":"bad type"}"#).unwrap_err();
        assert_eq!(
            err,
            Error::BadRequest {
                message: "bad type".to_owned()
            }
        );
        let err = decode(429, r#"{"status":"ERROR","error":"slow down"}"#).unwrap_err();
        assert!(matches!(err, Error::RateLimited { .. }), "{err}");
        for body in [r#"{"status":"OK","results":{"ticker":"A"}}"#, "<html>", ""] {
            let err = decode(200, body).unwrap_err();
            assert!(matches!(err, Error::Decode { .. }), "{body}: {err}");
        }
    }
}
