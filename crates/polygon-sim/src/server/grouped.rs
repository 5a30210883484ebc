//! `GET /v2/aggs/grouped/locale/us/market/stocks/{date}`: the day bars of the whole market
//! universe on one date, as Polygon's grouped daily endpoint answers.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use backfill_domain::BaseAggregate;
use chrono::NaiveDate;

use super::{answer, json_with, Params, Simulator};
use crate::bar::SimBar;
use crate::calendar::{day_of_date, ny_hour_ms};
use crate::render::{self, GroupedBar};
use crate::Fault;

pub(super) async fn grouped_daily(
    State(sim): State<Simulator>,
    Path(date): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let parse = |params: &Params| GroupedRequest::parse(&date, params);
    answer(
        &sim,
        &uri,
        query.as_deref(),
        &headers,
        parse,
        Simulator::serve_grouped,
    )
    .await
}

/// A validated grouped daily request.
#[derive(Debug)]
struct GroupedRequest {
    day: i64,
    adjusted: bool,
}

impl GroupedRequest {
    fn parse(date: &str, params: &Params) -> Result<Self, String> {
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|_| format!("Could not parse the date: {date:?} is not YYYY-MM-DD"))?;
        let adjusted = params.flag("adjusted")?.unwrap_or(true);
        // The universe has no OTC tickers, so `include_otc` changes nothing once it parses.
        params.flag("include_otc")?;
        Ok(Self {
            day: day_of_date(date),
            adjusted,
        })
    }
}

impl Simulator {
    /// The day bar of every universe ticker with data on a day, sorted by ticker: each its
    /// `1/day` aggregate for that day.
    pub(crate) fn grouped_bars(&self, day: i64, adjusted: bool) -> Vec<(&str, SimBar)> {
        let mut bars = Vec::new();
        let mut out = Vec::with_capacity(self.shared.listed.len());
        for ticker in &self.shared.listed {
            bars.clear();
            self.shared
                .generator
                .day_bars(ticker, BaseAggregate::Day, day, adjusted, &mut bars);
            out.extend(bars.first().map(|bar| (ticker.as_str(), *bar)));
        }
        out
    }

    fn serve_grouped(
        &self,
        path: &str,
        request_id: &str,
        request: &GroupedRequest,
        fault: Option<&Fault>,
    ) -> Response {
        if let Some(response) = self.fault_response(path, request_id, fault) {
            return response;
        }
        // Polygon stamps grouped bars at the close, 16:00 New York time, not at the day's start.
        let close = ny_hour_ms(request.day, 16);
        let bars: Vec<GroupedBar<'_>> = self
            .grouped_bars(request.day, request.adjusted)
            .into_iter()
            .map(|(ticker, b)| GroupedBar {
                ticker,
                v: b.v,
                vw: b.vw,
                o: b.o,
                c: b.c,
                h: b.h,
                l: b.l,
                t: close,
                n: b.n,
            })
            .collect();
        let body = render::grouped_body(
            request.adjusted,
            &self.shared.config.status,
            request_id,
            &bars,
            matches!(fault, Some(Fault::NullResults)),
        );
        self.respond(path, StatusCode::OK, request_id, json_with(body, fault))
    }
}
