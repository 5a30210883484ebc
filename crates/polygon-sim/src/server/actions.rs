//! `GET /v3/reference/splits?ticker=` and `GET /v3/reference/dividends?ticker=`: one ticker's
//! splits (the generator's, added ones included) and dividends, sorted by date, in pages of
//! `limit` with Polygon-style `next_url` cursors. Without `ticker=`, splits of every ticker
//! are listed (by execution date, then ticker), as Polygon does; `execution_date.gte`, `.gt`,
//! `.lte` and `.lt` (and `ex_dividend_date.*`) bound the dates.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::NaiveDate;
use serde_json::{json, Value};

use super::{answer, json_with, Params, Simulator};
use crate::{cursor, Fault};

/// Polygon's `limit` of splits or dividends when none is given.
pub const DEFAULT_ACTIONS_LIMIT: u64 = 10;
/// Polygon's largest `limit` of splits or dividends.
pub const MAX_ACTIONS_LIMIT: u64 = 1_000;

pub(super) async fn reference_splits(
    State(sim): State<Simulator>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let parse = |p: &Params| ActionsQuery::parse(p, "execution_date");
    let serve = |sim: &Simulator, path: &str, id: &str, q: &ActionsQuery, f: Option<&Fault>| {
        let records = match &q.ticker {
            Some(ticker) => sim.split_records(ticker),
            None => sim.market_split_records(),
        };
        let records = q.within(records);
        sim.serve_actions(path, id, q, f, "splits", records)
    };
    answer(&sim, &uri, query.as_deref(), &headers, parse, serve).await
}

pub(super) async fn reference_dividends(
    State(sim): State<Simulator>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let parse = |p: &Params| {
        let q = ActionsQuery::parse(p, "ex_dividend_date")?;
        if q.ticker.is_none() {
            return Err("the simulator lists the dividends of one ticker: pass ticker=".to_owned());
        }
        Ok(q)
    };
    let serve = |sim: &Simulator, path: &str, id: &str, q: &ActionsQuery, f: Option<&Fault>| {
        let records = q.within(sim.dividend_records(q.ticker.as_deref().unwrap_or_default()));
        sim.serve_actions(path, id, q, f, "dividends", records)
    };
    answer(&sim, &uri, query.as_deref(), &headers, parse, serve).await
}

/// A validated request (the cursor's parameters included).
#[derive(Debug)]
struct ActionsQuery {
    /// One ticker's records; `None`: every ticker's.
    ticker: Option<String>,
    sort: &'static str,
    /// The first and the last date listed (the sort field's `.gte`/`.gt` and `.lte`/`.lt`).
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    descending: bool,
    limit: u64,
    /// Records already served by earlier pages.
    offset: usize,
}

impl ActionsQuery {
    fn parse(params: &Params, sort: &'static str) -> Result<Self, String> {
        let ticker = params
            .get("ticker")
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let date = |suffix: &str| -> Result<Option<NaiveDate>, String> {
            params
                .get(&format!("{sort}.{suffix}"))
                .map(|d| {
                    d.parse::<NaiveDate>()
                        .map_err(|_| format!("Could not parse the {sort}.{suffix} parameter"))
                })
                .transpose()
        };
        let from = match (date("gte")?, date("gt")?) {
            (Some(a), Some(b)) => Some(a.max(b.succ_opt().unwrap_or(b))),
            (a, b) => a.or(b.and_then(|d| d.succ_opt())),
        };
        let to = match (date("lte")?, date("lt")?) {
            (Some(a), Some(b)) => Some(a.min(b.pred_opt().unwrap_or(b))),
            (a, b) => a.or(b.and_then(|d| d.pred_opt())),
        };
        match params.get("sort") {
            Some(s) if s != sort => {
                return Err(format!("the simulator sorts by {sort} only, not by {s:?}"))
            }
            _ => {}
        }
        let offset = params
            .get("page_marker")
            .map(|m| {
                m.parse()
                    .map_err(|_| "Could not parse the cursor".to_owned())
            })
            .transpose()?
            .unwrap_or(0);
        Ok(Self {
            ticker,
            sort,
            from,
            to,
            descending: params.descending("order")?,
            limit: params.limit(DEFAULT_ACTIONS_LIMIT, MAX_ACTIONS_LIMIT)?,
            offset,
        })
    }

    /// The records dated within the request's bounds.
    fn within(&self, records: Vec<Value>) -> Vec<Value> {
        if self.from.is_none() && self.to.is_none() {
            return records;
        }
        records
            .into_iter()
            .filter(|r| {
                let Some(date) = r[self.sort]
                    .as_str()
                    .and_then(|d| d.parse::<NaiveDate>().ok())
                else {
                    return false;
                };
                self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t)
            })
            .collect()
    }

    /// The cursor of the page after `offset` records: the request's parameters, sorted.
    fn cursor(&self, offset: usize) -> String {
        let order = if self.descending { "desc" } else { "asc" };
        let mut query = String::new();
        if let Some(from) = self.from {
            query.push_str(&format!("{}.gte={from}&", self.sort));
        }
        if let Some(to) = self.to {
            query.push_str(&format!("{}.lte={to}&", self.sort));
        }
        query.push_str(&format!(
            "limit={}&order={order}&page_marker={offset}&sort={}",
            self.limit, self.sort,
        ));
        if let Some(ticker) = &self.ticker {
            query.push_str(&format!(
                "&ticker={}",
                crate::sigv4::strict_encode(ticker.as_bytes())
            ));
        }
        cursor::encode(query.as_bytes())
    }
}

impl Simulator {
    /// Adds a split of `ticker` executed on `execution_date` (`split_from` shares become
    /// `split_to`), as when a company splits after its data was fetched: from now on the
    /// splits endpoint lists it, and the adjusted bars before that date have their prices
    /// divided by `split_to / split_from` and their volumes multiplied by it (on every
    /// endpoint); unadjusted bars stay as they were.
    pub fn add_split(
        &self,
        ticker: &str,
        execution_date: NaiveDate,
        split_from: f64,
        split_to: f64,
    ) {
        let day = crate::calendar::day_of_date(execution_date);
        self.shared
            .generator
            .add_split(ticker, day, split_from, split_to);
    }

    /// The dividends of `ticker` that `GET /v3/reference/dividends?ticker=` lists, oldest
    /// first (none for unknown tickers).
    pub fn dividends(&self, ticker: &str) -> Vec<crate::SimDividend> {
        if self.shared.config.is_unknown(ticker) {
            return Vec::new();
        }
        crate::actions::dividends(&self.shared.generator, ticker)
    }

    /// The splits of `ticker` that `GET /v3/reference/splits?ticker=` lists, oldest first.
    pub fn splits(&self, ticker: &str) -> Vec<crate::SimSplit> {
        if self.shared.config.is_unknown(ticker) {
            return Vec::new();
        }
        self.shared.generator.splits(ticker)
    }

    fn split_records(&self, ticker: &str) -> Vec<Value> {
        self.splits(ticker)
            .iter()
            .map(|s| {
                json!({
                    "execution_date": s.execution_date().to_string(),
                    "id": format!("E{:016x}", crate::hash::fnv(format!("{ticker}{}", s.execution_date()).as_bytes())),
                    "split_from": s.split_from,
                    "split_to": s.split_to,
                    "ticker": ticker,
                })
            })
            .collect()
    }

    /// Every ticker's splits (the market's tickers, delisted ones included, and any ticker a
    /// split was added to), by execution date, then ticker.
    fn market_split_records(&self) -> Vec<Value> {
        let mut tickers: Vec<String> = self
            .shared
            .tickers
            .iter()
            .map(|t| t.ticker.clone())
            .chain(self.shared.generator.tickers_with_added_splits())
            .collect();
        tickers.sort_unstable();
        tickers.dedup();
        let mut records: Vec<Value> = tickers
            .iter()
            .flat_map(|ticker| self.split_records(ticker))
            .collect();
        records.sort_by(|a, b| {
            let key = |r: &Value| {
                (
                    r["execution_date"].as_str().unwrap_or_default().to_owned(),
                    r["ticker"].as_str().unwrap_or_default().to_owned(),
                )
            };
            key(a).cmp(&key(b))
        });
        records
    }

    fn dividend_records(&self, ticker: &str) -> Vec<Value> {
        self.dividends(ticker)
            .iter()
            .map(|d| {
                json!({
                    "cash_amount": d.cash_amount,
                    "currency": "USD",
                    "declaration_date": d.declaration_date.to_string(),
                    "dividend_type": "CD",
                    "ex_dividend_date": d.ex_dividend_date.to_string(),
                    "frequency": 4,
                    "id": format!("E{:016x}", crate::hash::fnv(format!("{ticker}{}", d.ex_dividend_date).as_bytes())),
                    "pay_date": d.pay_date.to_string(),
                    "record_date": d.record_date.to_string(),
                    "ticker": ticker,
                })
            })
            .collect()
    }

    fn serve_actions(
        &self,
        path: &str,
        request_id: &str,
        request: &ActionsQuery,
        fault: Option<&Fault>,
        endpoint: &str,
        mut records: Vec<Value>,
    ) -> Response {
        if let Some(response) = self.fault_response(path, request_id, fault) {
            return response;
        }
        if request.descending {
            records.reverse();
        }
        let cap = self
            .shared
            .config
            .max_page_size
            .unwrap_or(MAX_ACTIONS_LIMIT);
        let limit = usize::try_from(request.limit.min(cap)).unwrap_or(usize::MAX);
        let page: Vec<Value> = records
            .iter()
            .skip(request.offset)
            .take(limit)
            .cloned()
            .collect();
        let next_offset = request.offset.saturating_add(page.len());
        let next_offset = if matches!(fault, Some(Fault::RepeatCursor)) {
            Some(request.offset)
        } else {
            (next_offset < records.len()).then_some(next_offset)
        };
        let mut body = json!({
            "results": page,
            "status": self.shared.config.status,
            "request_id": request_id,
            "count": page.len(),
        });
        if matches!(fault, Some(Fault::NullResults)) {
            body["results"] = Value::Null;
            body["count"] = json!(page.len().max(1));
        }
        if let Some(offset) = next_offset {
            body["next_url"] = json!(format!(
                "{}/v3/reference/{endpoint}?cursor={}",
                self.base_url(),
                request.cursor(offset)
            ));
        }
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.respond(path, StatusCode::OK, request_id, json_with(bytes, fault))
    }
}
