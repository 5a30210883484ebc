use std::time::Duration;

use backfill_domain::{Candle, DateRange, Symbol, Timeframe};
use backfill_polygon::{
    pages, AggregatesRequest, DayFile, FilePage, FlatFiles, FlatFilesClient, FlatFilesConfig,
    MarketData, Page, PolygonClient, PolygonConfig,
};
use backfill_polygon_sim::{RunningSimulator, SimConfig, Simulator};
use futures::StreamExt;

/// A distinctive key, so that a leak is easy to find.
pub(crate) const KEY: &str = "it-secret-key-5f3a9c1e";

pub(crate) async fn start(config: SimConfig) -> RunningSimulator {
    Simulator::new(config.api_key(KEY))
        .spawn("127.0.0.1:0")
        .await
        .expect("the simulator starts")
}

/// A configuration with tiny backoffs, so that retries cost milliseconds.
pub(crate) fn fast_config(base_url: &str) -> PolygonConfig {
    PolygonConfig {
        max_retries: 5,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_retry_elapsed: Duration::from_secs(20),
        rate_limit_cooldown: Duration::from_millis(20),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        ..PolygonConfig::new(KEY.into())
    }
    .with_base_url(base_url)
}

pub(crate) fn client(sim: &RunningSimulator) -> PolygonClient {
    PolygonClient::new(fast_config(sim.base_url())).expect("a valid configuration")
}

pub(crate) fn request(
    symbol: &str,
    timeframe: &str,
    from_ms: i64,
    to_ms: i64,
) -> AggregatesRequest {
    AggregatesRequest {
        symbol: Symbol::parse(symbol).unwrap(),
        timeframe: Timeframe::parse(timeframe).unwrap(),
        range: DateRange::from_millis(from_ms, to_ms).unwrap(),
        adjusted: true,
    }
}

/// Monday 2024-05-06 and Tuesday 2024-05-07, New York days: 2 x 960 stock minutes.
pub(crate) const TWO_DAYS: (i64, i64) = (1_714_968_000_000, 1_715_140_799_999);
/// 2024-05-06 in New York: 960 stock minutes.
pub(crate) const ONE_DAY: (i64, i64) = (1_714_968_000_000, 1_715_054_399_999);

/// Fetches every page and returns the candles and the pages (with their candles taken out).
///
/// Checks on the way what `covered_through` promises: a page's candles never start at or before
/// an earlier page's `covered_through`, and never after its own.
pub(crate) async fn fetch_all(
    market: &dyn MarketData,
    request: &AggregatesRequest,
) -> backfill_polygon::Result<(Vec<Candle>, Vec<Page>)> {
    let mut candles = Vec::new();
    let mut all: Vec<Page> = Vec::new();
    let mut stream = std::pin::pin!(pages(market, request));
    while let Some(page) = stream.next().await {
        let mut page = page?;
        let before = all.last().map(|p| p.covered_through);
        for candle in &page.candles {
            assert!(
                candle.ts() <= page.covered_through,
                "a candle after covered_through"
            );
            assert!(
                before.is_none_or(|b| candle.ts() > b),
                "a candle an earlier page covered"
            );
        }
        assert!(
            before.is_none_or(|b| b <= page.covered_through),
            "coverage went back"
        );
        candles.append(&mut page.candles);
        all.push(page);
    }
    if let Some(last) = all.last() {
        assert_eq!(
            last.covered_through,
            request.range.to(),
            "the last page covers the range"
        );
    }
    Ok((candles, all))
}

pub(crate) fn expected(sim: &RunningSimulator, request: &AggregatesRequest) -> Vec<Candle> {
    sim.expected_candles(
        &request.symbol,
        request.timeframe,
        &request.range,
        request.adjusted,
    )
}

/// Compares candle lists, naming the first difference.
pub(crate) fn assert_same(actual: &[Candle], expected: &[Candle]) {
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "candle {i} differs");
    }
    assert_eq!(actual.len(), expected.len(), "candle counts differ");
}

/// Distinctive S3 credentials, so that a leak is easy to find.
pub(crate) const S3_KEY_ID: &str = "it-s3-key-id-4e1b7d";
pub(crate) const S3_SECRET: &str = "it-s3-secret-90c2f6a8";

/// Monday 2024-05-06, the day whose files the Flat Files tests read (ONE_DAY in New York).
pub(crate) const FILE_DAY: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(2024, 5, 6) {
    Some(day) => day,
    None => panic!("a valid date"),
};

/// A simulator whose bucket accepts only [`S3_KEY_ID`] / [`S3_SECRET`].
pub(crate) async fn start_files(config: SimConfig) -> RunningSimulator {
    start(config.s3_credentials(S3_KEY_ID, S3_SECRET)).await
}

/// A Flat Files configuration for the simulator, with tiny backoffs so that retries cost
/// milliseconds.
pub(crate) fn files_config(sim: &RunningSimulator, page_rows: usize) -> FlatFilesConfig {
    FlatFilesConfig {
        page_rows,
        max_retries: 5,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_retry_elapsed: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(10),
        ..FlatFilesConfig::new(S3_KEY_ID.into(), S3_SECRET.into())
    }
    .with_endpoint(sim.base_url())
}

pub(crate) fn files_client(sim: &RunningSimulator, page_rows: usize) -> FlatFilesClient {
    FlatFilesClient::new(files_config(sim, page_rows)).expect("a valid configuration")
}

/// Reads a file after `skip_rows`: its candles in order, and its pages (candles included).
pub(crate) async fn read_file(
    files: &dyn FlatFiles,
    file: &DayFile,
    skip_rows: u64,
) -> backfill_polygon::Result<(Vec<Candle>, Vec<FilePage>)> {
    let mut stream = files.pages(file, skip_rows).await?;
    let mut candles = Vec::new();
    let mut pages = Vec::new();
    while let Some(page) = stream.next().await {
        let page = page?;
        candles.extend(page.candles.iter().cloned());
        pages.push(page);
    }
    Ok((candles, pages))
}
