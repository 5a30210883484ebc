//! The key never shows: not in log lines, error texts or Debug output.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backfill_polygon::{MarketData, PolygonClient, PolygonConfig};
use backfill_polygon_sim::{Fault, SimConfig};
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{client, fast_config, fetch_all, request, start, KEY, ONE_DAY};

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
