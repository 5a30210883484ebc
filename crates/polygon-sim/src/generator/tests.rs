use chrono::{DateTime, Datelike, NaiveDate, Timelike, Weekday};
use chrono_tz::America::New_York;

use super::*;

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn tf(s: &str) -> Timeframe {
    Timeframe::parse(s).unwrap()
}

fn gen() -> MarketGenerator {
    MarketGenerator::new(42, 0.0)
}

fn local(t: i64) -> chrono::DateTime<chrono_tz::Tz> {
    DateTime::from_timestamp_millis(t)
        .unwrap()
        .with_timezone(&New_York)
}

#[test]
fn same_seed_same_bars_and_other_seeds_differ() {
    let (from, to) = (ms("2024-03-01T00:00:00Z"), ms("2024-03-08T00:00:00Z"));
    let a = gen().bars("AAPL", tf("5m"), from, to, true);
    let b = MarketGenerator::new(42, 0.0).bars("AAPL", tf("5m"), from, to, true);
    let c = MarketGenerator::new(43, 0.0).bars("AAPL", tf("5m"), from, to, true);
    let d = gen().bars("MSFT", tf("5m"), from, to, true);
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
}

#[test]
fn stocks_trade_weekdays_from_4_to_20_new_york_time_across_dst() {
    // 2024-03-08 (Friday, EST) to 2024-03-12 (Tuesday, EDT): the weekend and the clock change.
    let bars = gen().bars(
        "AAPL",
        tf("1m"),
        ms("2024-03-08T05:00:00Z"),
        ms("2024-03-13T00:00:00Z"),
        true,
    );
    let mut per_day = std::collections::BTreeMap::new();
    for b in &bars {
        let t = local(b.t);
        assert!(!matches!(t.weekday(), Weekday::Sat | Weekday::Sun), "{t}");
        assert!((4..20).contains(&t.hour()), "{t}");
        *per_day.entry(t.date_naive()).or_insert(0) += 1;
    }
    let days: Vec<_> = per_day.keys().map(|d| d.day()).collect();
    assert_eq!(days, vec![8, 11, 12]);
    assert!(per_day.values().all(|&n| n == 960), "{per_day:?}");
    assert_eq!(bars[0].t, ms("2024-03-08T09:00:00Z"));
    let monday = bars.iter().find(|b| local(b.t).day() == 11).unwrap();
    assert_eq!(monday.t, ms("2024-03-11T08:00:00Z"));
}

#[test]
fn crypto_trades_around_the_clock() {
    let bars = gen().bars(
        "X:BTCUSD",
        tf("1m"),
        ms("2024-03-09T05:00:00Z"),
        ms("2024-03-11T03:59:59Z"),
        true,
    );
    // Saturday (24 h) and Sunday 2024-03-10 (23 h in New York).
    assert_eq!(bars.len(), 24 * 60 + 23 * 60);
    assert!(bars.windows(2).all(|w| w[1].t - w[0].t == 60_000));
    assert!(
        bars.iter().any(|b| b.v.fract() != 0.0),
        "crypto volumes are fractional"
    );
}

#[test]
fn day_and_longer_bars_start_at_new_york_midnight() {
    let days = gen().bars(
        "AAPL",
        tf("1d"),
        ms("2024-03-04T00:00:00Z"),
        ms("2024-03-18T00:00:00Z"),
        true,
    );
    assert_eq!(days.len(), 10);
    for b in &days {
        let t = local(b.t);
        assert_eq!((t.hour(), t.minute()), (0, 0));
    }
    assert_eq!(days[0].t, ms("2024-03-04T05:00:00Z"));
    assert_eq!(days[5].t, ms("2024-03-11T04:00:00Z"));
    let weeks = gen().bars(
        "X:ETHUSD",
        tf("1w"),
        ms("2024-03-01T00:00:00Z"),
        ms("2024-03-31T00:00:00Z"),
        true,
    );
    assert!(weeks.iter().all(|b| local(b.t).weekday() == Weekday::Sun));
    let months = gen().bars(
        "AAPL",
        tf("1mo"),
        ms("2024-01-01T05:00:00Z"),
        ms("2024-12-31T00:00:00Z"),
        true,
    );
    assert_eq!(months.len(), 12);
    assert!(months
        .iter()
        .all(|b| local(b.t).day() == 1 && local(b.t).hour() == 0));
}

fn check_aggregate(bar: &SimBar, parts: &[SimBar]) {
    assert!(!parts.is_empty());
    assert_eq!(bar.o, parts[0].o);
    assert_eq!(bar.c, parts[parts.len() - 1].c);
    assert_eq!(bar.h, parts.iter().map(|p| p.h).fold(f64::MIN, f64::max));
    assert_eq!(bar.l, parts.iter().map(|p| p.l).fold(f64::MAX, f64::min));
    assert_eq!(bar.v, parts.iter().map(|p| p.v).sum::<f64>());
    assert_eq!(bar.n, parts.iter().map(|p| p.n).sum::<u64>());
    assert!(bar.l <= bar.vw && bar.vw <= bar.h);
}

#[test]
fn higher_timeframes_aggregate_base_bars() {
    let g = gen();
    let (from, to) = (ms("2024-05-06T00:00:00Z"), ms("2024-05-08T00:00:00Z"));
    let minutes = g.bars("AAPL", tf("1m"), from, to + 3_600_000, true);
    for hour in g.bars("AAPL", tf("1h"), from, to, true) {
        let parts: Vec<_> = minutes
            .iter()
            .filter(|m| m.t >= hour.t && m.t < hour.t + 3_600_000)
            .copied()
            .collect();
        check_aggregate(&hour, &parts);
    }
    let days = g.bars(
        "AAPL",
        tf("1d"),
        ms("2024-04-01T00:00:00Z"),
        ms("2024-06-30T00:00:00Z"),
        true,
    );
    for week in g.bars(
        "AAPL",
        tf("1w"),
        ms("2024-04-07T00:00:00Z"),
        ms("2024-06-20T00:00:00Z"),
        true,
    ) {
        let parts: Vec<_> = days
            .iter()
            .filter(|d| d.t >= week.t && d.t < week.t + 7 * 86_400_000)
            .copied()
            .collect();
        check_aggregate(&week, &parts);
        assert_eq!(parts.len(), 5);
    }
}

#[test]
fn bars_are_sane_and_random_access_is_consistent() {
    let g = gen();
    let (from, to) = (ms("2024-01-01T00:00:00Z"), ms("2024-02-01T00:00:00Z"));
    let all = g.bars("X:BTCUSD", tf("15m"), from, to, true);
    for b in &all {
        assert!(b.l <= b.o.min(b.c) && b.h >= b.o.max(b.c), "{b:?}");
        assert!(b.v > 0.0 && b.n > 0 && b.o > 0.0);
    }
    assert!(all.windows(2).all(|w| w[0].t < w[1].t));
    let (a, z) = (all[100].t, all[200].t);
    assert_eq!(
        g.bars("X:BTCUSD", tf("15m"), a, z, true),
        all[100..=200].to_vec()
    );
    let fresh = MarketGenerator::new(42, 0.0);
    assert_eq!(
        fresh.bars("X:BTCUSD", tf("15m"), a, z, true),
        all[100..=200].to_vec()
    );
}

#[test]
fn unadjusted_prices_differ_before_the_split_only() {
    let g = gen();
    let p = g.profile("AAPL");
    let split = calendar_ms(p.split_day);
    let before = g.bars("AAPL", tf("1d"), split - 20 * 86_400_000, split - 1, true);
    let before_raw = g.bars("AAPL", tf("1d"), split - 20 * 86_400_000, split - 1, false);
    assert_eq!(before.len(), before_raw.len());
    for (a, r) in before.iter().zip(&before_raw) {
        assert!((r.c / a.c - p.split_ratio).abs() < 0.01, "{a:?} {r:?}");
        assert!(r.v < a.v);
    }
    let after = g.bars("AAPL", tf("1d"), split, split + 20 * 86_400_000, true);
    assert_eq!(
        after,
        g.bars("AAPL", tf("1d"), split, split + 20 * 86_400_000, false)
    );
    // Crypto has no splits.
    let c = g.bars("X:BTCUSD", tf("1d"), split - 86_400_000 * 5, split, true);
    assert_eq!(
        c,
        g.bars("X:BTCUSD", tf("1d"), split - 86_400_000 * 5, split, false)
    );
}

fn calendar_ms(day: i64) -> i64 {
    crate::calendar::ny_midnight_ms(day)
}

#[test]
fn limit_counts_base_aggregates_and_pages_hold_whole_buckets() {
    let g = gen();
    let (from, to) = (ms("2024-05-06T13:00:00Z"), ms("2024-05-06T23:59:59Z"));
    let page = g.page("AAPL", tf("1h"), from, to, true, false, 100);
    assert_eq!(page.bars.len(), 1);
    assert_eq!(page.query_count, 60);
    assert_eq!(page.next, Some(ms("2024-05-06T14:00:00Z")));
    // A bucket larger than the limit is still served, so that pagination advances.
    let page = g.page("AAPL", tf("1h"), from, to, true, false, 10);
    assert_eq!((page.bars.len(), page.query_count), (1, 60));
    let page = g.page("AAPL", tf("1m"), from, to, true, false, 50_000);
    assert_eq!(page.bars.len(), 660);
    assert_eq!(page.next, None);
}

#[test]
fn from_snaps_down_and_to_snaps_up_to_bucket_bounds() {
    let g = gen();
    let page = g.page(
        "AAPL",
        tf("1h"),
        ms("2024-05-06T13:30:00Z"),
        ms("2024-05-06T14:10:00Z"),
        true,
        false,
        50_000,
    );
    let starts: Vec<_> = page.bars.iter().map(|b| b.t).collect();
    assert_eq!(
        starts,
        vec![ms("2024-05-06T13:00:00Z"), ms("2024-05-06T14:00:00Z")]
    );
    assert_eq!(page.query_count, 120);
}

#[test]
fn descending_pages_walk_backwards() {
    let g = gen();
    let (from, to) = (ms("2024-05-06T13:00:00Z"), ms("2024-05-06T13:59:59Z"));
    let all = g.bars("AAPL", tf("1m"), from, to, true);
    let page = g.page("AAPL", tf("1m"), from, to, true, true, 25);
    let expected: Vec<_> = all.iter().rev().take(25).copied().collect();
    assert_eq!(page.bars, expected);
    assert_eq!(page.next, Some(all[35].t));
}

#[test]
fn missing_bars_leave_gaps_deterministically() {
    let g = MarketGenerator::new(42, 0.3);
    let (from, to) = (ms("2024-05-06T13:00:00Z"), ms("2024-05-06T23:00:00Z"));
    let bars = g.bars("AAPL", tf("1m"), from, to, true);
    assert!(bars.len() < 500 && bars.len() > 300, "{}", bars.len());
    assert_eq!(
        bars,
        MarketGenerator::new(42, 0.3).bars("AAPL", tf("1m"), from, to, true)
    );
}

#[test]
fn second_bars_cover_the_session_and_no_data_outside_1970_to_2099() {
    let g = gen();
    let bars = g.bars(
        "AAPL",
        tf("1s"),
        ms("2024-05-06T08:00:00Z"),
        ms("2024-05-06T08:59:59Z"),
        true,
    );
    assert_eq!(bars.len(), 3_600);
    assert!(g
        .bars(
            "AAPL",
            tf("1d"),
            ms("1960-01-01T00:00:00Z"),
            ms("1969-12-31T00:00:00Z"),
            true
        )
        .is_empty());
    assert!(g
        .bars(
            "AAPL",
            tf("1d"),
            ms("2100-01-02T00:00:00Z"),
            ms("2100-03-01T00:00:00Z"),
            true
        )
        .is_empty());
    let _ = NaiveDate::MIN;
}

#[test]
fn candles_match_bars() {
    let g = gen();
    let symbol = Symbol::parse("AAPL").unwrap();
    let range =
        DateRange::from_millis(ms("2024-05-06T13:00:00Z"), ms("2024-05-06T14:00:00Z")).unwrap();
    let candles = g.candles(&symbol, tf("1m"), &range, true);
    let bars = g.bars("AAPL", tf("1m"), range.from_ms(), range.to_ms(), true);
    assert_eq!(candles.len(), 61);
    for (c, b) in candles.iter().zip(&bars) {
        assert_eq!(c.ts().timestamp_millis(), b.t);
        assert_eq!(
            (c.open(), c.high(), c.low(), c.close(), c.volume()),
            (b.o, b.h, b.l, b.c, b.v)
        );
        assert_eq!((c.vwap(), c.trades()), (Some(b.vw), Some(b.n)));
    }
}

#[test]
fn aggregates_json_is_polygons_shape() {
    let body = gen().aggregates_json(
        "AAPL",
        tf("1m"),
        ms("2024-05-06T13:00:00Z"),
        ms("2024-05-06T13:09:59Z"),
        true,
        50_000,
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "OK");
    assert_eq!(v["ticker"], "AAPL");
    assert_eq!(v["resultsCount"], 10);
    assert_eq!(v["queryCount"], 10);
    assert_eq!(v["adjusted"], true);
    let bar = &v["results"][0];
    for key in ["v", "vw", "o", "c", "h", "l", "t", "n"] {
        assert!(bar.get(key).is_some(), "{key}");
    }
    assert!(v.get("next_url").is_none());
}

/// A digest of bars, to pin the data of tickers outside the market universe.
fn digest(bars: &[SimBar]) -> u64 {
    let words: Vec<u64> = bars
        .iter()
        .flat_map(|b| {
            [
                b.v.to_bits(),
                b.vw.to_bits(),
                b.o.to_bits(),
                b.c.to_bits(),
                b.h.to_bits(),
                b.l.to_bits(),
                b.t as u64,
                b.n,
            ]
        })
        .collect();
    crate::hash::hash(&words)
}

#[test]
fn tickers_outside_the_universe_keep_their_data() {
    let (from, to) = (ms("2024-03-04T00:00:00Z"), ms("2024-03-12T00:00:00Z"));
    let g = gen();
    let sparse = MarketGenerator::new(42, 0.3);
    let digests = [
        digest(&g.bars("AAPL", tf("1m"), from, to, true)),
        digest(&g.bars("AAPL", tf("1m"), from, to, false)),
        digest(&g.bars("SYM000", tf("1d"), ms("2000-01-01T00:00:00Z"), to, false)),
        digest(&g.bars("X:BTCUSD", tf("1m"), from, to, true)),
        digest(&g.bars("MSFT", tf("1s"), from, from + 86_400_000, true)),
        digest(&sparse.bars("NVDA", tf("5m"), from, to, true)),
    ];
    // Recorded before the market universe, holidays and revisions existed; the unadjusted day
    // bars of SYM000 since 2000 (before its split) changed once since, when trade counts
    // stopped changing with splits (they count trades, not shares).
    assert_eq!(
        digests,
        [
            1_564_227_104_500_071_855,
            1_564_227_104_500_071_855,
            2_075_638_524_347_758_227,
            5_807_567_741_397_089_113,
            6_716_010_869_276_144_942,
            12_065_659_795_553_713_600,
        ]
    );
}

fn universe() -> (MarketGenerator, Vec<String>) {
    let tickers = crate::market::tickers(40);
    (gen().with_market(&tickers), tickers)
}

#[test]
fn universe_tickers_trade_in_a_share_of_minutes_given_by_their_liquidity() {
    let (g, tickers) = universe();
    let (from, to) = (ms("2024-05-06T04:00:00Z"), ms("2024-05-11T03:59:59Z"));
    let mut shares = Vec::new();
    for t in &tickers {
        let minutes = g.bars(t, tf("1m"), from, to, false);
        let share = minutes.len() as f64 / (5.0 * 960.0);
        let liquidity = g.liquidity(t);
        assert!(
            (share - liquidity).abs() < 0.05,
            "{t}: {share} vs {liquidity}"
        );
        shares.push(share);
        // Day bars exist every weekday, and their volume is about the minutes' volume.
        let days = g.bars(t, tf("1d"), from, to, false);
        assert_eq!(days.len(), 5, "{t}");
        let minute_volume: f64 = minutes.iter().map(|b| b.v).sum();
        let day_volume: f64 = days.iter().map(|b| b.v).sum();
        let ratio = day_volume / minute_volume;
        assert!((0.6..1.6).contains(&ratio), "{t}: {ratio}");
        for b in minutes.iter().chain(&days) {
            assert!(b.l <= b.o.min(b.c) && b.h >= b.o.max(b.c), "{b:?}");
            assert!(b.v >= 1.0 && b.n >= 1);
        }
    }
    assert!(shares.iter().any(|s| *s < 0.1) && shares.iter().any(|s| *s > 0.3));
    // The universe leaves other tickers alone.
    assert_eq!(
        g.bars("AAPL", tf("1m"), from, to, true),
        gen().bars("AAPL", tf("1m"), from, to, true)
    );
}

#[test]
fn universe_prices_stay_in_range_over_decades_and_move_daily() {
    let (g, tickers) = universe();
    for t in tickers.iter().take(10) {
        let days = g.bars(
            t,
            tf("1d"),
            ms("1990-01-01T00:00:00Z"),
            ms("2030-01-01T00:00:00Z"),
            true,
        );
        assert!(days.len() > 10_000, "{t}");
        assert!(days.iter().all(|b| b.c > 0.5 && b.c < 5_000.0), "{t}");
        let returns: Vec<f64> = days.windows(2).map(|w| (w[1].o / w[0].o).ln()).collect();
        let sd = (returns.iter().map(|r| r * r).sum::<f64>() / returns.len() as f64).sqrt();
        assert!((0.01..0.04).contains(&sd), "{t}: {sd}");
    }
}

#[test]
fn holidays_close_stocks_but_not_crypto() {
    let holiday = NaiveDate::from_ymd_opt(2024, 5, 8).unwrap();
    let g = gen().with_holidays([crate::calendar::day_of_date(holiday)].into());
    let (from, to) = (ms("2024-05-06T04:00:00Z"), ms("2024-05-11T03:59:59Z"));
    let days = g.bars("AAPL", tf("1d"), from, to, true);
    assert_eq!(days.len(), 4);
    assert!(days.iter().all(|b| local(b.t).date_naive() != holiday));
    let minutes = g.bars("AAPL", tf("1m"), from, to, true);
    assert_eq!(minutes.len(), 4 * 960);
    let normal_days = gen().bars("AAPL", tf("1d"), from, to, true);
    assert_eq!(days, [&normal_days[..2], &normal_days[3..]].concat());
    assert_eq!(
        g.bars("X:BTCUSD", tf("1d"), from, to, true),
        gen().bars("X:BTCUSD", tf("1d"), from, to, true)
    );
}

#[test]
fn a_revision_adds_to_every_volume_of_its_day_only() {
    let (g, tickers) = universe();
    let day = crate::calendar::day_of_date(NaiveDate::from_ymd_opt(2024, 5, 7).unwrap());
    let (from, to) = (ms("2024-05-06T04:00:00Z"), ms("2024-05-09T03:59:59Z"));
    for (i, ticker) in ["AAPL", "X:BTCUSD", tickers[0].as_str()]
        .into_iter()
        .enumerate()
    {
        let before = g.bars(ticker, tf("1m"), from, to, false);
        let before_days = g.bars(ticker, tf("1d"), from, to, true);
        assert_eq!(g.revise(day), i as u64 + 1);
        let after = g.bars(ticker, tf("1m"), from, to, false);
        let after_days = g.bars(ticker, tf("1d"), from, to, true);
        assert_eq!(g.revision(day), i as u64 + 1);
        assert_eq!(before.len(), after.len());
        for (b, a) in before
            .iter()
            .zip(&after)
            .chain(before_days.iter().zip(&after_days))
        {
            let revised = crate::calendar::ny_day(b.t) == day;
            let expected = if revised { b.v + 1.0 } else { b.v };
            assert_eq!(a.v, expected, "{ticker} {b:?}");
            assert_eq!((a.o, a.h, a.l, a.c, a.t), (b.o, b.h, b.l, b.c, b.t));
        }
    }
}
