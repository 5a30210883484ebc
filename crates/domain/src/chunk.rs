//! Splitting a range into Polygon requests of at most 50,000 base aggregates: what a REST
//! backfill costs, which the client follows when it fetches and planning counts beforehand.

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::America::New_York;

use crate::{DateRange, Symbol, Timeframe, Timespan};

/// Polygon's largest `limit`, in base aggregates.
pub const MAX_BASE_AGGREGATES: i64 = 50_000;

/// When a ticker's base aggregates can exist, which sizes its requests: Polygon's `limit` counts
/// the base aggregates it reads, and a market that is closed has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// Crypto (`X:`), forex (`C:`) and indices (`I:`): any time of any day.
    AroundTheClock,
    /// Stocks and options: weekdays from 04:00 to 20:00 New York time (extended hours
    /// included). Holidays count as trading days, which only makes chunks smaller.
    ExtendedHours,
}

impl Session {
    /// The session of a ticker, from its market prefix.
    pub fn of(symbol: &Symbol) -> Self {
        let ticker = symbol.as_str();
        if ["X:", "C:", "I:"].iter().any(|p| ticker.starts_with(p)) {
            Self::AroundTheClock
        } else {
            Self::ExtendedHours
        }
    }

    /// The earliest time `t` such that the market is open for `open_ms` milliseconds between
    /// `from` and `t`, or `None` when that is after `limit`.
    fn after_open(self, from: i64, open_ms: i64, limit: i64) -> Option<i64> {
        match self {
            Self::AroundTheClock => from.checked_add(open_ms).filter(|t| *t <= limit),
            Self::ExtendedHours => {
                let mut remaining = open_ms;
                let mut day = chrono::DateTime::from_timestamp_millis(from)?
                    .with_timezone(&New_York)
                    .date_naive();
                loop {
                    let (open, close) = (ny_ms(day, 4)?, ny_ms(day, 20)?);
                    if open > limit {
                        return None;
                    }
                    if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                        let open = open.max(from);
                        if close > open {
                            if remaining <= close - open {
                                return Some(open + remaining).filter(|t| *t <= limit);
                            }
                            remaining -= close - open;
                        }
                    }
                    day = day.succ_opt()?;
                }
            }
        }
    }
}

/// `hour`:00 New York time on `day`, in epoch milliseconds (04:00 and 20:00 always exist: clocks
/// change at 02:00).
fn ny_ms(day: NaiveDate, hour: u32) -> Option<i64> {
    let local = day.and_time(NaiveTime::from_hms_opt(hour, 0, 0)?);
    Some(
        New_York
            .from_local_datetime(&local)
            .earliest()?
            .timestamp_millis(),
    )
}

/// Each chunk spans at most 50,000 base aggregates of the ticker's `session`, counted from the
/// start of the bar that contains the chunk's start (Polygon snaps `from` down to a bar start).
/// For second, minute and hour bars the chunk bounds after the first are bar starts, so no bar
/// straddles two chunks. Day and longer bars are built from day bars, so a chunk spans 50,000
/// days (137 years): one chunk in practice.
///
/// This is the chunk of `range` that starts at `from` (the range's start, or the instant after
/// the end of the chunk before), or `None` when `from` lies outside the range.
pub fn chunk_at(
    range: &DateRange,
    timeframe: Timeframe,
    session: Session,
    from: i64,
) -> Option<DateRange> {
    if from < range.from_ms() || from > range.to_ms() {
        return None;
    }
    let end = chunk_end(from, range.to_ms(), timeframe, session);
    DateRange::from_millis(from, end.saturating_sub(1).min(range.to_ms())).ok()
}

/// Every chunk of `range`, in order.
fn chunks(
    range: &DateRange,
    timeframe: Timeframe,
    session: Session,
) -> impl Iterator<Item = DateRange> + '_ {
    std::iter::successors(
        chunk_at(range, timeframe, session, range.from_ms()),
        move |c| chunk_at(range, timeframe, session, c.to_ms().checked_add(1)?),
    )
}

/// How many chunks (requests, when Polygon splits off no page) `range` takes.
pub fn requests_needed(range: &DateRange, timeframe: Timeframe, session: Session) -> u32 {
    chunks(range, timeframe, session)
        .count()
        .try_into()
        .unwrap_or(u32::MAX)
}

/// The exclusive end of the chunk that starts at `start`.
fn chunk_end(start: i64, to: i64, timeframe: Timeframe, session: Session) -> i64 {
    let base = timeframe.base().duration().num_milliseconds().max(1);
    let budget = MAX_BASE_AGGREGATES.saturating_mul(base);
    match (timeframe.timespan(), timeframe.duration()) {
        (Timespan::Second | Timespan::Minute | Timespan::Hour, Some(bar)) => {
            let bar = bar.num_milliseconds().max(1);
            let snapped = start - start.rem_euclid(bar);
            match session.after_open(snapped, budget, to) {
                None => to.saturating_add(1),
                Some(t) => snapped.saturating_add(((t - snapped) / bar).max(1) * bar),
            }
        }
        _ => start.saturating_add(budget),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_chunks(range: &DateRange, tf: Timeframe, session: Session) -> Vec<DateRange> {
        chunks(range, tf, session).collect()
    }

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn chunks_cover_the_range_exactly_within_the_limit() {
        let ranges = [
            DateRange::from_millis(1_600_000_012_345, 1_700_000_000_000).unwrap(),
            DateRange::from_millis(0, 0).unwrap(),
            DateRange::from_millis(1_000, 100_000_000).unwrap(),
        ];
        for range in ranges {
            for tf in [
                "1s", "30s", "1m", "5m", "1h", "4h", "1000h", "1d", "1w", "1mo", "1y",
            ] {
                let tf = Timeframe::parse(tf).unwrap();
                let all = all_chunks(&range, tf, Session::AroundTheClock);
                assert!(!all.is_empty());
                assert_eq!(all[0].from(), range.from());
                assert_eq!(all[all.len() - 1].to(), range.to());
                for w in all.windows(2) {
                    assert_eq!(w[0].to_ms() + 1, w[1].from_ms(), "{tf}");
                }
                let base = tf.base().duration().num_milliseconds();
                let bar = tf.duration().map_or(0, |d| d.num_milliseconds());
                for c in &all {
                    let snapped = match tf.timespan() {
                        Timespan::Second | Timespan::Minute | Timespan::Hour => {
                            c.from_ms() - c.from_ms().rem_euclid(bar)
                        }
                        _ => c.from_ms(),
                    };
                    let span = c.to_ms() - snapped + 1;
                    assert!(
                        span <= (MAX_BASE_AGGREGATES * base).max(bar),
                        "{tf}: {span} ms"
                    );
                }
            }
        }
    }

    #[test]
    fn minute_chunks_are_50_000_minutes_and_aligned() {
        let range = DateRange::from_millis(1_600_000_012_345, 1_610_000_000_000).unwrap();
        let tf = Timeframe::parse("5m").unwrap();
        let all = all_chunks(&range, tf, Session::AroundTheClock);
        assert_eq!(all[1].len_ms(), 50_000 * 60_000);
        assert_eq!(all[1].from_ms() % 300_000, 0);
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn exactly_the_minimum_round_the_clock() {
        // 100,000 minutes from a minute start: two requests of 50,000.
        let from = ms("2024-01-01T00:00:00Z");
        let range = DateRange::from_millis(from, from + 100_000 * 60_000 - 1).unwrap();
        let tf = Timeframe::parse("1m").unwrap();
        assert_eq!(requests_needed(&range, tf, Session::AroundTheClock), 2);
        let range = DateRange::from_millis(from, from + 100_000 * 60_000).unwrap();
        assert_eq!(requests_needed(&range, tf, Session::AroundTheClock), 3);
    }

    /// Minutes in `[from, to]` when stocks trade, counted one by one.
    fn open_minutes(from: i64, to: i64) -> i64 {
        (from / 60_000..=to / 60_000)
            .filter(|m| {
                let t = chrono::DateTime::from_timestamp_millis(m * 60_000)
                    .unwrap()
                    .with_timezone(&New_York);
                !matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
                    && (4..20).contains(&chrono::Timelike::hour(&t))
            })
            .count() as i64
    }

    #[test]
    fn stock_chunks_hold_50_000_trading_minutes_across_dst() {
        // 2024-02-01 to 2024-05-31 New York time: the March DST change inside.
        let range =
            DateRange::from_millis(ms("2024-02-01T05:00:00Z"), ms("2024-06-01T03:59:59.999Z"))
                .unwrap();
        for tf in ["1m", "5m", "1h"] {
            let tf = Timeframe::parse(tf).unwrap();
            let all = all_chunks(&range, tf, Session::ExtendedHours);
            assert_eq!(all[0].from(), range.from());
            assert_eq!(all[all.len() - 1].to(), range.to());
            for w in all.windows(2) {
                assert_eq!(w[0].to_ms() + 1, w[1].from_ms());
            }
            let total = open_minutes(range.from_ms(), range.to_ms());
            assert_eq!(total, 87 * 960, "weekdays x 16 hours");
            for c in &all[..all.len() - 1] {
                let open = open_minutes(c.from_ms(), c.to_ms());
                assert!(open <= 50_000, "{tf}: {open}");
                assert!(open > 50_000 - 60, "{tf}: {open} minutes wastes a request");
            }
            assert_eq!(all.len() as i64, (total + 49_999) / 50_000, "{tf}");
        }
    }

    #[test]
    fn a_stock_year_of_minutes_takes_six_requests_not_eleven() {
        let range =
            DateRange::from_millis(ms("2024-01-01T05:00:00Z"), ms("2025-01-01T04:59:59.999Z"))
                .unwrap();
        let tf = Timeframe::parse("1m").unwrap();
        // 262 weekdays x 960 minutes = 251,520 base aggregates.
        assert_eq!(requests_needed(&range, tf, Session::ExtendedHours), 6);
        assert_eq!(requests_needed(&range, tf, Session::AroundTheClock), 11);
    }

    #[test]
    fn sessions_by_prefix() {
        for (t, s) in [
            ("AAPL", Session::ExtendedHours),
            ("O:SPY251219C00650000", Session::ExtendedHours),
            ("X:BTCUSD", Session::AroundTheClock),
            ("C:EURUSD", Session::AroundTheClock),
            ("I:SPX", Session::AroundTheClock),
        ] {
            assert_eq!(Session::of(&Symbol::parse(t).unwrap()), s, "{t}");
        }
    }
}
