//! Transient failures are retried and the result is still exact; permanent ones are not retried.

use std::time::Duration;

use backfill_polygon::{Error, MarketData, PolygonClient, PolygonConfig};
use backfill_polygon_sim::{Fault, SimConfig};

use crate::helpers::{
    assert_same, client, expected, fast_config, fetch_all, request, start, KEY, ONE_DAY,
};

/// Serves `fault` twice at the start of a four-page fetch and checks that the candles are exact
/// and that exactly two retries were made.
async fn retried_and_exact(
    fault: Fault,
    config: impl FnOnce(PolygonConfig) -> PolygonConfig,
) -> PolygonClient {
    let sim = start(SimConfig::new().max_page_size(300)).await;
    sim.inject([fault.clone(), fault.clone()]);
    let client = PolygonClient::new(config(fast_config(sim.base_url()))).unwrap();
    let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
    let (candles, pages) = fetch_all(&client, &req)
        .await
        .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
    assert_same(&candles, &expected(&sim, &req));
    assert_eq!(pages.len(), 4, "{fault:?}");
    assert_eq!(
        pages[0].requests, 3,
        "{fault:?}: two failures, then success"
    );
    assert!(pages[1..].iter().all(|p| p.requests == 1));
    assert_eq!(sim.stats().total(), 6, "{fault:?}");
    assert_eq!(client.stats().retries, 2, "{fault:?}");
    assert_eq!(client.stats().requests, 6, "{fault:?}");
    client
}

#[tokio::test]
async fn server_errors_are_retried() {
    for status in [500, 502, 503] {
        let client = retried_and_exact(Fault::Status(status), |c| c).await;
        assert_eq!(client.stats().responses.get(&status), Some(&2));
    }
}

#[tokio::test]
async fn an_html_gateway_timeout_is_retried() {
    let client = retried_and_exact(Fault::GatewayTimeoutHtml, |c| c).await;
    assert_eq!(client.stats().responses.get(&504), Some(&2));
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_retried() {
    // The timeout is generous next to a normal page (milliseconds) so that a loaded machine
    // does not time out the other pages too.
    let client = retried_and_exact(Fault::Slow(Duration::from_secs(60)), |c| PolygonConfig {
        request_timeout: Duration::from_secs(1),
        ..c
    })
    .await;
    assert_eq!(client.stats().timeouts, 2);
}

#[tokio::test]
async fn truncated_json_is_retried() {
    retried_and_exact(Fault::TruncatedJson, |c| c).await;
}

#[tokio::test]
async fn a_connection_dropped_mid_body_is_retried() {
    let client = retried_and_exact(Fault::AbortedBody, |c| c).await;
    assert_eq!(client.stats().transport_errors, 2);
}

#[tokio::test]
async fn a_null_results_glitch_is_retried() {
    retried_and_exact(Fault::NullResults, |c| c).await;
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    // With an hour of cool-down the retry budget would be exceeded: only Retry-After (1 s) lets
    // the fetch finish.
    let client = retried_and_exact(
        Fault::RateLimited {
            retry_after: Some(1),
        },
        |c| PolygonConfig {
            rate_limit_cooldown: Duration::from_secs(3_600),
            ..c
        },
    )
    .await;
    let stats = client.stats();
    assert_eq!(stats.rate_limit_pauses, Duration::from_secs(2));
    assert_eq!(stats.responses.get(&429), Some(&2));
    assert!(
        stats.rate_limiter_wait > Duration::ZERO,
        "the retry waited in the limiter"
    );
}

#[tokio::test]
async fn a_429_without_retry_after_waits_for_the_cool_down() {
    let client = retried_and_exact(Fault::RateLimited { retry_after: None }, |c| {
        PolygonConfig {
            rate_limit_cooldown: Duration::from_millis(30),
            ..c
        }
    })
    .await;
    assert_eq!(client.stats().rate_limit_pauses, Duration::from_millis(60));
}

#[tokio::test]
async fn random_faults_are_survived_with_exact_results() {
    let sim = start(
        SimConfig::new()
            .max_page_size(100)
            .fault_seed(11)
            .random_faults(
                0.3,
                vec![
                    Fault::Status(500),
                    Fault::Status(503),
                    Fault::GatewayTimeoutHtml,
                    Fault::TruncatedJson,
                    Fault::NullResults,
                    Fault::AbortedBody,
                    Fault::RateLimited { retry_after: None },
                ],
            ),
    )
    .await;
    let client = PolygonClient::new(PolygonConfig {
        max_retries: 20,
        ..fast_config(sim.base_url())
    })
    .unwrap();
    let req = request("X:ETHUSD", "5m", ONE_DAY.0, ONE_DAY.1);
    let (candles, pages) = fetch_all(&client, &req).await.unwrap();
    assert_same(&candles, &expected(&sim, &req));
    let requests: u64 = pages.iter().map(|p| u64::from(p.requests)).sum();
    assert!(requests > pages.len() as u64, "some faults were served");
    assert_eq!(requests, sim.stats().total());
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    type Check = fn(&Error) -> bool;
    let cases: [(u16, Check); 3] = [
        (
            400,
            |e| matches!(e, Error::BadRequest { message } if message.contains("'to'")),
        ),
        (
            403,
            |e| matches!(e, Error::NotEntitled { status: 403, message } if message.contains("not entitled")),
        ),
        (404, |e| matches!(e, Error::NotFound { .. })),
    ];
    for (status, check) in cases {
        let sim = start(SimConfig::new()).await;
        sim.inject([
            Fault::Status(status),
            Fault::Status(status),
            Fault::Status(status),
        ]);
        let client = client(&sim);
        let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
        let err = client.fetch_page(&req, None).await.unwrap_err();
        assert!(check(&err), "{status}: {err}");
        assert!(err.is_permanent(), "{status}");
        assert_eq!(sim.stats().total(), 1, "{status} must not be retried");
        assert_eq!(client.stats().retries, 0);
    }
}

#[tokio::test]
async fn a_wrong_key_is_401_and_not_retried() {
    let sim = start(SimConfig::new()).await;
    let client = PolygonClient::new(PolygonConfig {
        api_key: "wrong-key-0000".into(),
        ..fast_config(sim.base_url())
    })
    .unwrap();
    let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
    let err = client.fetch_page(&req, None).await.unwrap_err();
    assert_eq!(
        err,
        Error::Unauthorized {
            message: "Unknown API Key".to_owned()
        }
    );
    assert_eq!(sim.stats().with_status(401), 1);
    assert_eq!(sim.stats().total(), 1);
    let _ = KEY;
}

#[tokio::test]
async fn retries_stop_at_the_attempt_budget() {
    let sim = start(SimConfig::new()).await;
    sim.inject(std::iter::repeat_n(Fault::Status(502), 10));
    let client = PolygonClient::new(PolygonConfig {
        max_retries: 3,
        ..fast_config(sim.base_url())
    })
    .unwrap();
    let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
    let err = client.fetch_page(&req, None).await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 502, .. }), "{err}");
    assert!(err.is_transient());
    assert_eq!(sim.stats().total(), 4, "one attempt and three retries");
}

#[tokio::test]
async fn retries_stop_at_the_time_budget() {
    let sim = start(SimConfig::new()).await;
    sim.inject([Fault::RateLimited {
        retry_after: Some(30),
    }]);
    let client = PolygonClient::new(PolygonConfig {
        max_retry_elapsed: Duration::from_secs(5),
        ..fast_config(sim.base_url())
    })
    .unwrap();
    let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
    let err = client.fetch_page(&req, None).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(err.to_string().contains("retry after 30s"), "{err}");
    assert_eq!(
        sim.stats().total(),
        1,
        "a 30 s wait does not fit a 5 s budget"
    );
}
