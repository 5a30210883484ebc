//! The client-side limit over real HTTP: the simulator enforces the same limit and counts every
//! arrival. (The limiter's exact timing is tested with a paused clock in `limiter.rs`.)

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use backfill_polygon::{MarketData, PolygonClient, PolygonConfig, RateLimiter};
use backfill_polygon_sim::SimConfig;

use crate::helpers::{assert_same, expected, fast_config, fetch_all, request, start, ONE_DAY};

#[tokio::test]
async fn concurrent_tasks_never_exceed_the_shared_limit() {
    let window = Duration::from_millis(150);
    let sim = start(
        SimConfig::new()
            .max_page_size(240)
            .rate_limit(2, window)
            .retry_after(None),
    )
    .await;
    let limiter = Arc::new(RateLimiter::new(NonZeroU32::new(2).unwrap(), window));
    let client = PolygonClient::with_rate_limiter(fast_config(sim.base_url()), limiter).unwrap();
    let requests = [
        request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1),
        request("MSFT", "1m", ONE_DAY.0, ONE_DAY.1),
        request("NVDA", "1m", ONE_DAY.0, ONE_DAY.1),
    ];
    let tasks: Vec<_> = requests
        .iter()
        .cloned()
        .map(|req| {
            let client = client.clone();
            tokio::spawn(async move { fetch_all(&client, &req).await.map(|(candles, _)| candles) })
        })
        .collect();
    for (task, req) in tasks.into_iter().zip(&requests) {
        let candles = task.await.unwrap().unwrap();
        assert_same(&candles, &expected(&sim, req));
    }
    let stats = sim.stats();
    assert_eq!(stats.total(), 12, "four pages each");
    assert_eq!(stats.with_status(429), 0, "the server never had to refuse");
    assert!(
        stats.max_in_window(window) <= 2,
        "{}",
        stats.max_in_window(window)
    );
    assert!(client.stats().rate_limiter_wait > Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn requests_per_minute_configures_a_one_minute_window() {
    let sim = start(SimConfig::new()).await;
    let client = PolygonClient::new(PolygonConfig {
        requests_per_minute: NonZeroU32::new(5),
        ..fast_config(sim.base_url())
    })
    .unwrap();
    assert_eq!(client.rate_limiter().limit(), Some(5));
    assert_eq!(client.rate_limiter().window(), Duration::from_secs(60));
    // Five requests pass at once; the sixth would wait a minute.
    let req = request("AAPL", "1d", ONE_DAY.0, ONE_DAY.1);
    for _ in 0..5 {
        let permit = client.rate_limiter().acquire().await;
        assert_eq!(permit.waited(), Duration::ZERO);
    }
    let sixth = client.fetch_page(&req, None);
    let waited = tokio::time::timeout(Duration::from_secs(59), sixth).await;
    assert!(waited.is_err(), "the sixth request must wait a minute");
    assert_eq!(sim.stats().total(), 0);
    let unlimited = PolygonClient::new(fast_config(sim.base_url())).unwrap();
    assert_eq!(unlimited.rate_limiter().limit(), None);
}
