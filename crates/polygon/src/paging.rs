//! Cursors, `next_url` and the guard against pagination that does not advance.

use backfill_domain::RangeBound;
use url::Url;

use crate::{AggregatesRequest, Error, Result};
use backfill_domain::MAX_BASE_AGGREGATES;

/// Where the next [`MarketData::fetch_page`](crate::MarketData::fetch_page) call continues: the
/// chunk of the range and, inside it, the path and query rebuilt from Polygon's `next_url`.
/// Opaque; valid only with the request that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct PageCursor(pub(crate) CursorState);

impl PageCursor {
    /// A cursor at the start of `request`, equivalent to passing `None` to
    /// [`MarketData::fetch_page`](crate::MarketData::fetch_page). Mostly useful to tests of
    /// callers, which need a cursor value to hand around.
    pub fn start(request: &AggregatesRequest) -> Self {
        Self(CursorState::start(request))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CursorState {
    /// The request the cursor belongs to.
    pub(crate) request: AggregatesRequest,
    /// Where the chunk being fetched starts (Unix milliseconds), so that the next chunk follows
    /// from it without walking the range from its start again.
    pub(crate) chunk_from: i64,
    /// The path and query of the next page inside the chunk; `None` starts the chunk.
    pub(crate) next: Option<String>,
    /// The furthest `from` asked for in this chunk, in Unix milliseconds.
    pub(crate) high_from: i64,
    /// The start of the last bar delivered.
    pub(crate) last_ts: Option<i64>,
    /// Every bar at or before this instant (Unix milliseconds) has been delivered.
    pub(crate) covered_ms: i64,
}

impl CursorState {
    pub(crate) fn start(request: &AggregatesRequest) -> Self {
        Self {
            request: request.clone(),
            chunk_from: request.range.from_ms(),
            next: None,
            high_from: request.range.from_ms(),
            last_ts: None,
            covered_ms: request.range.from_ms() - 1,
        }
    }
}

/// The path and query of the first request of a chunk.
pub(crate) fn first_path(request: &AggregatesRequest, from_ms: i64, to_ms: i64) -> String {
    format!(
        "/v2/aggs/ticker/{}/range/{}/{}/{from_ms}/{to_ms}?adjusted={}&sort=asc&limit={MAX_BASE_AGGREGATES}",
        request.symbol.as_str(),
        request.timeframe.multiplier(),
        request.timeframe.timespan().as_str(),
        request.adjusted,
    )
}

/// Rebuilds an aggregates `next_url` as a path and query for the configured base URL (see
/// [`next_url_on_base`]), adding `adjusted` when the cursor left it out.
pub(crate) fn rebuild_next_url(next_url: &str, adjusted: bool) -> Result<String> {
    let (path, mut params) = next_url_on_base(next_url, "/v2/aggs/")?;
    if !path.starts_with("/v2/aggs/") {
        return Err(Error::Decode {
            message: format!("next_url leaves the aggregates endpoint: {path}"),
        });
    }
    if !params
        .iter()
        .any(|p| p.split('=').next() == Some("adjusted"))
    {
        params.push(format!("adjusted={adjusted}"));
    }
    Ok(format!("{path}?{}", params.join("&")))
}

/// Splits `next_url` into its path and its query parameters (still encoded), as the official
/// Python client rebuilds it on its own base URL: the host is ignored (it has been wrong before,
/// `api.polygon.io:443:443`), and an `apiKey` parameter is dropped, because the key travels in a
/// header and must never sit in a path that is logged. `endpoint` is the start of the path that
/// `next_url` should have, used to find the path when the URL does not parse. Callers check that
/// the path is the endpoint they asked.
pub(crate) fn next_url_on_base(next_url: &str, endpoint: &str) -> Result<(String, Vec<String>)> {
    let placeholder = Url::parse("http://next-url.invalid").map_err(|e| Error::Decode {
        message: e.to_string(),
    })?;
    // A malformed host does not matter: only the path and query are used.
    let url = Url::parse(next_url)
        .or_else(|e| match next_url.find(endpoint) {
            Some(at) => placeholder.join(&next_url[at..]),
            None => Err(e),
        })
        .map_err(|e| Error::Decode {
            message: format!("next_url is not a url ({e})"),
        })?;
    let params = url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| {
            let key = p.split('=').next().unwrap_or("");
            !p.is_empty() && !key.eq_ignore_ascii_case("apikey")
        })
        .map(str::to_owned)
        .collect();
    Ok((url.path().to_owned(), params))
}

/// The `from` of an aggregates path, in Unix milliseconds (a date means New York midnight).
pub(crate) fn from_of_path(path_and_query: &str) -> Option<i64> {
    let path = path_and_query.split('?').next()?;
    let rest = path.strip_prefix("/v2/aggs/ticker/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        [_, "range", _, _, from, _] => RangeBound::parse(from)
            .ok()
            .map(|b| b.start().timestamp_millis()),
        _ => None,
    }
}

/// What to do after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Fetch this path next; `from` is its start, when it can be read.
    Follow { path: String, from: Option<i64> },
    /// The chunk is complete.
    ChunkDone,
}

/// Decides whether to follow `next` (already rebuilt). A `next_url` must differ from the page just
/// fetched and must advance: either its `from` lies beyond every `from` asked for so far in the
/// chunk, or the page delivered new bars. Since both only grow, following can never cycle.
pub(crate) fn next_step(
    current: &str,
    next: Option<String>,
    high_from: i64,
    delivered_new_bars: bool,
    chunk_to: i64,
) -> Result<Step> {
    let Some(next) = next else {
        return Ok(Step::ChunkDone);
    };
    if next == current {
        return Err(Error::CursorLoop {
            message: format!("next_url repeats the page just fetched ({next})"),
        });
    }
    let from = from_of_path(&next);
    if from.is_some_and(|f| f > chunk_to) {
        return Ok(Step::ChunkDone);
    }
    if !(delivered_new_bars || from.is_some_and(|f| f > high_from)) {
        return Err(Error::CursorLoop {
            message: format!(
                "next_url ({next}) does not move past {high_from} and the page brought no new bars"
            ),
        });
    }
    Ok(Step::Follow { path: next, from })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_next_url_on_our_base_without_keys() {
        for host in ["https://api.massive.com", "https://api.polygon.io:443:443"] {
            let next = format!(
                "{host}/v2/aggs/ticker/AAPL/range/1/day/1578114000000/2020-01-10?cursor=bGltaXQ9MiZzb3J0PWFzYw&apiKey=SECRET"
            );
            assert_eq!(
                rebuild_next_url(&next, true).unwrap(),
                "/v2/aggs/ticker/AAPL/range/1/day/1578114000000/2020-01-10?cursor=bGltaXQ9MiZzb3J0PWFzYw&adjusted=true"
            );
        }
        assert_eq!(
            rebuild_next_url(
                "/v2/aggs/ticker/X:BTCUSD/range/1/minute/1/2?cursor=a&adjusted=false",
                true
            )
            .unwrap(),
            "/v2/aggs/ticker/X:BTCUSD/range/1/minute/1/2?cursor=a&adjusted=false"
        );
        assert!(rebuild_next_url("https://evil.example/v3/other?x=1", true).is_err());
    }

    #[test]
    fn reads_from_as_millis_or_new_york_date() {
        assert_eq!(
            from_of_path("/v2/aggs/ticker/AAPL/range/1/day/1578114000000/2020-01-10?cursor=x"),
            Some(1_578_114_000_000)
        );
        assert_eq!(
            from_of_path("/v2/aggs/ticker/AAPL/range/1/day/2020-01-04/2020-01-10"),
            Some(1_578_114_000_000)
        );
        assert_eq!(from_of_path("/v2/aggs/ticker/AAPL/prev"), None);
    }

    #[test]
    fn follows_only_advancing_cursors() {
        let page = "/v2/aggs/ticker/A/range/1/minute/1000/9000?adjusted=true";
        let later = "/v2/aggs/ticker/A/range/1/minute/2000/9000?cursor=c&adjusted=true".to_owned();
        let same_from =
            "/v2/aggs/ticker/A/range/1/minute/1000/9000?cursor=c&adjusted=true".to_owned();
        let beyond = "/v2/aggs/ticker/A/range/1/minute/9500/9000?cursor=c&adjusted=true".to_owned();
        assert_eq!(
            next_step(page, None, 1000, false, 9000).unwrap(),
            Step::ChunkDone
        );
        assert_eq!(
            next_step(page, Some(later.clone()), 1000, false, 9000).unwrap(),
            Step::Follow {
                path: later,
                from: Some(2000)
            }
        );
        // Same `from` but new bars (Go's fixture cursor): follow.
        assert!(matches!(
            next_step(page, Some(same_from.clone()), 1000, true, 9000).unwrap(),
            Step::Follow { .. }
        ));
        // Same `from`, nothing new: a loop.
        let err = next_step(page, Some(same_from), 1000, false, 9000).unwrap_err();
        assert!(matches!(err, Error::CursorLoop { .. }), "{err}");
        // Backwards, nothing new: a loop.
        let back = "/v2/aggs/ticker/A/range/1/minute/500/9000?cursor=c".to_owned();
        assert!(next_step(page, Some(back), 1000, false, 9000).is_err());
        // The very same page: a loop even with new bars.
        let err = next_step(page, Some(page.to_owned()), 1000, true, 9000).unwrap_err();
        assert!(err.to_string().contains("repeats"), "{err}");
        assert_eq!(
            next_step(page, Some(beyond), 1000, false, 9000).unwrap(),
            Step::ChunkDone
        );
    }
}
