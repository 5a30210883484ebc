//! The flat-file bucket through the `object_store` crate's S3 client (what the backfill service
//! uses), plus raw signed requests where the wire matters: listing, HEAD, whole and ranged GETs,
//! SigV4, revisions, the publication window, faults and the cost of a large universe.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use axum::http::{self, HeaderMap};
use backfill_polygon_sim::{
    flat_file_key, Dataset, Fault, RunningSimulator, SimConfig, Simulator,
    DEFAULT_S3_ACCESS_KEY_ID, DEFAULT_S3_SECRET_ACCESS_KEY, FLAT_FILE_HEADER,
};
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::client::HttpRequestBody;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{BackoffConfig, GetOptions, GetRange, ObjectStore, RetryConfig};
use serde_json::Value;

use super::KEY;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Two weeks of files, 2024-04-29 to 2024-05-10, with Friday 2024-05-03 a holiday.
fn two_weeks() -> SimConfig {
    SimConfig::new()
        .api_key(KEY)
        .flat_files_from(date(2024, 4, 29))
        .published_through(date(2024, 5, 10))
        .holiday(date(2024, 5, 3))
}

async fn spawn(config: SimConfig) -> RunningSimulator {
    Simulator::new(config).spawn("127.0.0.1:0").await.unwrap()
}

fn store_with(running: &RunningSimulator, key_id: &str, secret: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(running.base_url())
        .with_allow_http(true)
        .with_bucket_name("flatfiles")
        .with_access_key_id(key_id)
        .with_secret_access_key(secret)
        .with_region("us-east-1")
        .with_virtual_hosted_style_request(false)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(10),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        })
        .build()
        .unwrap()
}

fn store(running: &RunningSimulator) -> AmazonS3 {
    store_with(
        running,
        DEFAULT_S3_ACCESS_KEY_ID,
        DEFAULT_S3_SECRET_ACCESS_KEY,
    )
}

fn minute_key(d: NaiveDate) -> Path {
    Path::from(flat_file_key(Dataset::MinuteAggs, d))
}

/// A request signed by `object_store`'s own SigV4 signer, sent with reqwest, so that a test sees
/// the raw status, headers and XML.
async fn signed(
    running: &RunningSimulator,
    method: &str,
    path_and_query: &str,
    extra: &[(&str, &str)],
    credentials: Option<(&str, &str)>,
) -> (u16, HeaderMap, String) {
    let url = format!("{}{path_and_query}", running.base_url());
    let mut builder = http::Request::builder().method(method).uri(&url);
    for (k, v) in extra {
        builder = builder.header(*k, *v);
    }
    let mut request = builder.body(HttpRequestBody::empty()).unwrap();
    if let Some((key_id, secret)) = credentials {
        let credential = AwsCredential {
            key_id: key_id.to_owned(),
            secret_key: secret.to_owned(),
            token: None,
        };
        AwsAuthorizer::new(&credential, "s3", "us-east-1").authorize(&mut request, None);
    }
    let client = reqwest::Client::new();
    let mut out = client.request(method.parse().unwrap(), &url);
    for (name, value) in request.headers() {
        out = out.header(name.as_str(), value.as_bytes());
    }
    let response = out.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap_or_default())
}

fn default_credentials() -> Option<(&'static str, &'static str)> {
    Some((DEFAULT_S3_ACCESS_KEY_ID, DEFAULT_S3_SECRET_ACCESS_KEY))
}

fn gunzip(bytes: &[u8]) -> String {
    let mut csv = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut csv)
        .unwrap();
    csv
}

/// One parsed CSV row: the raw fields after the ticker.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    ticker: String,
    volume: f64,
    open: f64,
    close: f64,
    high: f64,
    low: f64,
    window_start_ns: i64,
    transactions: u64,
}

fn rows(csv: &str) -> Vec<Row> {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(FLAT_FILE_HEADER));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 8, "{line}");
            Row {
                ticker: f[0].to_owned(),
                volume: f[1].parse().unwrap(),
                open: f[2].parse().unwrap(),
                close: f[3].parse().unwrap(),
                high: f[4].parse().unwrap(),
                low: f[5].parse().unwrap(),
                window_start_ns: f[6].parse().unwrap(),
                transactions: f[7].parse().unwrap(),
            }
        })
        .collect()
}

async fn rest_bars(running: &RunningSimulator, uri: &str) -> Vec<Value> {
    let body: Value = reqwest::Client::new()
        .get(format!("{}{uri}", running.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["results"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn object_store_lists_heads_and_gets_files_whole_and_in_ranges() {
    let running = spawn(two_weeks()).await;
    let s3 = store(&running);
    let listed: Vec<_> = s3
        .list(Some(&Path::from("us_stocks_sip/minute_aggs_v1/2024/05")))
        .try_collect()
        .await
        .unwrap();
    let keys: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
    let days = [1, 2, 6, 7, 8, 9, 10];
    let expected: Vec<String> = days
        .iter()
        .map(|d| flat_file_key(Dataset::MinuteAggs, date(2024, 5, *d)))
        .collect();
    assert_eq!(
        keys, expected,
        "weekdays of May through the 10th, without the holiday"
    );

    let monday = date(2024, 5, 6);
    let meta = s3.head(&minute_key(monday)).await.unwrap();
    let in_list = &listed[2];
    assert_eq!(
        (meta.size, &meta.e_tag, meta.last_modified),
        (in_list.size, &in_list.e_tag, in_list.last_modified)
    );
    // Published at 06:00 New York time the next morning.
    assert_eq!(
        meta.last_modified,
        DateTime::parse_from_rfc3339("2024-05-07T10:00:00Z").unwrap()
    );
    let expected = running
        .flat_file(Dataset::MinuteAggs, monday)
        .expect("a published file");
    assert_eq!(meta.e_tag.as_deref(), Some(expected.etag()));
    let whole = s3
        .get(&minute_key(monday))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&whole[..], expected.bytes());
    assert_eq!(whole.len() as u64, meta.size);

    // Ranges return exactly the bytes asked for, and together the whole file.
    let size = meta.size;
    let cuts = [0, 1, size / 7, size / 3, size / 2 + 5, size - 1, size];
    let mut joined = Vec::new();
    let mut ranged_bytes = 0;
    for w in cuts.windows(2) {
        let part = s3.get_range(&minute_key(monday), w[0]..w[1]).await.unwrap();
        assert_eq!(&part[..], &expected.bytes()[w[0] as usize..w[1] as usize]);
        ranged_bytes += part.len() as u64;
        joined.extend_from_slice(&part);
    }
    assert_eq!(joined, expected.bytes());
    let tail = s3
        .get_opts(
            &minute_key(monday),
            GetOptions {
                range: Some(GetRange::Suffix(100)),
                ..GetOptions::default()
            },
        )
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&tail[..], &expected.bytes()[size as usize - 100..]);

    for missing in [date(2024, 5, 3), date(2024, 5, 4), date(2024, 5, 13)] {
        let err = s3.head(&minute_key(missing)).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
        let err = s3.get(&minute_key(missing)).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    }
    let stats = running.stats();
    assert_eq!(stats.s3_bytes_served, size + ranged_bytes + 100);
    assert_eq!(stats.with_status(206), 7);
    assert_eq!(stats.with_status(404), 6);
    assert!(stats.matching("/flatfiles/") >= 14);
    // The cache served every GET of the file after the first generation.
    assert_eq!(stats.flat_files_generated, 7);
}

#[tokio::test]
async fn file_rows_equal_the_rest_unadjusted_bars_of_every_universe_ticker() {
    // Before most simulated splits, so that adjusted and unadjusted prices differ.
    let day = date(2010, 3, 15);
    let running = spawn(
        SimConfig::new()
            .api_key(KEY)
            .flat_files_from(date(2010, 3, 1))
            .published_through(date(2010, 3, 31)),
    )
    .await;
    let s3 = store(&running);
    let mut adjusted_differs = false;
    for (dataset, span) in [(Dataset::MinuteAggs, "minute"), (Dataset::DayAggs, "day")] {
        let path = Path::from(flat_file_key(dataset, day));
        let bytes = s3.get(&path).await.unwrap().bytes().await.unwrap();
        let rows = rows(&gunzip(&bytes));
        let mut by_ticker: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for row in &rows {
            by_ticker.entry(row.ticker.as_str()).or_default().push(row);
        }
        let mut tickers: Vec<&str> = running
            .market_tickers()
            .iter()
            .map(String::as_str)
            .collect();
        tickers.sort_unstable();
        assert_eq!(by_ticker.keys().copied().collect::<Vec<_>>(), tickers);
        // Sorted by ticker, then window start.
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| (&a.ticker, a.window_start_ns).cmp(&(&b.ticker, b.window_start_ns)));
        assert_eq!(sorted, rows);
        if dataset == Dataset::MinuteAggs {
            assert!(
                rows.len() < tickers.len() * 960 / 2,
                "minute files are sparse"
            );
        }

        for ticker in &tickers {
            let uri = format!(
                "/v2/aggs/ticker/{ticker}/range/1/{span}/2010-03-15/2010-03-15?adjusted=false&limit=50000"
            );
            let rest = rest_bars(&running, &uri).await;
            let file = &by_ticker[ticker];
            assert_eq!(file.len(), rest.len(), "{ticker} {span}");
            for (row, bar) in file.iter().zip(&rest) {
                let f = |k: &str| bar[k].as_f64().unwrap();
                assert_eq!(row.volume, f("v"), "{ticker}");
                assert_eq!(
                    (row.open, row.close, row.high, row.low),
                    (f("o"), f("c"), f("h"), f("l")),
                    "{ticker}"
                );
                assert_eq!(row.window_start_ns, bar["t"].as_i64().unwrap() * 1_000_000);
                assert_eq!(row.transactions, bar["n"].as_u64().unwrap());
            }
            let adjusted =
                rest_bars(&running, &uri.replace("adjusted=false", "adjusted=true")).await;
            adjusted_differs |= adjusted != rest;
        }

        // The helper names exactly these candles.
        let candles = running.flat_file_rows(dataset, day);
        assert_eq!(candles.len(), rows.len());
        for (candle, row) in candles.iter().zip(&rows) {
            assert_eq!(candle.symbol().as_str(), row.ticker);
            assert_eq!(candle.timeframe(), dataset.timeframe());
            assert_eq!(
                candle.ts().timestamp_nanos_opt().unwrap(),
                row.window_start_ns
            );
            assert_eq!(
                (candle.open(), candle.high(), candle.low(), candle.close()),
                (row.open, row.high, row.low, row.close)
            );
            assert_eq!(candle.volume(), row.volume);
            assert_eq!(
                (candle.trades(), candle.vwap()),
                (Some(row.transactions), None)
            );
        }
    }
    assert!(adjusted_differs, "files hold unadjusted bars");
}

#[tokio::test]
async fn revising_a_day_replaces_its_file_with_a_new_etag_and_rest_agrees() {
    let running = spawn(two_weeks()).await;
    let s3 = store(&running);
    let day = date(2024, 5, 7);
    let path = minute_key(day);
    let first = s3.head(&path).await.unwrap();
    let again = s3.head(&path).await.unwrap();
    assert_eq!(first.e_tag, again.e_tag, "ETags are stable");
    let before = rows(&gunzip(
        &s3.get(&path).await.unwrap().bytes().await.unwrap(),
    ));

    assert_eq!(running.revise_day(day), 1);
    let revised = s3.head(&path).await.unwrap();
    assert_ne!(revised.e_tag, first.e_tag);
    assert!(revised.last_modified >= first.last_modified);
    let listed: Vec<_> = s3
        .list(Some(&Path::from("us_stocks_sip/minute_aggs_v1/2024/05")))
        .try_collect()
        .await
        .unwrap();
    let in_list = listed.iter().find(|m| m.location == path).unwrap();
    assert_eq!(in_list.e_tag, revised.e_tag);
    assert_eq!(in_list.size, revised.size);
    let after = rows(&gunzip(
        &s3.get(&path).await.unwrap().bytes().await.unwrap(),
    ));
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a.volume, b.volume + 1.0);
        assert_eq!((a.open, a.window_start_ns), (b.open, b.window_start_ns));
    }
    let ticker = &after[0].ticker;
    let rest = rest_bars(
        &running,
        &format!("/v2/aggs/ticker/{ticker}/range/1/minute/2024-05-07/2024-05-07?adjusted=false"),
    )
    .await;
    assert_eq!(rest[0]["v"].as_f64().unwrap(), after[0].volume);
    // Other days keep their files.
    let other = s3.head(&minute_key(date(2024, 5, 8))).await.unwrap();
    assert_eq!(
        other.e_tag.as_deref(),
        Some(
            running
                .flat_file(Dataset::MinuteAggs, date(2024, 5, 8))
                .unwrap()
                .etag()
        )
    );

    // Conditional requests see the replacement.
    let stale = s3
        .get_opts(
            &path,
            GetOptions {
                if_match: first.e_tag.clone(),
                ..GetOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, object_store::Error::Precondition { .. }),
        "{stale}"
    );
    let unchanged = s3
        .get_opts(
            &path,
            GetOptions {
                if_none_match: revised.e_tag.clone(),
                ..GetOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(unchanged, object_store::Error::NotModified { .. }),
        "{unchanged}"
    );
}

#[tokio::test]
async fn listings_paginate_in_key_order_and_group_by_delimiter() {
    let running = spawn(two_weeks()).await;
    let s3 = store(&running);
    let all: Vec<String> = s3
        .list(Some(&Path::from("us_stocks_sip")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    // 9 trading days (10 weekdays less the holiday) in each dataset, day files first.
    assert_eq!(all.len(), 18);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    assert!(all[0].starts_with("us_stocks_sip/day_aggs_v1/2024/04/2024-04-29"));

    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_paginated(
                Some("us_stocks_sip/"),
                PaginatedListOptions {
                    max_keys: Some(4),
                    page_token: token.take(),
                    ..PaginatedListOptions::default()
                },
            )
            .await
            .unwrap();
        pages.push(
            page.result
                .objects
                .iter()
                .map(|m| m.location.to_string())
                .collect::<Vec<_>>(),
        );
        match page.page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [4, 4, 4, 4, 2]
    );
    assert_eq!(pages.concat(), all);

    let after: Vec<String> = s3
        .list_with_offset(
            Some(&Path::from("us_stocks_sip")),
            &Path::from(all[10].as_str()),
        )
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(after, all[11..]);

    let top = s3
        .list_with_delimiter(Some(&Path::from("us_stocks_sip")))
        .await
        .unwrap();
    let prefixes: Vec<String> = top
        .common_prefixes
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        prefixes,
        ["us_stocks_sip/day_aggs_v1", "us_stocks_sip/minute_aggs_v1"]
    );
    assert!(top.objects.is_empty());
    let months = s3
        .list_with_delimiter(Some(&Path::from("us_stocks_sip/minute_aggs_v1/2024")))
        .await
        .unwrap();
    let months: Vec<String> = months
        .common_prefixes
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        months,
        [
            "us_stocks_sip/minute_aggs_v1/2024/04",
            "us_stocks_sip/minute_aggs_v1/2024/05"
        ]
    );

    // The XML carries S3's fields, and one prefix per page when max-keys is 1.
    let (status, headers, xml) = signed(
        &running,
        "GET",
        "/flatfiles?list-type=2&prefix=us_stocks_sip%2F&delimiter=%2F&max-keys=1",
        &[],
        default_credentials(),
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(headers["content-type"], "application/xml");
    for field in [
        "<Name>flatfiles</Name>",
        "<Prefix>us_stocks_sip/</Prefix>",
        "<KeyCount>1</KeyCount>",
        "<MaxKeys>1</MaxKeys>",
        "<IsTruncated>true</IsTruncated>",
        "<NextContinuationToken>",
        "<CommonPrefixes><Prefix>us_stocks_sip/day_aggs_v1/</Prefix></CommonPrefixes>",
    ] {
        assert!(xml.contains(field), "{field} in {xml}");
    }
    let (_, _, xml) = signed(
        &running,
        "GET",
        "/flatfiles?list-type=2&prefix=us_stocks_sip%2Fday_aggs_v1%2F2024%2F05%2F&max-keys=2",
        &[],
        default_credentials(),
    )
    .await;
    for field in [
        "<Key>us_stocks_sip/day_aggs_v1/2024/05/2024-05-01.csv.gz</Key>",
        "<LastModified>2024-05-02T10:00:00.000Z</LastModified>",
        "<ETag>&quot;",
        "<Size>",
        "<StorageClass>STANDARD</StorageClass>",
        "<KeyCount>2</KeyCount>",
    ] {
        assert!(xml.contains(field), "{field} in {xml}");
    }
}

#[tokio::test]
async fn listings_past_a_thousand_keys_take_several_pages() {
    // One ticker keeps each file tiny; five years of day files need two pages of 1,000.
    let running = spawn(
        SimConfig::new()
            .market(1)
            .flat_files_from(date(2019, 1, 1))
            .published_through(date(2023, 12, 31)),
    )
    .await;
    let s3 = store(&running);
    let keys: Vec<String> = s3
        .list(Some(&Path::from("us_stocks_sip/day_aggs_v1")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let weekdays = (0..)
        .map(|i| date(2019, 1, 1) + chrono::Days::new(i))
        .take_while(|d| *d <= date(2023, 12, 31))
        .filter(|d| chrono::Datelike::weekday(d).number_from_monday() <= 5)
        .count();
    assert_eq!(keys.len(), weekdays);
    assert_eq!(
        keys.last().unwrap(),
        "us_stocks_sip/day_aggs_v1/2023/12/2023-12-29.csv.gz"
    );
    assert_eq!(running.stats().matching("/flatfiles"), 2);
}

#[tokio::test]
async fn publication_ends_yesterday_in_new_york_unless_configured() {
    let sim = Simulator::new(SimConfig::new());
    let today = Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive();
    assert_eq!(sim.published_through(), today.pred_opt().unwrap());
    assert!(sim.flat_file(Dataset::DayAggs, today).is_none());

    let running = spawn(two_weeks().published_through(date(2024, 5, 8))).await;
    let s3 = store(&running);
    let keys: Vec<String> = s3
        .list(Some(&Path::from("us_stocks_sip/day_aggs_v1/2024/05")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        keys.last().unwrap(),
        "us_stocks_sip/day_aggs_v1/2024/05/2024-05-08.csv.gz"
    );
    let err = s3
        .head(&Path::from(flat_file_key(
            Dataset::DayAggs,
            date(2024, 5, 9),
        )))
        .await
        .unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    let err = s3
        .head(&Path::from(flat_file_key(
            Dataset::DayAggs,
            date(2024, 4, 26),
        )))
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "before the first day: {err}"
    );
}

#[tokio::test]
async fn only_the_configured_credentials_pass_sigv4() {
    let running = spawn(two_weeks().s3_credentials("AKIDSIM", "right-secret")).await;
    let path = minute_key(date(2024, 5, 6));
    let good = store_with(&running, "AKIDSIM", "right-secret");
    assert!(good.head(&path).await.is_ok());
    let wrong_secret = store_with(&running, "AKIDSIM", "wrong-secret");
    let err = wrong_secret.get(&path).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::PermissionDenied { .. }),
        "{err}"
    );
    let err = wrong_secret
        .list(None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
    let wrong_key = store_with(&running, "AKIDOTHER", "right-secret");
    assert!(wrong_key.head(&path).await.is_err());

    let key_path = format!("/flatfiles/{path}");
    let cases = [
        (None, "AccessDenied"),
        (Some(("AKIDOTHER", "right-secret")), "InvalidAccessKeyId"),
        (Some(("AKIDSIM", "wrong-secret")), "SignatureDoesNotMatch"),
    ];
    for (credentials, code) in cases {
        let (status, headers, xml) = signed(&running, "GET", &key_path, &[], credentials).await;
        assert_eq!(status, 403, "{code}");
        assert_eq!(headers["content-type"], "application/xml");
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert!(
            xml.contains(&format!("<Error><Code>{code}</Code>")),
            "{xml}"
        );
    }
    let (status, _, xml) = signed(
        &running,
        "GET",
        &key_path,
        &[],
        Some(("AKIDSIM", "right-secret")),
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(running.stats().with_status(403), 6);
}

#[tokio::test]
async fn the_wire_has_s3s_headers_errors_and_ranges() {
    let running = spawn(two_weeks()).await;
    let key = flat_file_key(Dataset::DayAggs, date(2024, 5, 6));
    let file = running
        .flat_file(Dataset::DayAggs, date(2024, 5, 6))
        .unwrap();
    let size = file.bytes().len();
    let (status, headers, body) = signed(
        &running,
        "HEAD",
        &format!("/flatfiles/{key}"),
        &[],
        default_credentials(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(headers["content-length"], size.to_string().as_str());
    assert_eq!(headers["etag"], file.etag());
    assert_eq!(headers["content-type"], "application/x-gzip");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["last-modified"], "Tue, 07 May 2024 10:00:00 GMT");

    let (status, headers, _) = signed(
        &running,
        "GET",
        &format!("/flatfiles/{key}"),
        &[("range", "bytes=10-")],
        default_credentials(),
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(
        headers["content-range"],
        format!("bytes 10-{}/{size}", size - 1).as_str()
    );
    assert_eq!(headers["content-length"], (size - 10).to_string().as_str());
    let (status, headers, xml) = signed(
        &running,
        "GET",
        &format!("/flatfiles/{key}"),
        &[("range", &format!("bytes={size}-"))],
        default_credentials(),
    )
    .await;
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], format!("bytes */{size}").as_str());
    assert!(xml.contains("<Code>InvalidRange</Code>"), "{xml}");

    let missing = "us_stocks_sip/day_aggs_v1/2024/05/2024-05-04.csv.gz";
    let (status, _, xml) = signed(
        &running,
        "GET",
        &format!("/flatfiles/{missing}"),
        &[],
        default_credentials(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        xml.contains("<Code>NoSuchKey</Code>") && xml.contains(missing),
        "{xml}"
    );
    let (status, _, xml) = signed(
        &running,
        "GET",
        "/other-bucket?list-type=2",
        &[],
        default_credentials(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(xml.contains("<Code>NoSuchBucket</Code>"), "{xml}");
}

#[tokio::test]
async fn flat_files_share_fault_injection_and_stats() {
    let running = spawn(two_weeks().rate_limit(1, Duration::from_secs(3_600))).await;
    let s3 = store(&running);
    let path = minute_key(date(2024, 5, 6));
    let expected = running
        .flat_file(Dataset::MinuteAggs, date(2024, 5, 6))
        .unwrap();

    // A 503 is retried by the client; a body cut mid-way is resumed with a ranged GET.
    running.inject_on("/flatfiles/", [Fault::Status(503), Fault::AbortedBody]);
    let bytes = s3.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], expected.bytes());
    let stats = running.stats();
    assert_eq!(stats.with_status(503), 1);
    assert_eq!(stats.with_status(206), 1, "the resumed rest of the body");
    assert_eq!(stats.with_status(200), 1);
    assert!(stats.s3_bytes_served >= expected.bytes().len() as u64);

    running.inject_on(
        "/flatfiles/",
        [
            Fault::TruncatedJson,
            Fault::GatewayTimeoutHtml,
            Fault::RateLimited {
                retry_after: Some(1),
            },
        ],
    );
    let key_path = format!("/flatfiles/{path}");
    let (status, headers, _) = signed(&running, "GET", &key_path, &[], default_credentials()).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-length"],
        (expected.bytes().len() / 2).to_string().as_str()
    );
    let (status, _, body) = signed(&running, "GET", &key_path, &[], default_credentials()).await;
    assert_eq!(status, 504);
    assert!(body.contains("504 Gateway Time-out"));
    let (status, headers, body) =
        signed(&running, "GET", &key_path, &[], default_credentials()).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert!(body.contains("<Code>SlowDown</Code>"), "{body}");

    // The REST quota of one request an hour does not apply to the bucket.
    for _ in 0..3 {
        assert!(s3.head(&path).await.is_ok());
    }
    let stats = running.stats();
    assert_eq!(stats.with_status(429), 0);
    assert_eq!(stats.matching("/flatfiles/"), 9);
}

#[test]
fn a_five_thousand_ticker_minute_file_is_sparse_and_generated_once() {
    let sim = Simulator::new(
        SimConfig::new()
            .market(5_000)
            .published_through(date(2024, 5, 10)),
    );
    let day = date(2024, 5, 6);
    let file = sim.flat_file(Dataset::MinuteAggs, day).unwrap();
    let csv = gunzip(file.bytes());
    let rows = csv.lines().count() - 1;
    // About 150 bars per ticker, as a real whole-market minute file holds.
    assert!((500_000..1_000_000).contains(&rows), "{rows}");
    assert!(
        (8_000_000..40_000_000).contains(&file.bytes().len()),
        "{}",
        file.bytes().len()
    );
    let again = sim.flat_file(Dataset::MinuteAggs, day).unwrap();
    assert_eq!(again.etag(), file.etag());
    assert_eq!(sim.stats().flat_files_generated, 1);
    let tickers = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(tickers.len(), 5_000);
}
