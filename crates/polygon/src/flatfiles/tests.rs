use std::io::Write;

use backfill_domain::{Candle, Ohlcv, Symbol};
use chrono::DateTime;
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::StreamExt;

use super::*;
use crate::FilePage;

const HEADER: &str = "ticker,volume,open,close,high,low,window_start,transactions\n";
const T0_NS: i64 = 1_714_993_200_000_000_000;

/// `tickers` x `minutes` rows, sorted by ticker then time, and the candles they hold.
fn csv(tickers: usize, minutes: usize) -> (String, Vec<Candle>) {
    let mut text = HEADER.to_owned();
    let mut candles = Vec::new();
    for t in 0..tickers {
        let ticker = format!("T{t:04}");
        for m in 0..minutes {
            let price = 10.0 + (t * 7 + m) as f64 / 100.0;
            let ns = T0_NS + m as i64 * 60_000_000_000;
            let volume = (m * 100 + t) as f64;
            text.push_str(&format!(
                "{ticker},{volume},{price},{price},{price},{price},{ns},{m}\n"
            ));
            let values = Ohlcv {
                open: price,
                high: price,
                low: price,
                close: price,
                volume,
                vwap: None,
                trades: Some(m as u64),
            };
            let ts = DateTime::from_timestamp_millis(ns / 1_000_000).unwrap();
            let symbol = Symbol::parse(&ticker).unwrap();
            candles.push(Candle::new(symbol, Dataset::MinuteAggs.timeframe(), ts, values).unwrap());
        }
    }
    (text, candles)
}

fn gzip(text: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(text).unwrap();
    encoder.finish().unwrap()
}

fn plan(skip_rows: u64, page_rows: usize) -> Plan {
    Plan {
        key: "us_stocks_sip/minute_aggs_v1/2024/05/2024-05-06.csv.gz".to_owned(),
        dataset: Dataset::MinuteAggs,
        skip_rows,
        page_rows,
    }
}

/// Streams `bytes` to a decoder in chunks of the given sizes (cycled), the first chunk carrying
/// one request, and collects what comes out.
async fn stream(bytes: Vec<u8>, sizes: &[usize], plan: Plan) -> Vec<Result<FilePage>> {
    let (sender, receiver) = mpsc::channel(4);
    let counters = Arc::new(Counters::default());
    let pages = decode::spawn(plan, receiver, Arc::clone(&counters));
    let sizes = sizes.to_vec();
    tokio::spawn(async move {
        let mut bytes = Bytes::from(bytes);
        let mut requests = 1;
        for size in sizes.iter().cycle() {
            if bytes.is_empty() {
                break;
            }
            let chunk = bytes.split_to((*size).min(bytes.len()));
            let data = Chunk::Data {
                bytes: chunk,
                requests: std::mem::take(&mut requests),
            };
            if sender.send(data).await.is_err() {
                break;
            }
        }
    });
    pages.collect().await
}

fn candles_of(pages: &[Result<FilePage>]) -> Vec<Candle> {
    pages
        .iter()
        .flat_map(|p| p.as_ref().unwrap().candles.clone())
        .collect()
}

#[tokio::test]
async fn streams_a_gzipped_file_into_pages_of_at_most_page_rows() {
    let (text, expected) = csv(7, 300); // 2,100 rows
    let bytes = gzip(text.as_bytes());
    for sizes in [&[1usize, 2, 3, 5, 8, 13][..], &[17, 4096], &[1 << 20]] {
        let pages = stream(bytes.clone(), sizes, plan(0, 500)).await;
        let pages: Vec<FilePage> = pages.into_iter().map(Result::unwrap).collect();
        let counts: Vec<_> = pages.iter().map(|p| p.candles.len()).collect();
        assert_eq!(counts, [500, 500, 500, 500, 100], "{sizes:?}");
        let rows: Vec<_> = pages.iter().map(|p| p.rows_done).collect();
        assert_eq!(rows, [500, 1_000, 1_500, 2_000, 2_100]);
        let all: Vec<Candle> = pages.iter().flat_map(|p| p.candles.clone()).collect();
        assert_eq!(all, expected);
        // The counts add up to the whole download, and the offsets only grow, up to its end.
        assert_eq!(
            pages.iter().map(|p| p.bytes).sum::<u64>(),
            bytes.len() as u64
        );
        assert_eq!(pages.iter().map(|p| p.requests).sum::<u32>(), 1);
        assert!(pages.windows(2).all(|w| w[0].offset <= w[1].offset));
        assert_eq!(pages.last().unwrap().offset, bytes.len() as u64);
        assert!(pages.iter().all(|p| p.dropped == 0));
    }
}

#[tokio::test]
async fn a_page_full_at_the_end_of_the_file_is_the_last_page() {
    let (text, expected) = csv(2, 250);
    let pages = stream(gzip(text.as_bytes()), &[999], plan(0, 250)).await;
    let pages: Vec<FilePage> = pages.into_iter().map(Result::unwrap).collect();
    assert_eq!(pages.len(), 2, "no empty page after the last full one");
    assert_eq!(pages[1].rows_done, 500);
    assert_eq!(
        candles_of(&pages.into_iter().map(Ok).collect::<Vec<_>>()),
        expected
    );
}

#[tokio::test]
async fn skip_rows_resumes_exactly_after_the_skipped_rows() {
    let (text, expected) = csv(3, 400); // 1,200 rows
    let bytes = gzip(text.as_bytes());
    for skip in [0u64, 1, 299, 300, 301, 1_199, 1_200, 5_000] {
        let pages = stream(bytes.clone(), &[4_000], plan(skip, 300)).await;
        let candles = candles_of(&pages);
        let from = (skip as usize).min(expected.len());
        assert_eq!(candles, expected[from..], "skip {skip}");
        let last = pages.last().unwrap().as_ref().unwrap();
        assert_eq!(
            last.rows_done, 1_200,
            "skip {skip}: skipped rows count as done"
        );
        assert!(pages
            .iter()
            .all(|p| p.as_ref().unwrap().candles.len() <= 300));
        // Pages count rows from the start of the file, skipped ones included.
        let first = pages[0].as_ref().unwrap();
        assert_eq!(first.rows_done, (skip + 300).min(1_200), "skip {skip}");
    }
}

#[tokio::test]
async fn malformed_rows_are_counted_and_dropped_without_failing_the_file() {
    let text = format!(
        "{HEADER}A,1,1,1,1,1,{T0_NS},1\r\n\
         A,garbage\n\
         \n\
         A,1,1,1,1,1,{T0_NS},1,extra\n\
         A,-5,1,1,1,1,{T0_NS},1\n\
         A,1,NaN,1,1,1,{T0_NS},1\n\
         B,2,2,2,2,2,{T0_NS},2\n\
         C,3,3,3,3,3,{T0_NS},"
    );
    let pages = stream(gzip(text.as_bytes()), &[7], plan(0, 2)).await;
    let pages: Vec<FilePage> = pages.into_iter().map(Result::unwrap).collect();
    let tickers: Vec<_> = pages
        .iter()
        .flat_map(|p| p.candles.iter().map(|c| c.symbol().as_str().to_owned()))
        .collect();
    assert_eq!(tickers, ["A", "B", "C"], "the last line needs no line end");
    assert_eq!(pages.iter().map(|p| p.dropped).sum::<u64>(), 4);
    // Empty lines are not rows.
    assert_eq!(pages.last().unwrap().rows_done, 7);
}

#[tokio::test]
async fn every_gzip_member_is_read() {
    let (text, expected) = csv(4, 50);
    let (first, second) = text.split_at(text.len() / 2 + 3);
    let mut bytes = gzip(first.as_bytes());
    bytes.extend(gzip(second.as_bytes()));
    let pages = stream(bytes, &[100], plan(0, 1_000)).await;
    assert_eq!(candles_of(&pages), expected);
}

#[tokio::test]
async fn a_file_with_only_a_header_gives_one_empty_page() {
    let pages = stream(gzip(HEADER.as_bytes()), &[10], plan(0, 10)).await;
    let page = pages[0].as_ref().unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(
        (page.candles.len(), page.rows_done, page.requests),
        (0, 0, 1)
    );
}

#[tokio::test]
async fn a_file_that_is_not_gzip_or_has_no_header_fails_to_decode() {
    for (bytes, needle) in [
        (b"ticker,volume\nAAPL,1\n".to_vec(), "not a valid gzip file"),
        (gzip(b""), "no header line"),
        (gzip(b"symbol,volume,open\nA,1,1\n"), "no ticker column"),
    ] {
        let pages = stream(bytes, &[64], plan(0, 10)).await;
        let Some(Err(error)) = pages.last() else {
            panic!("{needle}: {pages:?}")
        };
        assert!(matches!(error, Error::Decode { .. }), "{error:?}");
        assert!(error.to_string().contains(needle), "{error}");
        assert!(error.to_string().contains("2024-05-06.csv.gz"), "{error}");
    }
}

#[tokio::test]
async fn a_truncated_file_fails_instead_of_ending_short() {
    let (text, _) = csv(5, 500);
    let mut bytes = gzip(text.as_bytes());
    bytes.truncate(bytes.len() / 2);
    let pages = stream(bytes, &[1_000], plan(0, 100)).await;
    let error = pages.last().unwrap().as_ref().unwrap_err();
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    assert!(pages[..pages.len() - 1].iter().all(Result::is_ok));
}

#[tokio::test]
async fn a_failed_download_ends_the_pages_with_its_error() {
    let (text, expected) = csv(5, 500);
    let bytes = gzip(text.as_bytes());
    let (sender, receiver) = mpsc::channel(4);
    let pages = decode::spawn(plan(0, 100), receiver, Arc::default());
    let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
    sender
        .send(Chunk::Data {
            bytes: half,
            requests: 1,
        })
        .await
        .unwrap();
    let refused = Error::CredentialsRejected {
        status: 403,
        message: "no".to_owned(),
    };
    sender.send(Chunk::Failed(refused.clone())).await.unwrap();
    let pages: Vec<_> = pages.collect().await;
    assert_eq!(pages.last().unwrap().as_ref().unwrap_err(), &refused);
    let candles = candles_of(&pages[..pages.len() - 1]);
    assert!(!candles.is_empty());
    assert_eq!(candles, expected[..candles.len()]);
}

#[tokio::test]
async fn dropping_the_pages_stops_the_decoder_and_the_download() {
    let (text, _) = csv(20, 500);
    let bytes = Bytes::from(gzip(text.as_bytes()));
    let (sender, receiver) = mpsc::channel(2);
    let mut pages = decode::spawn(plan(0, 10), receiver, Arc::default());
    let chunk = bytes.slice(..bytes.len() / 2);
    sender
        .send(Chunk::Data {
            bytes: chunk,
            requests: 1,
        })
        .await
        .unwrap();
    assert!(pages.next().await.unwrap().is_ok());
    drop(pages);
    // The decoder notices at its next page and drops its end of the channel.
    sender.closed().await;
}

#[test]
fn decodes_a_file_in_memory() {
    let (text, expected) = csv(3, 100);
    let bytes = gzip(text.as_bytes());
    let mut pages = Vec::new();
    decode_day_file(Dataset::MinuteAggs, &bytes, 10, 64, |p| pages.push(p)).unwrap();
    assert_eq!(pages[0].bytes, bytes.len() as u64);
    assert_eq!(pages[1].bytes, 0);
    let candles: Vec<_> = pages.into_iter().flat_map(|p| p.candles).collect();
    assert_eq!(candles, expected[10..]);
    assert!(decode_day_file(Dataset::DayAggs, &bytes, 0, 0, |_| {}).is_err());
}

#[test]
fn the_budget_bounds_a_run_of_failures_and_starts_again_after_progress() {
    let config = FlatFilesConfig {
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(15),
        ..FlatFilesConfig::new("a".into(), "b".into())
    };
    let transient = Error::Transport {
        message: "reset".to_owned(),
    };
    let mut budget = Budget::default();
    assert!(budget.next(&config, &transient).unwrap() <= Duration::from_millis(10));
    assert!(budget.next(&config, &transient).unwrap() <= Duration::from_millis(15));
    assert_eq!(budget.next(&config, &transient), None, "two retries");
    budget.reset();
    assert!(budget.next(&config, &transient).is_some());
    let refused = Error::CredentialsRejected {
        status: 403,
        message: "no".to_owned(),
    };
    assert_eq!(Budget::default().next(&config, &refused), None);
    let impatient = FlatFilesConfig {
        max_retry_elapsed: Duration::ZERO,
        initial_backoff: Duration::from_secs(1),
        ..config
    };
    assert_eq!(Budget::default().next(&impatient, &transient), None);
}

#[test]
fn rejects_unusable_configuration_without_echoing_the_keys() {
    let config = |endpoint: &str| {
        FlatFilesConfig::new("key-id-9f".into(), "secret-7c".into()).with_endpoint(endpoint)
    };
    for endpoint in [
        "not a url",
        "ftp://x",
        "https://h/?q=1",
        "https://user:pw@h",
        "https://h/bucket",
    ] {
        let err = FlatFilesClient::new(config(endpoint)).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{endpoint}: {err}");
    }
    let zero = FlatFilesConfig {
        page_rows: 0,
        ..config("https://h")
    };
    assert!(FlatFilesClient::new(zero).is_err());
    let empty = FlatFilesClient::new(FlatFilesConfig::new(" ".into(), "s".into()));
    assert!(matches!(empty, Err(Error::Config { .. })));
    let client = FlatFilesClient::new(config("http://127.0.0.1:9/")).unwrap();
    let shown = format!("{client:?} {:?}", client.config());
    assert!(
        !shown.contains("key-id-9f") && !shown.contains("secret-7c"),
        "{shown}"
    );
    assert_eq!(client.config().bucket, "flatfiles");
}
