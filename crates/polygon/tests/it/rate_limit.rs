//! The client-side limit over real HTTP: the simulator enforces the same limit and counts every
//! arrival. (The limiter's exact timing is tested with a paused clock in `limiter.rs`.) And what
//! the client asks of any quota: a slot per request, given back after the response, a pause
//! after a 429, and nothing sent when the quota cannot be read.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backfill_polygon::{
    Error, MarketData, PolygonClient, PolygonConfig, QuotaUse, RateLimiter, RequestQuota, Slot,
};
use backfill_polygon_sim::{Fault, SimConfig};

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
    let client = PolygonClient::with_quota(fast_config(sim.base_url()), limiter).unwrap();
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
    assert_eq!(client.quota().limit(), NonZeroU32::new(5));
    assert_eq!(client.quota().window(), Duration::from_secs(60));
    // Five requests pass at once; the sixth would wait a minute.
    let req = request("AAPL", "1d", ONE_DAY.0, ONE_DAY.1);
    for _ in 0..5 {
        let slot = client.quota().acquire().await.unwrap();
        assert_eq!(slot.waited, Duration::ZERO);
        client.quota().release(slot);
    }
    let sixth = client.fetch_page(&req, None);
    let waited = tokio::time::timeout(Duration::from_secs(59), sixth).await;
    assert!(waited.is_err(), "the sixth request must wait a minute");
    assert_eq!(sim.stats().total(), 0);
    let unlimited = PolygonClient::new(fast_config(sim.base_url())).unwrap();
    assert_eq!(unlimited.quota().limit(), None);
    let short = PolygonClient::new(PolygonConfig {
        requests_per_minute: NonZeroU32::new(20),
        rate_window: Duration::from_secs(2),
        ..fast_config(sim.base_url())
    })
    .unwrap();
    assert_eq!(short.quota().window(), Duration::from_secs(2));
}

/// What a client did with its quota, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Use {
    Acquired(u64),
    Released(u64),
    Paused(Duration),
}

/// A quota without a limit that records its use, or refuses every slot.
#[derive(Debug, Default)]
struct RecordingQuota {
    uses: Mutex<Vec<Use>>,
    unavailable: bool,
}

impl RecordingQuota {
    fn uses(&self) -> Vec<Use> {
        self.uses.lock().unwrap().clone()
    }
}

#[async_trait]
impl RequestQuota for RecordingQuota {
    async fn acquire(&self) -> backfill_polygon::Result<Slot> {
        if self.unavailable {
            return Err(Error::Quota {
                message: "the database does not answer".to_owned(),
            });
        }
        let mut uses = self.uses.lock().unwrap();
        let id = uses.len() as u64;
        uses.push(Use::Acquired(id));
        Ok(Slot {
            id,
            waited: Duration::ZERO,
        })
    }

    fn release(&self, slot: Slot) {
        self.uses.lock().unwrap().push(Use::Released(slot.id));
    }

    async fn pause(&self, delay: Duration) {
        self.uses.lock().unwrap().push(Use::Paused(delay));
    }

    fn limit(&self) -> Option<NonZeroU32> {
        None
    }

    fn window(&self) -> Duration {
        Duration::ZERO
    }

    async fn usage(&self) -> backfill_polygon::Result<QuotaUse> {
        Ok(QuotaUse::default())
    }

    fn shared(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn each_request_holds_a_slot_until_its_response_and_a_429_pauses_the_quota() {
    let sim = start(SimConfig::new().max_page_size(480)).await;
    sim.inject([Fault::RateLimited { retry_after: None }]);
    let quota = Arc::new(RecordingQuota::default());
    let client = PolygonClient::with_quota(fast_config(sim.base_url()), quota.clone()).unwrap();
    let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
    let (candles, _) = fetch_all(&client, &req).await.unwrap();
    assert_same(&candles, &expected(&sim, &req));
    // A 429, its retry, then the second page: every slot given back before the next is taken,
    // and the pause (the configured cool-down, no Retry-After) ordered after the 429's slot.
    assert_eq!(
        quota.uses(),
        vec![
            Use::Acquired(0),
            Use::Released(0),
            Use::Paused(Duration::from_millis(20)),
            Use::Acquired(3),
            Use::Released(3),
            Use::Acquired(5),
            Use::Released(5),
        ]
    );
    assert_eq!(sim.stats().total(), 3);
}

#[tokio::test]
async fn an_unavailable_quota_sends_nothing_and_is_transient() {
    let sim = start(SimConfig::new()).await;
    let quota = Arc::new(RecordingQuota {
        unavailable: true,
        ..RecordingQuota::default()
    });
    let client = PolygonClient::with_quota(fast_config(sim.base_url()), quota).unwrap();
    let req = request("AAPL", "1d", ONE_DAY.0, ONE_DAY.1);
    let err = client.fetch_page(&req, None).await.unwrap_err();
    assert!(matches!(err, Error::Quota { .. }), "{err}");
    assert!(err.is_transient(), "{err}");
    assert_eq!(client.stats().retries, 5, "retried within the budget");
    assert_eq!(client.stats().requests, 0);
    assert_eq!(sim.stats().total(), 0, "nothing was sent without a slot");
}
