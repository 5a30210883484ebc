//! Stored candles, read back with keyset pagination as JSON or CSV or exported whole as a
//! streamed CSV or Parquet file, and the coverage of a series.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backfill_domain::{
    Candle, DateRange, Hours, QualityReport, RangeBound, Resampler, SplitAdjuster, Symbol,
    Timeframe,
};
use backfill_storage::{CandleQuery, QualityQuery, ResampleQuery, SeriesRead};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{AppPath, AppQuery};
use crate::state::AppState;

/// The header carrying the cursor of the next page (also in `Link`).
pub(crate) const X_NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");
/// The header row of the CSV answer.
pub(crate) const CSV_HEADER: &str = "ts,open,high,low,close,volume,vwap,trades";

const DEFAULT_LIMIT: u32 = 1_000;

/// The candle routes (under `/api/v1`).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_candles))
        .routes(routes!(get_coverage))
        .routes(routes!(get_quality))
}

/// The query of a candle read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CandlesQuery {
    /// The bar size: `1m`, `5m`, `1h`, `1d`, ...
    #[param(example = "1m")]
    timeframe: String,
    /// The first bar's earliest start: `YYYY-MM-DD` (New York date), RFC 3339 or Unix
    /// milliseconds. Default: the beginning of time.
    #[param(example = "2024-01-02")]
    from: Option<String>,
    /// The last bar's latest start, inclusive (same forms as `from`). Default: now.
    #[param(example = "2024-01-31")]
    to: Option<String>,
    /// Adjusted (default) or raw prices.
    #[param(default = true)]
    adjusted: Option<bool>,
    /// Candles per page, 1 to 50,000 (default 1,000).
    #[param(minimum = 1, maximum = 50000, default = 1000)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Build the `timeframe` bars from this stored series instead of reading a stored
    /// `timeframe` series (`1m` read as `1h`, say), without new requests.
    #[param(example = "1m")]
    resample_from: Option<String>,
    /// With `resample_from`: build from the `regular` session's bars (09:30-16:00 New York)
    /// or every stored bar (`extended`, the default).
    hours: Option<Hours>,
    /// `json` (default): one page. `csv` or `parquet`: every bar of the range in one streamed
    /// file (`limit` and `cursor` do not apply).
    format: Option<CandleFormat>,
    /// `splits`: read the raw series (needs `adjusted=false`) adjusted for the stored splits on
    /// the fly (prices divided, volumes multiplied by the ratios of the splits executed after
    /// each bar's New York day); the answer then says `adjusted: true`. `none` (default): as
    /// stored.
    adjust: Option<Adjust>,
}

/// How a read adjusts the stored bars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Adjust {
    /// As stored.
    #[default]
    None,
    /// A raw series adjusted for the stored splits.
    Splits,
}

/// The answer's format: a page of JSON, or the whole range as a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CandleFormat {
    Json,
    Csv,
    Parquet,
}

/// A Parquet file (zstd): columns symbol, timeframe, ts (timestamp in ms, UTC), open, high,
/// low, close, volume, vwap, trades.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub(crate) struct ParquetFile(#[allow(dead_code)] Vec<u8>);

/// The query of a coverage read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CoverageQuery {
    /// The bar size: `1m`, `5m`, `1h`, `1d`, ...
    #[param(example = "1m")]
    timeframe: String,
    /// Adjusted (default) or raw prices.
    #[param(default = true)]
    adjusted: Option<bool>,
}

/// One stored bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CandleRow {
    /// The start of the bar, UTC.
    pub ts: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    /// Volume-weighted average price, when upstream sent one.
    pub vwap: Option<f64>,
    /// Number of trades, when upstream sent one.
    pub trades: Option<u64>,
}

impl From<&Candle> for CandleRow {
    fn from(c: &Candle) -> Self {
        Self {
            ts: c.ts(),
            open: c.open(),
            high: c.high(),
            low: c.low(),
            close: c.close(),
            volume: c.volume(),
            vwap: c.vwap(),
            trades: c.trades(),
        }
    }
}

/// One page of stored candles, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CandlesBody {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    pub adjusted: bool,
    pub candles: Vec<CandleRow>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The intervals stored for a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CoverageBody {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    pub adjusted: bool,
    /// Sorted, disjoint intervals already fetched (both ends inclusive).
    pub intervals: Vec<DateRange>,
}

/// The opaque cursor handed out for the page after `ts`.
fn encode_cursor(ts: DateTime<Utc>) -> String {
    ts.timestamp_millis().to_string()
}

/// Reads a cursor this API handed out.
fn decode_cursor(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let valid =
        !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit());
    valid
        .then(|| raw.parse::<i64>().ok())
        .flatten()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidCursor,
                "cursor must be a next_cursor value returned by this endpoint",
            )
        })
}

fn parse_bound(raw: Option<&str>, default: RangeBound) -> Result<RangeBound, ApiError> {
    match raw {
        Some(raw) => Ok(RangeBound::parse(raw)?),
        None => Ok(default),
    }
}

/// Whether the client asked for CSV.
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            range
                .split(';')
                .next()
                .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/csv"))
        })
}

/// The `Link` header of the next page: the same request with the cursor replaced.
fn next_link(uri: &Uri, cursor: &str) -> Option<HeaderValue> {
    let mut pairs: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && *p != "cursor" && !p.starts_with("cursor="))
        .collect();
    let cursor_pair = format!("cursor={cursor}");
    pairs.push(&cursor_pair);
    HeaderValue::from_str(&format!(
        "<{}?{}>; rel=\"next\"",
        uri.path(),
        pairs.join("&")
    ))
    .ok()
}

/// The CSV answer: a header row, then one row per candle; absent values are empty.
fn to_csv(candles: &[Candle]) -> String {
    let mut out = String::with_capacity(80 * (candles.len() + 1));
    out.push_str(CSV_HEADER);
    out.push('\n');
    for c in candles {
        let _ = write!(
            out,
            "{},{},{},{},{},{},",
            c.ts().to_rfc3339_opts(SecondsFormat::AutoSi, true),
            c.open(),
            c.high(),
            c.low(),
            c.close(),
            c.volume()
        );
        if let Some(vwap) = c.vwap() {
            let _ = write!(out, "{vwap}");
        }
        out.push(',');
        if let Some(trades) = c.trades() {
            let _ = write!(out, "{trades}");
        }
        out.push('\n');
    }
    out
}

/// What adjusts a raw series of `symbol` for its stored splits.
async fn split_adjuster(
    state: &AppState,
    symbol: &Symbol,
    adjusted: bool,
) -> Result<SplitAdjuster, ApiError> {
    if adjusted {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "adjust=splits adjusts a raw series: add adjusted=false",
        ));
    }
    let store = state.actions().ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "adjust=splits needs stored splits, and this server keeps no corporate actions",
        )
    })?;
    Ok(SplitAdjuster::new(&store.splits(symbol).await?))
}

/// Stored candles of one series.
///
/// Oldest first, one page at a time (keyset pagination): pass `next_cursor` back as `cursor`
/// for the next page. With `resample_from`, the bars are built from another stored series of
/// the symbol (`?timeframe=1h&resample_from=1m`), in New York sessions, without new requests. With `Accept: text/csv` the answer is CSV
/// (`ts,open,high,low,close,volume,vwap,trades`), with the next cursor in the `X-Next-Cursor`
/// and `Link` headers (sent with JSON too). With `adjusted=false&adjust=splits`, a raw series
/// is answered adjusted for the symbol's stored splits (see `/api/v1/corporate-actions`).
/// With `format=csv` or `format=parquet` the answer is
/// every bar of the range as one file (`symbol,timeframe,ts,open,high,low,close,volume,vwap,trades`),
/// streamed as it is read, with a `Content-Disposition` file name.
#[utoipa::path(
    get,
    path = "/api/v1/candles/{symbol}",
    tag = "candles",
    params(
        ("symbol" = String, Path, description = "The ticker, such as AAPL or X:BTCUSD (case-insensitive)", example = "AAPL"),
        CandlesQuery,
    ),
    responses(
        (status = 200, description = "One page of candles",
         content(
            (CandlesBody = "application/json"),
            (String = "text/csv", example = "ts,open,high,low,close,volume,vwap,trades\n2024-01-02T14:30:00Z,187.15,187.4,186.9,187.2,1029145,187.1,4211\n"),
            (ParquetFile = "application/vnd.apache.parquet"),
         ),
         headers(
            ("X-Next-Cursor" = Option<String>, description = "The cursor of the next page, absent on the last page"),
            ("Link" = Option<String>, description = "`<...&cursor=...>; rel=\"next\"`, absent on the last page"),
            ("Content-Disposition" = Option<String>, description = "With `format=csv` or `format=parquet`: `attachment; filename=\"AAPL_1m.parquet\"`"),
         )),
        (status = 400, description = "invalid_symbol, invalid_timeframe (including a resampling that cannot be done, with the reason), invalid_range, invalid_limit, invalid_cursor or invalid_query (including adjust=splits on an adjusted series or without stored corporate actions, an unknown format, or limit or cursor with format=csv or parquet)", body = ErrorBody),
    )
)]
pub(crate) async fn get_candles(
    State(state): State<AppState>,
    AppPath(symbol): AppPath<String>,
    AppQuery(query): AppQuery<CandlesQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let symbol = Symbol::parse(&symbol)?;
    let timeframe = Timeframe::parse(&query.timeframe)?;
    let from = parse_bound(query.from.as_deref(), RangeBound::from_millis(0)?)?;
    let to = parse_bound(query.to.as_deref(), RangeBound::Instant(Utc::now()))?;
    let range = DateRange::new(from, to)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=CandleQuery::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!(
                "limit must be between 1 and {}, got {limit}",
                CandleQuery::MAX_LIMIT
            ),
        ));
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let adjusted = query.adjusted.unwrap_or(true);
    let adjuster = match query.adjust.unwrap_or_default() {
        Adjust::None => None,
        Adjust::Splits => Some(split_adjuster(&state, &symbol, adjusted).await?),
    };
    let file = match query.format {
        Some(CandleFormat::Csv) => Some(backfill_export::Format::Csv),
        Some(CandleFormat::Parquet) => Some(backfill_export::Format::Parquet),
        Some(CandleFormat::Json) | None => None,
    };
    if let Some(format) = file {
        if query.limit.is_some() || query.cursor.is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("format={format} answers the whole range: limit and cursor do not apply"),
            ));
        }
    }
    // A file is read in the largest pages.
    let limit = if file.is_some() {
        CandleQuery::MAX_LIMIT
    } else {
        limit
    };
    if query.hours.is_some() && query.resample_from.is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "hours applies to resampled reads: add resample_from",
        ));
    }
    let read = match query.resample_from.as_deref() {
        None => SeriesRead::Stored(CandleQuery {
            symbol: symbol.clone(),
            timeframe,
            adjusted,
            range,
            limit,
            after,
        }),
        Some(source) => {
            let source = Timeframe::parse(source)?;
            let hours = query.hours.unwrap_or_default();
            // Checked here so that a resampling that cannot be done answers its reason.
            Resampler::new(source, timeframe, hours)?;
            SeriesRead::Resampled(ResampleQuery {
                symbol: symbol.clone(),
                source,
                target: timeframe,
                hours,
                adjusted,
                range,
                limit,
                after,
            })
        }
    };
    if let Some(format) = file {
        return crate::export::response(state, read, adjuster, format, &symbol, timeframe).await;
    }
    let mut page = read.page(state.candles()).await?;
    if let Some(adjuster) = &adjuster {
        page.candles = page.candles.iter().map(|c| adjuster.adjust(c)).collect();
    }
    let adjusted = adjusted || adjuster.is_some();
    let next_cursor = page.next_cursor.map(encode_cursor);
    let mut response = if wants_csv(&headers) {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            )],
            to_csv(&page.candles),
        )
            .into_response()
    } else {
        Json(CandlesBody {
            symbol,
            timeframe,
            adjusted,
            candles: page.candles.iter().map(CandleRow::from).collect(),
            next_cursor: next_cursor.clone(),
        })
        .into_response()
    };
    if let Some(cursor) = next_cursor {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&cursor) {
            headers.insert(X_NEXT_CURSOR, value);
        }
        if let Some(link) = next_link(&uri, &cursor) {
            headers.insert(header::LINK, link);
        }
    }
    Ok(response)
}

/// The stored intervals of one series.
///
/// What has already been fetched for a symbol at a timeframe (sorted, disjoint intervals), so
/// a client can see the gaps.
#[utoipa::path(
    get,
    path = "/api/v1/candles/{symbol}/coverage",
    tag = "candles",
    params(
        ("symbol" = String, Path, description = "The ticker, such as AAPL or X:BTCUSD (case-insensitive)", example = "AAPL"),
        CoverageQuery,
    ),
    responses(
        (status = 200, description = "The intervals already fetched", body = CoverageBody),
        (status = 400, description = "invalid_symbol, invalid_timeframe or invalid_query", body = ErrorBody),
    )
)]
pub(crate) async fn get_coverage(
    State(state): State<AppState>,
    AppPath(symbol): AppPath<String>,
    AppQuery(query): AppQuery<CoverageQuery>,
) -> Result<Json<CoverageBody>, ApiError> {
    let symbol = Symbol::parse(&symbol)?;
    let timeframe = Timeframe::parse(&query.timeframe)?;
    let adjusted = query.adjusted.unwrap_or(true);
    let intervals = state
        .candles()
        .coverage(&symbol, timeframe, adjusted)
        .await?;
    Ok(Json(CoverageBody {
        symbol,
        timeframe,
        adjusted,
        intervals,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let ts = DateTime::from_timestamp_millis(1_704_205_800_000).unwrap();
        assert_eq!(decode_cursor(&encode_cursor(ts)).unwrap(), ts);
        for bad in [
            "",
            "-",
            "abc",
            "12a",
            "1e9",
            "99999999999999999999",
            " 1",
            "+1",
        ] {
            assert_eq!(
                decode_cursor(bad).unwrap_err().code(),
                ErrorCode::InvalidCursor,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn next_link_replaces_the_cursor() {
        let uri: Uri = "/api/v1/candles/AAPL?timeframe=1m&cursor=5&limit=2"
            .parse()
            .unwrap();
        assert_eq!(
            next_link(&uri, "9").unwrap(),
            "</api/v1/candles/AAPL?timeframe=1m&limit=2&cursor=9>; rel=\"next\""
        );
    }

    #[test]
    fn accept_negotiation() {
        let mut headers = HeaderMap::new();
        assert!(!wants_csv(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, Text/CSV;q=0.9"),
        );
        assert!(wants_csv(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/csvx"));
        assert!(!wants_csv(&headers));
    }
}

/// The query of a quality report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct QualityParams {
    /// The bar size: `1m`, `5m`, `1h`, `1d`, ...
    #[param(example = "1m")]
    timeframe: String,
    /// Adjusted (default) or raw prices.
    #[param(default = true)]
    adjusted: Option<bool>,
    /// From (`YYYY-MM-DD`, RFC 3339 or Unix milliseconds). Default: the beginning of time.
    from: Option<String>,
    /// To, inclusive. Default: now.
    to: Option<String>,
}

/// The quality report of one series.
///
/// What is covered; trading days without a bar; for minute bars of stocks, the session minutes
/// without a bar (a minute without an eligible trade has no bar: normal, counted and located);
/// bars whose values contradict each other; intraday bars outside the session; and, for minute
/// bars, each day's minutes folded against its stored day bar. Nothing is fixed.
#[utoipa::path(
    get,
    path = "/api/v1/candles/{symbol}/quality",
    tag = "candles",
    params(
        ("symbol" = String, Path, description = "The ticker, such as AAPL or X:BTCUSD (case-insensitive)", example = "AAPL"),
        QualityParams,
    ),
    responses(
        (status = 200, description = "The report", body = QualityReport),
        (status = 400, description = "invalid_symbol, invalid_timeframe, invalid_range or invalid_query", body = ErrorBody),
    )
)]
pub(crate) async fn get_quality(
    State(state): State<AppState>,
    AppPath(symbol): AppPath<String>,
    AppQuery(query): AppQuery<QualityParams>,
) -> Result<Json<QualityReport>, ApiError> {
    let symbol = Symbol::parse(&symbol)?;
    let timeframe = Timeframe::parse(&query.timeframe)?;
    let from = parse_bound(query.from.as_deref(), RangeBound::from_millis(0)?)?;
    let now = Utc::now();
    let to = parse_bound(query.to.as_deref(), RangeBound::Instant(now))?;
    let range = DateRange::new(from, to)?;
    let report = backfill_storage::quality(
        state.candles(),
        &QualityQuery {
            symbol,
            timeframe,
            adjusted: query.adjusted.unwrap_or(true),
            range,
        },
        now,
    )
    .await?;
    Ok(Json(report))
}
