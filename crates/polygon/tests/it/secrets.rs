//! The keys never show: not in log lines, error texts or Debug output (the REST API key and
//! both S3 keys of Flat Files).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backfill_polygon::{
    Dataset, Error, FlatFiles, FlatFilesClient, FlatFilesConfig, Listing, MarketData,
    PolygonClient, PolygonConfig, ReferenceData, TickersRequest,
};
use backfill_polygon_sim::{Fault, SimConfig};
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{
    client, fast_config, fetch_all, files_client, files_config, read_file, request, start,
    start_files, FILE_DAY, KEY, ONE_DAY, S3_KEY_ID, S3_SECRET,
};

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_key_is_absent_from_logs_errors_and_debug_output() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let wrong_key = "wrong-secret-key-77aa";
    let mut texts = Vec::new();

    let sim = start(SimConfig::new().max_page_size(300)).await;
    let good = client(&sim);
    texts.push(format!("{good:?}"));
    texts.push(format!("{:?}", good.config()));
    texts.push(format!("{:?}", sim.config()));

    // Success with retries of every kind on the way.
    sim.inject([
        Fault::Status(500),
        Fault::GatewayTimeoutHtml,
        Fault::RateLimited { retry_after: None },
        Fault::TruncatedJson,
        Fault::AbortedBody,
    ]);
    let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
    let (candles, _) = fetch_all(&good, &req).await.unwrap();
    assert_eq!(candles.len(), 960);

    // Failures: a wrong key, a permanent error, a timeout, a refused connection.
    let bad = PolygonClient::new(PolygonConfig {
        api_key: wrong_key.into(),
        ..fast_config(sim.base_url())
    })
    .unwrap();
    texts.push(format!("{bad:?}"));
    let mut errors = vec![bad.fetch_page(&req, None).await.unwrap_err()];
    sim.inject([Fault::Status(403)]);
    errors.push(good.fetch_page(&req, None).await.unwrap_err());
    sim.inject([Fault::Slow(Duration::from_secs(30))]);
    let impatient = PolygonClient::new(PolygonConfig {
        request_timeout: Duration::from_millis(100),
        max_retries: 0,
        ..fast_config(sim.base_url())
    })
    .unwrap();
    errors.push(impatient.fetch_page(&req, None).await.unwrap_err());
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = PolygonClient::new(PolygonConfig {
        max_retries: 1,
        ..fast_config(&closed_url)
    })
    .unwrap();
    errors.push(unreachable.fetch_page(&req, None).await.unwrap_err());
    // Reference tickers: a page retried, then a cursor that loops; and the wrong key.
    sim.inject_on(
        "/v3/reference/tickers",
        [Fault::Status(500), Fault::RepeatCursor],
    );
    let tickers = TickersRequest {
        page_size: 5,
        ..TickersRequest::new(Listing::Both)
    };
    let listing_errors = [
        good.list_tickers(&tickers).await.unwrap_err(),
        bad.list_tickers(&tickers).await.unwrap_err(),
    ];
    assert!(matches!(listing_errors[0], Error::CursorLoop { .. }));
    assert!(matches!(listing_errors[1], Error::Unauthorized { .. }));
    for error in &listing_errors {
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    }
    for error in &errors {
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    }
    let kinds: Vec<_> = errors
        .iter()
        .map(|e| format!("{e:?}")[..8].to_owned())
        .collect();
    assert_eq!(kinds, ["Unauthor", "NotEntit", "Timeout ", "Transpor"]);

    let logs = logs.text();
    assert!(
        logs.contains("polygon request"),
        "the capture works: {logs}"
    );
    assert!(logs.contains("retrying"), "retries are logged");
    for secret in [KEY, wrong_key] {
        assert!(!logs.contains(secret), "a log line shows the key");
        for text in &texts {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

#[tokio::test]
async fn the_s3_keys_are_absent_from_logs_errors_and_debug_output() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (wrong_id, wrong_secret) = ("wrong-s3-key-id-31dd", "wrong-s3-secret-c07e");
    let mut texts = Vec::new();

    let sim = start_files(SimConfig::new().market(20)).await;
    let good = files_client(&sim, 500);
    texts.push(format!("{good:?}"));
    texts.push(format!("{:?}", good.config()));

    // Success with retries and resumptions of every kind on the way.
    sim.inject_on("/flatfiles/", [Fault::Status(500)]);
    let file = good
        .day_file(Dataset::MinuteAggs, FILE_DAY)
        .await
        .unwrap()
        .unwrap();
    sim.inject_on(
        "/flatfiles/",
        [
            Fault::AbortedBody,
            Fault::Status(503),
            Fault::TruncatedJson,
            Fault::RateLimited { retry_after: None },
        ],
    );
    let (candles, _) = read_file(&good, &file, 0).await.unwrap();
    assert!(!candles.is_empty());

    // Failures: wrong keys, a changed file, a timeout, a refused connection, a broken download.
    let mut errors = Vec::new();
    for (id, secret) in [(wrong_id, S3_SECRET), (S3_KEY_ID, wrong_secret)] {
        let bad = FlatFilesClient::new(FlatFilesConfig {
            access_key_id: id.into(),
            secret_access_key: secret.into(),
            ..files_config(&sim, 500)
        })
        .unwrap();
        texts.push(format!("{bad:?}"));
        errors.push(bad.day_file(Dataset::DayAggs, FILE_DAY).await.unwrap_err());
        errors.push(bad.pages(&file, 0).await.err().unwrap());
    }
    sim.revise_day(FILE_DAY);
    errors.push(good.pages(&file, 0).await.err().unwrap());
    sim.inject_on("/flatfiles/", [Fault::Slow(Duration::from_secs(30))]);
    let impatient = FlatFilesClient::new(FlatFilesConfig {
        request_timeout: Duration::from_millis(100),
        max_retries: 0,
        ..files_config(&sim, 500)
    })
    .unwrap();
    errors.push(
        impatient
            .day_file(Dataset::DayAggs, FILE_DAY)
            .await
            .unwrap_err(),
    );
    let revised = good
        .day_file(Dataset::MinuteAggs, FILE_DAY)
        .await
        .unwrap()
        .unwrap();
    sim.inject_on("/flatfiles/", [Fault::AbortedBody, Fault::Status(403)]);
    let mut broken = good.pages(&revised, 0).await.unwrap();
    while let Some(page) = futures::StreamExt::next(&mut broken).await {
        if let Err(error) = page {
            errors.push(error);
        }
    }
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = FlatFilesClient::new(FlatFilesConfig {
        max_retries: 1,
        ..files_config(&sim, 500).with_endpoint(closed_url)
    })
    .unwrap();
    errors.push(
        unreachable
            .day_file(Dataset::DayAggs, FILE_DAY)
            .await
            .unwrap_err(),
    );
    for error in &errors {
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    }
    let kinds: Vec<_> = errors
        .iter()
        .map(|e| {
            format!("{e:?}")
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "CredentialsRejected",
            "CredentialsRejected",
            "CredentialsRejected",
            "CredentialsRejected",
            "FileChanged",
            "Timeout",
            "CredentialsRejected",
            "Transport",
        ]
    );

    let logs = logs.text();
    assert!(logs.contains("flat files GET"), "the capture works");
    assert!(logs.contains("resuming"), "resumptions are logged");
    assert!(
        logs.contains("reading a flat file failed"),
        "the decoder's thread logs too"
    );
    for secret in [S3_KEY_ID, S3_SECRET, wrong_id, wrong_secret] {
        assert!(!logs.contains(secret), "a log line shows {secret}");
        for text in &texts {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
