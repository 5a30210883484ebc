//! `GET /v3/reference/tickers`: the reference records of the market universe and of the delisted
//! tickers (see the `listing` module), filtered by `market`, `active`, `date` and `type`, sorted
//! by ticker, in pages of `limit` with Polygon's `next_url` cursors.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{NaiveDate, Utc};
use chrono_tz::America::New_York;

use super::{answer, json_with, Params, Simulator};
use crate::listing::SimTicker;
use crate::render::{self, TickerResult};
use crate::sigv4::strict_encode;
use crate::{cursor, Fault};

/// Polygon's `limit` of tickers when none is given.
pub const DEFAULT_TICKERS_LIMIT: u64 = 100;
/// Polygon's largest `limit` of tickers.
pub const MAX_TICKERS_LIMIT: u64 = 1_000;

/// The markets Polygon knows; the simulator lists stocks only, the others are empty.
const MARKETS: [&str; 5] = ["stocks", "crypto", "fx", "otc", "indices"];

pub(super) async fn reference_tickers(
    State(sim): State<Simulator>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let serve = Simulator::serve_tickers;
    answer(
        &sim,
        &uri,
        query.as_deref(),
        &headers,
        TickersQuery::parse,
        serve,
    )
    .await
}

/// A validated tickers request (the cursor's parameters included).
#[derive(Debug)]
struct TickersQuery {
    /// `market` as given, and whether it selects the simulator's stocks.
    market: Option<String>,
    active: bool,
    date: Option<NaiveDate>,
    ticker_type: Option<String>,
    descending: bool,
    limit: u64,
    /// The page starts after this (ticker, marker).
    after: Option<(String, String)>,
}

impl TickersQuery {
    fn parse(params: &Params) -> Result<Self, String> {
        let market = params.get("market").map(str::to_owned);
        if let Some(m) = &market {
            if !MARKETS.contains(&m.as_str()) {
                return Err(format!(
                    "Could not parse the market parameter: {m:?} is not one of stocks, crypto, fx, otc, indices"
                ));
            }
        }
        let active = params.flag("active")?.unwrap_or(true);
        let date = params
            .get("date")
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| format!("Could not parse the date: {d:?} is not YYYY-MM-DD"))
            })
            .transpose()?;
        match params.get("sort") {
            None | Some("ticker") => {}
            Some(other) => {
                return Err(format!(
                    "the simulator sorts tickers by ticker only, not by {other:?}"
                ))
            }
        }
        let descending = params.descending("order")?;
        let limit = params.limit(DEFAULT_TICKERS_LIMIT, MAX_TICKERS_LIMIT)?;
        let after = params
            .get("page_marker")
            .map(|m| {
                m.split_once('|')
                    .map(|(t, h)| (t.to_owned(), h.to_owned()))
                    .ok_or_else(|| "Could not parse the cursor".to_owned())
            })
            .transpose()?;
        Ok(Self {
            market,
            active,
            date,
            ticker_type: params.get("type").map(str::to_owned),
            descending,
            limit,
            after,
        })
    }

    fn selects(&self, record: &SimTicker) -> bool {
        let status = if self.active {
            record.is_active_on(self.date)
        } else {
            record.is_delisted_by(self.date)
        };
        status
            && self
                .ticker_type
                .as_ref()
                .is_none_or(|t| record.ticker_type.as_ref() == Some(t))
    }

    fn is_stocks(&self) -> bool {
        self.market.as_deref().is_none_or(|m| m == "stocks")
    }

    /// Whether a record comes after the page marker in the request's order.
    fn is_after_marker(&self, record: &SimTicker) -> bool {
        self.after.as_ref().is_none_or(|(ticker, marker)| {
            let key = (&record.ticker, &record.marker);
            if self.descending {
                key < (ticker, marker)
            } else {
                key > (ticker, marker)
            }
        })
    }

    /// The cursor of the page that starts after `after`: the request's parameters, sorted by
    /// name, as Polygon's (`active=true&date=2022-04-27&limit=2&order=asc&page_marker=A%7C…&sort=ticker`).
    fn cursor(&self, after: Option<(&str, &str)>) -> String {
        let date = self
            .date
            .unwrap_or_else(|| Utc::now().with_timezone(&New_York).date_naive());
        let mut query = format!("active={}&date={date}&limit={}", self.active, self.limit);
        if let Some(market) = &self.market {
            query.push_str(&format!("&market={}", strict_encode(market.as_bytes())));
        }
        let order = if self.descending { "desc" } else { "asc" };
        query.push_str(&format!("&order={order}"));
        if let Some((ticker, marker)) = after {
            let page_marker = format!("{ticker}|{marker}");
            query.push_str(&format!(
                "&page_marker={}",
                strict_encode(page_marker.as_bytes())
            ));
        }
        query.push_str("&sort=ticker");
        if let Some(kind) = &self.ticker_type {
            query.push_str(&format!("&type={}", strict_encode(kind.as_bytes())));
        }
        cursor::encode(query.as_bytes())
    }
}

impl Simulator {
    /// Every reference record, of the universe's tickers and of the delisted ones, sorted by
    /// ticker (a ticker may have several records: a stale duplicate, or a former company that
    /// used it). Tickers configured unknown have none.
    pub fn ticker_records(&self) -> &[SimTicker] {
        &self.shared.tickers
    }

    /// Exactly the records that every page of
    /// `GET /v3/reference/tickers?market=stocks&active={active}[&date={date}]` lists, in order:
    /// those active on `date` (`None`: today), or delisted by then.
    pub fn reference_tickers(&self, active: bool, date: Option<NaiveDate>) -> Vec<SimTicker> {
        let query = TickersQuery {
            market: None,
            active,
            date,
            ticker_type: None,
            descending: false,
            limit: MAX_TICKERS_LIMIT,
            after: None,
        };
        self.shared
            .tickers
            .iter()
            .filter(|r| query.selects(r))
            .cloned()
            .collect()
    }

    fn serve_tickers(
        &self,
        path: &str,
        request_id: &str,
        request: &TickersQuery,
        fault: Option<&Fault>,
    ) -> Response {
        if let Some(response) = self.fault_response(path, request_id, fault) {
            return response;
        }
        let records: &[SimTicker] = if request.is_stocks() {
            &self.shared.tickers
        } else {
            &[]
        };
        let matching = |r: &&SimTicker| request.selects(r) && request.is_after_marker(r);
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        // One more than a page tells whether another page follows.
        let mut page: Vec<&SimTicker> = if request.descending {
            let rest = records.iter().rev().filter(matching);
            rest.take(limit.saturating_add(1)).collect()
        } else {
            let rest = records.iter().filter(matching);
            rest.take(limit.saturating_add(1)).collect()
        };
        let more = page.len() > limit;
        page.truncate(limit);
        let next_after = if matches!(fault, Some(Fault::RepeatCursor)) {
            Some(
                request
                    .after
                    .as_ref()
                    .map(|(t, m)| (t.as_str(), m.as_str())),
            )
        } else {
            more.then(|| page.last().map(|r| (r.ticker.as_str(), r.marker.as_str())))
        };
        let next_url = next_after.map(|after| {
            format!(
                "{}/v3/reference/tickers?cursor={}",
                self.base_url(),
                request.cursor(after)
            )
        });
        let results: Vec<TickerResult<'_>> = page
            .iter()
            .map(|r| TickerResult::new(r, request.active))
            .collect();
        let body = render::tickers_body(
            &results,
            &self.shared.config.status,
            request_id,
            next_url.as_deref(),
            matches!(fault, Some(Fault::NullResults)),
        );
        self.respond(path, StatusCode::OK, request_id, json_with(body, fault))
    }
}
