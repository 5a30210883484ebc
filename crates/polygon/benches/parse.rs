//! Parsing speed of a 50,000-bar aggregates page, and the simulator's speed at producing and
//! serving one. Run with `cargo bench -p backfill-polygon --bench parse`.

use std::time::{Duration, Instant};

use backfill_domain::{DateRange, Symbol, Timeframe};
use backfill_polygon::{
    decode_aggregates, AggregatesRequest, MarketData, PolygonClient, PolygonConfig,
};
use backfill_polygon_sim::{MarketGenerator, SimConfig, Simulator};

const BARS: usize = 50_000;
const FROM: i64 = 1_704_067_200_000; // 2024-01-01T00:00Z

fn rate(bars: usize, elapsed: Duration) -> f64 {
    bars as f64 / elapsed.as_secs_f64()
}

/// The median and best of `runs` timings of `f`.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[0])
}

#[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
fn report(what: &str, bars: usize, (median, best): (Duration, Duration)) {
    println!(
        "{what:<48} median {:>8.2} ms  {:>12.0} bars/s   (best {:>8.2} ms  {:>12.0} bars/s)",
        median.as_secs_f64() * 1e3,
        rate(bars, median),
        best.as_secs_f64() * 1e3,
        rate(bars, best),
    );
}

fn main() {
    let generator = MarketGenerator::new(42, 0.0);
    let timeframe = Timeframe::parse("1m").expect("a valid timeframe");
    let to = FROM + BARS as i64 * 60_000 - 1;
    let symbol = Symbol::parse("X:BTCUSD").expect("a valid symbol");
    let body = generator.aggregates_json(symbol.as_str(), timeframe, FROM, to, true, 50_000);
    let page = decode_aggregates(200, None, &body, &symbol, timeframe).expect("the page parses");
    assert_eq!(page.candles.len(), BARS, "the page must hold 50,000 bars");
    #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
    {
        println!("page: {BARS} bars, {} bytes of JSON", body.len());
    }

    report(
        "parse a 50,000-bar page into candles",
        BARS,
        time(30, || {
            decode_aggregates(200, None, &body, &symbol, timeframe).map(|p| p.candles.len())
        }),
    );
    report(
        "simulator: generate and render the page",
        BARS,
        time(30, || {
            generator
                .aggregates_json(symbol.as_str(), timeframe, FROM, to, true, 50_000)
                .len()
        }),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let sim = Simulator::new(SimConfig::new().api_key("bench-key"))
            .spawn("127.0.0.1:0")
            .await
            .expect("the simulator starts");
        let client = PolygonClient::new(
            PolygonConfig::new("bench-key".into()).with_base_url(sim.base_url()),
        )
        .expect("a valid configuration");
        // 49,999 minutes: the largest one-request chunk for minute bars.
        let request = AggregatesRequest {
            symbol: symbol.clone(),
            timeframe,
            range: DateRange::from_millis(FROM, FROM + 49_999 * 60_000 - 1).expect("a valid range"),
            adjusted: true,
        };
        let mut timings = Vec::new();
        for _ in 0..15 {
            let start = Instant::now();
            let page = client
                .fetch_page(&request, None)
                .await
                .expect("the page arrives");
            timings.push(start.elapsed());
            assert_eq!(page.candles.len(), 49_999);
            assert!(page.next.is_none());
        }
        timings.sort();
        report(
            "http: simulator serves, client fetches a page",
            49_999,
            (timings[7], timings[0]),
        );
        let _ = sim.shutdown().await;
    });
}
