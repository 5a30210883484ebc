//! The reference splits and dividends bodies (`/v3/reference/splits`,
//! `/v3/reference/dividends`) and how their records become [`Split`]s and [`Dividend`]s.

use std::time::Duration;

use backfill_domain::{Dividend, Split, Symbol};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{parse_body, refused_by_status};
use crate::{Error, Result};

/// One decoded page of corporate actions, before pagination bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionsPage<T> {
    /// The records that are complete and valid, in the order Polygon sent them.
    pub records: Vec<T>,
    /// Records dropped: without a valid ticker or date, or with impossible numbers.
    pub dropped: u64,
    /// The `next_url`, verbatim.
    pub next_url: Option<String>,
}

/// Turns one response of `/v3/reference/splits` into splits or a typed error.
///
/// Statuses and error bodies are read as for the aggregates. A record needs `ticker`,
/// `execution_date` (`YYYY-MM-DD`) and positive `split_from` and `split_to`; others are
/// dropped and counted.
pub fn decode_splits(
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<ActionsPage<Split>> {
    decode_page(http_status, retry_after, body, "splits", |fields| {
        Split::new(
            ticker(fields)?,
            date(fields, "execution_date")?,
            number(fields, "split_from")?,
            number(fields, "split_to")?,
        )
        .ok()
    })
}

/// Turns one response of `/v3/reference/dividends` into dividends or a typed error.
///
/// A record needs `ticker`, `ex_dividend_date` and a finite, non-negative `cash_amount`;
/// `currency`, `declaration_date`, `record_date`, `pay_date`, `frequency` and `dividend_type`
/// are optional (a wrong type counts as absent).
pub fn decode_dividends(
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<ActionsPage<Dividend>> {
    decode_page(http_status, retry_after, body, "dividends", |fields| {
        let cash_amount = number(fields, "cash_amount").filter(|c| *c >= 0.0)?;
        Some(Dividend {
            ticker: ticker(fields)?,
            ex_dividend_date: date(fields, "ex_dividend_date")?,
            cash_amount,
            currency: text(fields, "currency"),
            declaration_date: date(fields, "declaration_date"),
            record_date: date(fields, "record_date"),
            pay_date: date(fields, "pay_date"),
            frequency: fields
                .get("frequency")
                .and_then(Value::as_u64)
                .and_then(|f| u32::try_from(f).ok()),
            dividend_type: text(fields, "dividend_type"),
        })
    })
}

fn decode_page<T>(
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    what: &str,
    record: impl Fn(&Map<String, Value>) -> Option<T>,
) -> Result<ActionsPage<T>> {
    let parsed = reference_records(http_status, retry_after, body, what)?;
    let empty = Map::new();
    let mut records = Vec::with_capacity(parsed.records.len());
    let mut dropped = 0;
    for value in &parsed.records {
        match record(value.as_object().unwrap_or(&empty)) {
            Some(r) => records.push(r),
            None => dropped += 1,
        }
    }
    if dropped > 0 {
        tracing::debug!(dropped, what, "dropped incomplete corporate action records");
    }
    Ok(ActionsPage {
        records,
        dropped,
        next_url: parsed.next_url,
    })
}

/// The records of a `/v3/reference/...` page, still JSON values, and its `next_url` and
/// `status`.
pub(super) struct ReferenceRecords {
    pub(super) records: Vec<Value>,
    pub(super) next_url: Option<String>,
    pub(super) status: Option<String>,
}

/// Reads a `/v3/reference/...` body: statuses and error bodies as for the aggregates;
/// `results` absent or `null` means no records, unless `count` claims some (a glitch,
/// reported as [`Error::Decode`] so that it is retried).
pub(super) fn reference_records(
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    what: &str,
) -> Result<ReferenceRecords> {
    let parsed: ReferenceBody = parse_body(http_status, retry_after, body, what)?;
    refused_by_status(
        parsed.status.as_deref(),
        http_status,
        parsed.error,
        parsed.message,
    )?;
    let records = match parsed.results {
        Some(records) => records,
        None if parsed.count.unwrap_or(0.0) > 0.0 => {
            return Err(Error::Decode {
                message: format!(
                    "the {what} response claims {} results but carries none (request_id {})",
                    parsed.count.unwrap_or(0.0),
                    parsed.request_id.as_deref().unwrap_or("unknown")
                ),
            })
        }
        None => Vec::new(),
    };
    Ok(ReferenceRecords {
        records,
        next_url: parsed.next_url,
        status: parsed.status,
    })
}

/// A reference body of records. Records stay JSON values so that one odd record cannot fail
/// the page.
#[derive(Deserialize)]
struct ReferenceBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    results: Option<Vec<Value>>,
    #[serde(default)]
    count: Option<f64>,
    #[serde(default)]
    next_url: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The record's ticker, when it is a [`Symbol`] spelled as Polygon spells it (a case-sensitive
/// ticker would name another security once upper-cased).
fn ticker(fields: &Map<String, Value>) -> Option<Symbol> {
    let raw = text(fields, "ticker")?;
    Symbol::parse(&raw).ok().filter(|s| s.as_str() == raw)
}

fn date(fields: &Map<String, Value>, key: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&text(fields, key)?, "%Y-%m-%d").ok()
}

fn number(fields: &Map<String, Value>, key: &str) -> Option<f64> {
    fields
        .get(key)
        .and_then(Value::as_f64)
        .filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_need_a_ticker_a_date_and_positive_sides() {
        let page = decode_splits(
            200,
            None,
            br#"{"status":"OK","results":[
                {"execution_date":"2020-08-31","id":"E1","split_from":1,"split_to":4,"ticker":"AAPL"},
                {"execution_date":"2022-07-18","split_from":1.0,"split_to":20.0,"ticker":"GOOGL"},
                {"execution_date":"2023-05-01","split_from":10,"split_to":1,"ticker":"AMpB"},
                {"execution_date":"someday","split_from":1,"split_to":2,"ticker":"A"},
                {"execution_date":"2021-01-04","split_from":0,"split_to":2,"ticker":"B"},
                {"execution_date":"2021-01-04","split_from":"1","split_to":2,"ticker":"C"},
                "not an object"
            ],"next_url":"https://api.polygon.io/v3/reference/splits?cursor=abc"}"#,
        )
        .unwrap();
        let got: Vec<(&str, String, f64)> = page
            .records
            .iter()
            .map(|s| (s.ticker.as_str(), s.execution_date.to_string(), s.ratio()))
            .collect();
        assert_eq!(
            got,
            [
                ("AAPL", "2020-08-31".to_owned(), 4.0),
                ("GOOGL", "2022-07-18".to_owned(), 20.0)
            ]
        );
        assert_eq!(page.dropped, 5);
        assert_eq!(
            page.next_url.as_deref(),
            Some("https://api.polygon.io/v3/reference/splits?cursor=abc")
        );
    }

    #[test]
    fn errors_and_glitches_are_typed() {
        let err = decode_splits(200, None, br#"{"status":"ERROR","error":"bad"}"#).unwrap_err();
        assert_eq!(
            err,
            Error::BadRequest {
                message: "bad".to_owned()
            }
        );
        let err = decode_dividends(200, None, br#"{"status":"OK","count":3}"#).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }) && err.is_transient());
        let err = decode_dividends(429, None, br#"{"status":"ERROR"}"#).unwrap_err();
        assert!(matches!(err, Error::RateLimited { .. }), "{err}");
        let page = decode_dividends(200, None, br#"{"status":"OK"}"#).unwrap();
        assert!(page.records.is_empty() && page.next_url.is_none());
    }
}
