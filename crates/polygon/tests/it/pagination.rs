//! Chunking and `next_url` pagination against the simulator, over real HTTP.

use backfill_polygon::{Error, MarketData};
use backfill_polygon_sim::{Fault, SimConfig};

use crate::helpers::{assert_same, client, expected, fetch_all, request, start, ONE_DAY, TWO_DAYS};

#[tokio::test]
async fn follows_next_url_over_many_pages_with_exact_candles() {
    let sim = start(SimConfig::new().max_page_size(200)).await;
    let client = client(&sim);
    let req = request("AAPL", "1m", TWO_DAYS.0, TWO_DAYS.1);
    let (candles, pages) = fetch_all(&client, &req).await.unwrap();
    let want = expected(&sim, &req);
    assert_eq!(want.len(), 2 * 960);
    assert_same(&candles, &want);
    assert_eq!(pages.len(), 10, "200 base minutes a page");
    for w in pages.windows(2) {
        assert!(w[0].covered_through <= w[1].covered_through);
    }
    assert_eq!(pages.last().unwrap().covered_through, req.range.to());
    assert!(pages.iter().all(|p| p.requests == 1 && p.dropped == 0));
    let stats = sim.stats();
    assert_eq!(stats.with_status(200), 10);
    assert_eq!(stats.total(), 10);
    // Every page after the first was fetched through a rebuilt `next_url` (a new `from`).
    assert_eq!(stats.served.len(), 10);
    assert_eq!(client.stats().pages, 10);
    assert_eq!(client.stats().candles, 1_920);
}

#[tokio::test]
async fn unadjusted_requests_stay_unadjusted_across_pages() {
    // The simulator's cursor leaves `adjusted` out (whether Polygon's keeps it is unknown), so the
    // client must put it back on every page.
    let sim = start(SimConfig::new().max_page_size(500)).await;
    let client = client(&sim);
    // 2004 to 2024 in day bars: about 5,200 bars, eleven pages, with the simulated split inside.
    let mut req = request("AAPL", "1d", 1_072_933_200_000, 1_704_085_199_999);
    req.adjusted = false;
    let (candles, pages) = fetch_all(&client, &req).await.unwrap();
    assert!(pages.len() >= 10, "{}", pages.len());
    assert_same(&candles, &expected(&sim, &req));
    req.adjusted = true;
    assert_ne!(
        candles,
        expected(&sim, &req),
        "the range must contain the split"
    );
}

#[tokio::test]
async fn long_ranges_are_chunked_under_50000_base_aggregates() {
    let sim = start(SimConfig::new()).await;
    let client = client(&sim);
    // 80 days of round-the-clock hourly bars: 115,200 base minutes, so three requests.
    let from = 1_704_067_200_000; // 2024-01-01T00:00Z
    let req = request("X:BTCUSD", "1h", from, from + 80 * 86_400_000 - 1);
    let (candles, pages) = fetch_all(&client, &req).await.unwrap();
    assert_same(&candles, &expected(&sim, &req));
    assert_eq!(candles.len(), 80 * 24);
    assert_eq!(pages.len(), 3);
    let stats = sim.stats();
    assert_eq!(stats.total(), 3);
    for (path, _) in stats.served.keys() {
        let parts: Vec<&str> = path.split('/').collect();
        let (from, to): (i64, i64) = (parts[8].parse().unwrap(), parts[9].parse().unwrap());
        assert!(
            to - from < 50_000 * 60_000,
            "{path} spans more than 50,000 minutes"
        );
        assert_eq!(from % 3_600_000, 0, "{path}: chunks start on bar starts");
    }
    assert!(pages.iter().all(|p| p.dropped == 0));
}

#[tokio::test]
async fn tickers_without_data_give_one_empty_complete_page() {
    let sim = start(SimConfig::new()).await;
    let client = client(&sim);
    let req = request("ZZZNODATA", "1m", ONE_DAY.0, ONE_DAY.1);
    let page = client.fetch_page(&req, None).await.unwrap();
    assert!(page.candles.is_empty());
    assert!(page.next.is_none());
    assert_eq!(page.covered_through, req.range.to());
}

#[tokio::test]
async fn bars_before_the_range_are_dropped_and_counted() {
    let sim = start(SimConfig::new()).await;
    let client = client(&sim);
    // Polygon snaps `from` down to the start of its hour, so the 13:00Z bar comes back too.
    let from = 1_715_002_200_000; // 2024-05-06T13:30Z
    let req = request("AAPL", "1h", from, from + 3 * 3_600_000);
    let page = client.fetch_page(&req, None).await.unwrap();
    assert_eq!(page.dropped, 1);
    assert!(page.next.is_none());
    assert_same(&page.candles, &expected(&sim, &req));
    assert_eq!(page.candles.len(), 3);
}

#[tokio::test]
async fn a_page_served_twice_is_deduplicated() {
    let sim = start(SimConfig::new().max_page_size(100)).await;
    // The first page points back at itself once; the repeat brings only duplicates, then a real
    // cursor.
    sim.inject([Fault::RepeatCursor]);
    let client = client(&sim);
    let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
    let (candles, pages) = fetch_all(&client, &req).await.unwrap();
    assert_same(&candles, &expected(&sim, &req));
    assert_eq!(pages[1].dropped, 100);
    assert_eq!(pages.iter().map(|p| p.dropped).sum::<u64>(), 100);
    assert_eq!(client.stats().bars_dropped, 100);
}

#[tokio::test]
async fn a_cursor_that_does_not_advance_ends_with_an_error() {
    let sim = start(SimConfig::new().max_page_size(100)).await;
    sim.inject([
        Fault::RepeatCursor,
        Fault::RepeatCursor,
        Fault::RepeatCursor,
        Fault::RepeatCursor,
    ]);
    let client = client(&sim);
    let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
    let err = fetch_all(&client, &req).await.unwrap_err();
    assert!(matches!(err, Error::CursorLoop { .. }), "{err}");
    assert!(err.is_permanent());
    assert_eq!(
        sim.stats().total(),
        2,
        "the loop is caught on the second page"
    );
}

#[tokio::test]
async fn a_cursor_can_be_retried_after_an_error_and_only_with_its_request() {
    let sim = start(SimConfig::new().max_page_size(300)).await;
    let client = client(&sim);
    let req = request("AAPL", "1m", ONE_DAY.0, ONE_DAY.1);
    let first = client.fetch_page(&req, None).await.unwrap();
    let cursor = first.next.clone().unwrap();
    sim.inject([Fault::Status(403)]);
    let err = client
        .fetch_page(&req, Some(cursor.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotEntitled { status: 403, .. }),
        "{err}"
    );
    let other = request("MSFT", "1m", ONE_DAY.0, ONE_DAY.1);
    let err = client
        .fetch_page(&other, Some(cursor.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCursor { .. }), "{err}");
    // Resuming with the same cursor completes the range exactly.
    let mut candles = first.candles;
    let mut next = Some(cursor);
    while let Some(cursor) = next {
        let mut page = client.fetch_page(&req, Some(cursor)).await.unwrap();
        candles.append(&mut page.candles);
        next = page.next;
    }
    assert_same(&candles, &expected(&sim, &req));
}
