//! Deterministic market data: a seeded random walk that can be sampled anywhere.
//!
//! Each ticker has a daily walk of log prices (one value per New York day from 1970 to 2099,
//! computed once and cached) and, inside each day, an intraday walk that starts at the day's open.
//! Every random number is a hash of (seed, ticker, day, bar), so generating a day costs the same
//! wherever it lies and the candles of a range never depend on what was asked before.
//!
//! Tickers of the market universe (see the `market` module) differ in three ways, so that a
//! universe of thousands stays cheap: their daily levels come from a Brownian bridge that can be
//! sampled at any day without a cached walk (pinned every 512 days, so prices stay in range);
//! only a share of their minutes (and seconds), their liquidity, has a bar; and their day volume
//! is scaled by that liquidity, so that it stays close to the sum of their minute volumes as for
//! every other ticker. Holidays (no bars for tickers other than crypto) and revisions (a day's
//! volumes plus its revision number) apply to every ticker.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, RwLock};

use backfill_domain::{BaseAggregate, Candle, DateRange, Symbol, Timeframe};

use crate::bar::SimBar;
use crate::calendar::{
    is_weekend, ny_day, ny_hour_ms, ny_midnight_ms, Bucketing, END_DAY, FIRST_DAY,
};
use crate::hash::{fnv, hash, mix, normal, unit, unit_pair};

/// A bar together with the number of base aggregates it was built from (what `limit` counts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub(crate) bar: SimBar,
    pub(crate) base_count: u64,
}

/// The bars of one page and what is needed to continue.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PageResult {
    pub(crate) bars: Vec<SimBar>,
    /// Base aggregates used (Polygon's `queryCount`).
    pub(crate) query_count: u64,
    /// Ascending: the start of the first bar not served. Descending: the start of the last bar
    /// served (the next page ends one millisecond before it).
    pub(crate) next: Option<i64>,
}

/// The deterministic candle source. Cheap to clone; clones share the cache of daily walks and
/// the revisions of days.
#[derive(Clone)]
pub struct MarketGenerator {
    seed: u64,
    missing_bar_probability: f64,
    daily: Arc<Mutex<HashMap<String, Arc<[f64]>>>>,
    /// The liquidity of each ticker of the market universe.
    market: Arc<HashMap<String, f64>>,
    /// Days (numbers) on which tickers other than crypto do not trade, besides weekends.
    holidays: Arc<BTreeSet<i64>>,
    /// The revision of each revised day (numbers); days not here are at revision 0.
    revisions: Arc<RwLock<HashMap<i64, u64>>>,
    /// Splits added after the start ([`MarketGenerator::add_split`]), per ticker: the day
    /// (number) and the ratio.
    added_splits: Arc<RwLock<AddedSplits>>,
}

/// Splits added per ticker: (day number, ratio).
type AddedSplits = HashMap<String, Vec<(i64, f64)>>;

/// A split of the simulated data: `split_from` shares became `split_to` on a New York day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimSplit {
    /// The day (number) of the execution date.
    pub(crate) day: i64,
    pub split_from: f64,
    pub split_to: f64,
}

impl SimSplit {
    /// The first day on the new basis.
    pub fn execution_date(&self) -> chrono::NaiveDate {
        crate::calendar::date(self.day)
    }
}

impl fmt::Debug for MarketGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarketGenerator")
            .field("seed", &self.seed)
            .field("missing_bar_probability", &self.missing_bar_probability)
            .field("market", &self.market.len())
            .field("holidays", &self.holidays.len())
            .finish_non_exhaustive()
    }
}

/// What the walk of one ticker needs, derived from the seed and the ticker.
struct Profile {
    key: u64,
    crypto: bool,
    split_day: i64,
    split_ratio: f64,
    /// Splits added later (day, ratio): they change the adjusted bars before them.
    added_splits: Vec<(i64, f64)>,
    daily_volume: f64,
    sigma_daily: f64,
    daily: Daily,
    /// The share of base bars that exist, for tickers of the market universe.
    liquidity: Option<f64>,
}

/// Where the daily levels of a ticker come from.
enum Daily {
    /// A cached walk, one log price per day.
    Walk(Arc<[f64]>),
    /// A Brownian bridge around this log price, sampled on demand (universe tickers).
    Bridge { anchor: f64 },
}

impl Profile {
    /// The log of the opening price of a day (`0..=END_DAY`).
    fn log_open(&self, day: i64) -> f64 {
        match &self.daily {
            Daily::Walk(walk) => walk[day as usize],
            Daily::Bridge { anchor } => bridge(self.key, *anchor, self.sigma_daily, day),
        }
    }
}

/// The length of a bridge segment, in days: a power of two.
const BRIDGE_DAYS: i64 = 512;

/// A Brownian bridge with daily deviation `sigma`, pinned every [`BRIDGE_DAYS`] days to a level
/// near `anchor`, at `day`: the midpoint of each dyadic interval is drawn from the hash of its
/// day, so any day costs nine draws and no state.
fn bridge(key: u64, anchor: f64, sigma: f64, day: i64) -> f64 {
    let pin = |segment: i64| {
        let s = segment as u64;
        anchor + 0.25 * normal(hash(&[key, 40, s]), hash(&[key, 41, s]))
    };
    let segment = day.div_euclid(BRIDGE_DAYS);
    let (mut lo, mut hi) = (segment * BRIDGE_DAYS, (segment + 1) * BRIDGE_DAYS);
    let (mut at_lo, mut at_hi) = (pin(segment), pin(segment + 1));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let m = mid as u64;
        let z = normal(hash(&[key, 42, m]), hash(&[key, 43, m]));
        let level = 0.5 * (at_lo + at_hi) + 0.5 * sigma * ((hi - lo) as f64).sqrt() * z;
        if day < mid {
            (hi, at_hi) = (mid, level);
        } else {
            (lo, at_lo) = (mid, level);
        }
    }
    if day == lo {
        at_lo
    } else {
        at_hi
    }
}

const SPLIT_FIRST_DAY: i64 = 12_784; // 2005-01-01

impl MarketGenerator {
    /// A generator for a seed. `missing_bar_probability` (0 to 1) drops that share of base bars,
    /// as real data has minutes without trades.
    pub fn new(seed: u64, missing_bar_probability: f64) -> Self {
        Self {
            seed,
            missing_bar_probability: missing_bar_probability.clamp(0.0, 1.0),
            daily: Arc::default(),
            market: Arc::default(),
            holidays: Arc::default(),
            revisions: Arc::default(),
            added_splits: Arc::default(),
        }
    }

    /// Adds a split of `ticker` on a day (number), as when a company splits after data was
    /// fetched: from then on, the adjusted bars before that day have their prices divided by
    /// `split_to / split_from` and their volumes multiplied by it; unadjusted bars (what
    /// traded) stay as they were.
    pub(crate) fn add_split(&self, ticker: &str, day: i64, split_from: f64, split_to: f64) {
        let mut added = match self.added_splits.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        added
            .entry(ticker.to_owned())
            .or_default()
            .push((day, split_to / split_from));
    }

    /// The splits of `ticker`, oldest first: the simulated one of every stock (none for
    /// crypto), then those added since.
    pub fn splits(&self, ticker: &str) -> Vec<SimSplit> {
        let p = self.profile(ticker);
        let mut splits = Vec::new();
        if !p.crypto {
            splits.push(SimSplit {
                day: p.split_day,
                split_from: 1.0,
                split_to: p.split_ratio,
            });
        }
        splits.extend(self.added(ticker).into_iter().map(|(day, ratio)| {
            let (split_from, split_to) = if ratio >= 1.0 {
                (1.0, ratio)
            } else {
                (1.0 / ratio, 1.0)
            };
            SimSplit {
                day,
                split_from,
                split_to,
            }
        }));
        splits.sort_by_key(|s| s.day);
        splits
    }

    /// The tickers that splits were added to.
    pub(crate) fn tickers_with_added_splits(&self) -> Vec<String> {
        let added = match self.added_splits.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        added.keys().cloned().collect()
    }

    fn added(&self, ticker: &str) -> Vec<(i64, f64)> {
        let added = match self.added_splits.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        added.get(ticker).cloned().unwrap_or_default()
    }

    /// The deterministic key of a ticker's data.
    pub(crate) fn key(&self, ticker: &str) -> u64 {
        hash(&[self.seed, fnv(ticker.as_bytes())])
    }

    /// The same generator with these tickers as the market universe.
    pub(crate) fn with_market(mut self, tickers: &[String]) -> Self {
        let market = tickers
            .iter()
            .map(|t| (t.clone(), crate::market::liquidity(self.seed, t)))
            .collect();
        self.market = Arc::new(market);
        self
    }

    /// The same generator with these days (numbers) as holidays.
    pub(crate) fn with_holidays(mut self, days: BTreeSet<i64>) -> Self {
        self.holidays = Arc::new(days);
        self
    }

    /// The share of minutes in which `ticker` trades: its liquidity if it belongs to the market
    /// universe, 1 otherwise (before any missing-bar probability).
    pub fn liquidity(&self, ticker: &str) -> f64 {
        self.market.get(ticker).copied().unwrap_or(1.0)
    }

    /// Whether tickers other than crypto trade on a day (a weekday that is not a holiday).
    pub(crate) fn is_trading_day(&self, day: i64) -> bool {
        !is_weekend(day) && !self.holidays.contains(&day)
    }

    /// The revision of a day: 0 until [`MarketGenerator::revise`] bumps it.
    pub(crate) fn revision(&self, day: i64) -> u64 {
        let revisions = match self.revisions.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        revisions.get(&day).copied().unwrap_or(0)
    }

    /// Bumps the revision of a day, which adds the revision number to the volume of every bar
    /// of that day, and returns the new revision.
    pub(crate) fn revise(&self, day: i64) -> u64 {
        let mut revisions = match self.revisions.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let revision = revisions.entry(day).or_insert(0);
        *revision += 1;
        *revision
    }

    /// Appends the base bars (minute, second or day) of `ticker` on one New York day: exactly
    /// the bars that the timeframe `1` of that base serves for the day.
    pub(crate) fn day_bars(
        &self,
        ticker: &str,
        base: BaseAggregate,
        day: i64,
        adjusted: bool,
        out: &mut Vec<SimBar>,
    ) {
        if (FIRST_DAY..END_DAY).contains(&day) {
            let profile = self.profile(ticker);
            self.base_bars(&profile, base, day, adjusted, out);
        }
    }

    /// The bars of `ticker` that start within `[from_ms, to_ms]`, oldest first. Each bar is built
    /// from all of its base aggregates, including those after `to_ms`.
    pub fn bars(
        &self,
        ticker: &str,
        timeframe: Timeframe,
        from_ms: i64,
        to_ms: i64,
        adjusted: bool,
    ) -> Vec<SimBar> {
        let mut out = Vec::new();
        self.for_each_bucket(ticker, timeframe, from_ms, to_ms, adjusted, |b| {
            if b.bar.t >= from_ms {
                out.push(b.bar);
            }
            ControlFlow::Continue(())
        });
        out
    }

    /// The candles of `symbol` that start within `range`, oldest first: exactly what a complete
    /// backfill of that range returns.
    pub fn candles(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        range: &DateRange,
        adjusted: bool,
    ) -> Vec<Candle> {
        self.bars(
            symbol.as_str(),
            timeframe,
            range.from_ms(),
            range.to_ms(),
            adjusted,
        )
        .iter()
        .filter_map(|b| b.to_candle(symbol, timeframe))
        .collect()
    }

    /// A complete `OK` aggregates response body for the bars of a range, as the server renders it
    /// (no `next_url`, at most `limit` base aggregates). Benchmarks use it.
    pub fn aggregates_json(
        &self,
        ticker: &str,
        timeframe: Timeframe,
        from_ms: i64,
        to_ms: i64,
        adjusted: bool,
        limit: u64,
    ) -> Vec<u8> {
        let page = self.page(ticker, timeframe, from_ms, to_ms, adjusted, false, limit);
        crate::render::ok_body(
            ticker,
            adjusted,
            "OK",
            "0",
            crate::render::Results::Bars(&page.bars),
            page.query_count,
            None,
        )
    }

    /// One page of bars, as Polygon pages them: `from` snaps down to the start of its bucket, a
    /// bucket that starts at or before `to` is included whole, and a page holds whole buckets
    /// whose base aggregates add up to at most `limit` (but always at least one bucket).
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the request's parameters"
    )]
    pub(crate) fn page(
        &self,
        ticker: &str,
        timeframe: Timeframe,
        from_ms: i64,
        to_ms: i64,
        adjusted: bool,
        descending: bool,
        limit: u64,
    ) -> PageResult {
        let limit = limit.max(1);
        let mut bars = Vec::new();
        let mut used = 0;
        let mut next = None;
        if descending {
            let mut window = std::collections::VecDeque::new();
            let mut dropped = false;
            self.for_each_bucket(ticker, timeframe, from_ms, to_ms, adjusted, |b| {
                used += b.base_count;
                window.push_back(b);
                while used > limit && window.len() > 1 {
                    if let Some(old) = window.pop_front() {
                        used -= old.base_count;
                        dropped = true;
                    }
                }
                ControlFlow::Continue(())
            });
            if dropped {
                next = window.front().map(|b| b.bar.t);
            }
            bars.extend(window.iter().rev().map(|b| b.bar));
        } else {
            self.for_each_bucket(ticker, timeframe, from_ms, to_ms, adjusted, |b| {
                if !bars.is_empty() && used + b.base_count > limit {
                    next = Some(b.bar.t);
                    return ControlFlow::Break(());
                }
                used += b.base_count;
                bars.push(b.bar);
                ControlFlow::Continue(())
            });
        }
        PageResult {
            bars,
            query_count: used,
            next,
        }
    }

    /// Calls `f` with every bucket that starts between the start of the bucket containing
    /// `from_ms` and `to_ms`, in order, until it breaks.
    fn for_each_bucket(
        &self,
        ticker: &str,
        timeframe: Timeframe,
        from_ms: i64,
        to_ms: i64,
        adjusted: bool,
        mut f: impl FnMut(Bucket) -> ControlFlow<()>,
    ) {
        if from_ms > to_ms {
            return;
        }
        let bucketing = Bucketing::of(timeframe);
        let first = bucketing.start(from_ms);
        let base_end = bucketing.next(bucketing.start(to_ms)) - 1;
        let first_day = (ny_day(first)).max(FIRST_DAY);
        let last_day = ny_day(base_end).min(END_DAY - 1);
        if first_day > last_day {
            return;
        }
        let profile = self.profile(ticker);
        let base = timeframe.base();
        let mut day_bars = Vec::new();
        let mut acc: Option<Accumulator> = None;
        for day in first_day..=last_day {
            day_bars.clear();
            self.base_bars(&profile, base, day, adjusted, &mut day_bars);
            for bar in &day_bars {
                if bar.t < first || bar.t > base_end {
                    continue;
                }
                let key = match bucketing {
                    Bucketing::Fixed { len_ms } => bar.t - bar.t.rem_euclid(len_ms),
                    _ => bucketing.start(bar.t),
                };
                match acc.as_mut() {
                    Some(a) if a.start == key => a.add(bar),
                    _ => {
                        if let Some(done) = acc.take() {
                            if f(done.finish()).is_break() {
                                return;
                            }
                        }
                        acc = Some(Accumulator::new(key, bar));
                    }
                }
            }
        }
        if let Some(done) = acc {
            let _ = f(done.finish());
        }
    }

    fn profile(&self, ticker: &str) -> Profile {
        let key = self.key(ticker);
        let crypto = ticker.starts_with("X:");
        let sigma_daily = if crypto { 0.035 } else { 0.02 };
        let liquidity = self.market.get(ticker).copied();
        let daily = match liquidity {
            Some(_) => Daily::Bridge {
                anchor: 5f64.ln() + (500f64.ln() - 5f64.ln()) * unit(mix(key ^ 1)),
            },
            None => Daily::Walk(self.daily_walk(ticker, key, sigma_daily)),
        };
        let daily_volume = if crypto {
            100.0 * (1.0 + 99.0 * unit(mix(key ^ 3)))
        } else {
            1e6 * (1.0 + 49.0 * unit(mix(key ^ 3)))
        };
        Profile {
            key,
            crypto,
            split_day: SPLIT_FIRST_DAY + (mix(key ^ 4) % 6_500) as i64,
            split_ratio: (2 + mix(key ^ 5) % 3) as f64,
            added_splits: self.added(ticker),
            daily_volume,
            sigma_daily,
            daily,
            liquidity,
        }
    }

    /// The log of each day's opening price, from day 0 to `END_DAY` inclusive, cached per ticker.
    fn daily_walk(&self, ticker: &str, key: u64, sigma: f64) -> Arc<[f64]> {
        let mut cache = match self.daily.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(walk) = cache.get(ticker) {
            return Arc::clone(walk);
        }
        let (lo, hi) = if ticker.starts_with("X:") {
            (50f64.ln(), 50_000f64.ln())
        } else {
            (5f64.ln(), 500f64.ln())
        };
        let anchor = lo + (hi - lo) * unit(mix(key ^ 1));
        let mut walk = Vec::with_capacity((END_DAY + 1) as usize);
        let mut level = anchor;
        for day in 0..=END_DAY {
            walk.push(level);
            let z = normal(hash(&[key, 2, day as u64]), mix(key ^ day as u64));
            level += 0.002 * (anchor - level) + sigma * z;
        }
        let walk: Arc<[f64]> = walk.into();
        cache.insert(ticker.to_owned(), Arc::clone(&walk));
        walk
    }

    /// Appends the base bars of one New York day.
    fn base_bars(
        &self,
        p: &Profile,
        base: BaseAggregate,
        day: i64,
        adjusted: bool,
        out: &mut Vec<SimBar>,
    ) {
        if !p.crypto && !self.is_trading_day(day) {
            return;
        }
        let factor = if adjusted {
            // Splits added later divide the adjusted prices before them.
            let later: f64 = p
                .added_splits
                .iter()
                .filter(|(d, _)| day < *d)
                .map(|(_, ratio)| ratio)
                .product();
            1.0 / later
        } else if !p.crypto && day < p.split_day {
            p.split_ratio
        } else {
            1.0
        };
        let revision = self.revision(day);
        let open = p.log_open(day).exp();
        match base {
            BaseAggregate::Day => {
                let close = p.log_open(day + 1).exp();
                let w = hash(&[p.key, 10, day as u64]);
                if unit(mix(w)) < self.missing_bar_probability {
                    return;
                }
                let (u1, u2) = unit_pair(mix(w ^ 1));
                let high = open.max(close) * (1.0 + 0.015 * u1);
                let low = open.min(close) * (1.0 - 0.015 * u2);
                let volume = p.daily_volume * (0.5 + unit(mix(w ^ 2))) * p.liquidity.unwrap_or(1.0);
                out.push(self.bar(
                    p,
                    ny_midnight_ms(day),
                    [open, high, low, close],
                    volume,
                    factor,
                    revision,
                ));
            }
            BaseAggregate::Minute | BaseAggregate::Second => {
                let (start, end) = if p.crypto {
                    (ny_midnight_ms(day), ny_midnight_ms(day + 1))
                } else {
                    (ny_hour_ms(day, 4), ny_hour_ms(day, 20))
                };
                let step = base.duration().num_milliseconds();
                let nominal = if p.crypto { 86_400_000 } else { 57_600_000 } / step;
                let sigma = p.sigma_daily / (nominal as f64).sqrt();
                let bar_volume = p.daily_volume / nominal as f64;
                let tag = if base == BaseAggregate::Minute {
                    20
                } else {
                    30
                };
                let day_key = hash(&[p.key, tag, day as u64]);
                let mut price = open;
                let mut t = start;
                let mut i = 0u64;
                out.reserve(((end - start) / step) as usize);
                while t < end {
                    let w = mix(day_key ^ i);
                    let w2 = mix(w);
                    let close = price * (sigma * normal(w, w2)).exp();
                    let traded = p.liquidity.is_none_or(|l| unit(mix(w2 ^ 0xAA)) < l);
                    if traded && unit(mix(w2 ^ 0x55)) >= self.missing_bar_probability {
                        let (u1, u2) = unit_pair(mix(w2));
                        let high = price.max(close) * (1.0 + 0.5 * sigma * u1);
                        let low = price.min(close) * (1.0 - 0.5 * sigma * u2);
                        let volume = bar_volume * (0.2 + 1.6 * unit(w));
                        let ohlc = [price, high, low, close];
                        out.push(self.bar(p, t, ohlc, volume, factor, revision));
                    }
                    price = close;
                    t += step;
                    i += 1;
                }
            }
        }
    }

    /// Rounds raw values the way a feed would publish them, applies the split factor and adds
    /// the day's revision to the volume.
    fn bar(
        &self,
        p: &Profile,
        t: i64,
        ohlc: [f64; 4],
        volume: f64,
        factor: f64,
        revision: u64,
    ) -> SimBar {
        let [o, h, l, c] = ohlc.map(|x| round_to(x * factor, 1e4));
        let v = if p.crypto {
            round_to(volume, 1e6).max(1e-6)
        } else {
            (volume / factor).round().max(1.0)
        } + revision as f64;
        let vw = round_to((h + l + c) / 3.0, 1e4);
        // Trades do not change with splits: counted from the volume as first published.
        let n = if p.crypto {
            (v * 40.0).round() as u64 + 1
        } else {
            ((volume.round().max(1.0) + revision as f64) / 120.0).round() as u64 + 1
        };
        SimBar {
            v,
            vw,
            o,
            c,
            h,
            l,
            t,
            n,
        }
    }
}

fn round_to(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

/// Builds one bucket's bar from its base bars.
struct Accumulator {
    start: i64,
    first: SimBar,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    price_volume: f64,
    trades: u64,
    count: u64,
}

impl Accumulator {
    fn new(start: i64, bar: &SimBar) -> Self {
        Self {
            start,
            first: *bar,
            high: bar.h,
            low: bar.l,
            close: bar.c,
            volume: bar.v,
            price_volume: bar.vw * bar.v,
            trades: bar.n,
            count: 1,
        }
    }

    fn add(&mut self, bar: &SimBar) {
        self.high = self.high.max(bar.h);
        self.low = self.low.min(bar.l);
        self.close = bar.c;
        self.volume += bar.v;
        self.price_volume += bar.vw * bar.v;
        self.trades += bar.n;
        self.count += 1;
    }

    fn finish(self) -> Bucket {
        let bar = if self.count == 1 && self.first.t == self.start {
            self.first
        } else {
            let vw = if self.volume > 0.0 {
                round_to(self.price_volume / self.volume, 1e4)
            } else {
                self.close
            };
            SimBar {
                v: self.volume,
                vw,
                o: self.first.o,
                c: self.close,
                h: self.high,
                l: self.low,
                t: self.start,
                n: self.trades,
            }
        };
        Bucket {
            bar,
            base_count: self.count,
        }
    }
}

#[cfg(test)]
mod tests;
