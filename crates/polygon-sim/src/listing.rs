//! The reference data of the market universe: one record per ticker with a deterministic listing
//! history, as `GET /v3/reference/tickers` serves it.
//!
//! Like the tickers themselves, the `i`-th universe ticker's records depend only on `i`:
//!
//! - Every universe ticker trades today. One in three (`i % 3 == 1`) was listed on a weekday
//!   between 2001 and mid-2024, the others long before ([`LONG_LISTED`]).
//! - One in seven (`i % 7 == 2`) is an ETF on ARCX or BATS, the others common stock (`CS`) on XNYS
//!   or XNAS.
//! - One in ten (`i % 10 == 4`) has a second, stale record, as Polygon has served some tickers
//!   twice: the name upper-cased, no `type`, updated years earlier.
//! - One in nine (`i % 9 == 7`, always a recent listing) reuses the ticker of a former company,
//!   delisted before the current one listed.
//!
//! Besides, a fifth as many tickers as the universe has were delisted: the names that follow the
//! universe's in [`market::tickers`](crate::market::tickers), so never one of its tickers (a
//! larger universe reuses them). Half were listed long ago and half in 2000 to 2015; each was
//! delisted between 60 days after its listing and mid-2024. Every event lies before
//! [`LAST_EVENT`], so the records as of today never change.
//!
//! A ticker is active on a day when it was listed on or before it and not delisted on or before
//! it. The history is reference data only: the aggregates, grouped daily and flat files serve
//! every universe ticker on every day, as before.

use chrono::NaiveDate;

use crate::calendar::{date, day_of_date, is_weekend};
use crate::hash::{hash, mix};

/// The listing day of the tickers listed before the simulated history: 1990-01-02.
pub const LONG_LISTED: NaiveDate = ymd(1990, 1, 2);
/// No listing or delisting happens after this day: 2024-12-31.
pub const LAST_EVENT: NaiveDate = ymd(2024, 12, 31);

const fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(d) => d,
        None => panic!("a valid date"),
    }
}

/// One record of the reference tickers endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTicker {
    /// The ticker.
    pub ticker: String,
    /// The company's or fund's name.
    pub name: String,
    /// `CS` or `ETF`; `None` on stale duplicate records.
    pub ticker_type: Option<String>,
    /// The ISO MIC of the primary listing.
    pub primary_exchange: String,
    /// The day it was listed.
    pub listed: NaiveDate,
    /// The day it was delisted (it trades through the day before), if it was.
    pub delisted: Option<NaiveDate>,
    /// The day the record was last updated.
    pub last_updated: NaiveDate,
    /// The SEC's Central Index Key (funds often have none).
    pub cik: Option<String>,
    pub composite_figi: String,
    pub share_class_figi: String,
    /// Orders the records of one ticker: 64 hex digits, as Polygon's `page_marker` carries.
    pub(crate) marker: String,
}

impl SimTicker {
    /// Whether it trades on `date` (`None`: today): listed on or before it and not delisted on
    /// or before it.
    pub fn is_active_on(&self, date: Option<NaiveDate>) -> bool {
        self.is_listed_by(date) && !self.is_delisted_by(date)
    }

    /// Whether it was delisted on or before `date` (`None`: today), having been listed.
    pub fn is_delisted_by(&self, date: Option<NaiveDate>) -> bool {
        self.is_listed_by(date)
            && self
                .delisted
                .is_some_and(|d| date.is_none_or(|date| d <= date))
    }

    fn is_listed_by(&self, date: Option<NaiveDate>) -> bool {
        date.is_none_or(|date| self.listed <= date)
    }
}

/// The records of a universe and of the delisted tickers, sorted by ticker, then marker.
pub(crate) fn records(universe: &[String], delisted: &[String]) -> Vec<SimTicker> {
    let mut out = Vec::with_capacity(universe.len() + delisted.len() + universe.len() / 5);
    for (i, ticker) in universe.iter().enumerate() {
        let i = i as u64;
        let w = hash(&[0x4C49_5354, i]);
        let listed = if i % 3 == 1 {
            weekday_between(w, ymd(2001, 1, 2), ymd(2024, 6, 28))
        } else {
            LONG_LISTED
        };
        let etf = i % 7 == 2;
        let current = record(ticker, w, etf, listed, None, {
            let updated = day_of_date(LAST_EVENT) - (mix(w ^ 3) % 30) as i64;
            date(updated)
        });
        if i % 10 == 4 {
            let back = 400 + (mix(w ^ 4) % 3_000) as i64;
            let updated = date(day_of_date(current.last_updated) - back).max(listed);
            out.push(SimTicker {
                name: current.name.to_ascii_uppercase(),
                ticker_type: None,
                last_updated: updated,
                marker: marker(w ^ 5),
                ..current.clone()
            });
        }
        if i % 9 == 7 {
            let former = mix(w ^ 6);
            let gone = weekday_between(
                former,
                date(day_of_date(listed) - 730),
                date(day_of_date(listed) - 30),
            );
            out.push(SimTicker {
                name: format!("{} Acquisition Corp.", capitalised(ticker)),
                ..record(ticker, former, false, LONG_LISTED, Some(gone), gone)
            });
        }
        out.push(current);
    }
    for (j, ticker) in delisted.iter().enumerate() {
        let j = j as u64;
        let w = hash(&[0x4445_4C53, j]);
        let listed = if j % 2 == 0 {
            LONG_LISTED
        } else {
            weekday_between(w, ymd(2000, 1, 3), ymd(2015, 12, 31))
        };
        let earliest = date(day_of_date(listed.max(ymd(2000, 1, 3))) + 60);
        let gone = weekday_between(mix(w ^ 7), earliest, ymd(2024, 6, 28));
        out.push(record(ticker, w, j % 4 == 3, listed, Some(gone), gone));
    }
    out.sort_unstable_by(|a, b| (&a.ticker, &a.marker).cmp(&(&b.ticker, &b.marker)));
    out
}

/// A record drawn from `w`.
fn record(
    ticker: &str,
    w: u64,
    etf: bool,
    listed: NaiveDate,
    delisted: Option<NaiveDate>,
    last_updated: NaiveDate,
) -> SimTicker {
    let pick = |salt: u64, options: &[&str]| {
        options[(mix(w ^ salt) % options.len() as u64) as usize].to_owned()
    };
    let name = if etf {
        let theme = pick(
            8,
            &[
                "Broad Market",
                "Dividend Growth",
                "Treasury Bond",
                "Gold Trust",
                "Small Cap",
            ],
        );
        format!("{} {theme} ETF", capitalised(ticker))
    } else {
        let suffix = pick(
            9,
            &[
                "Corporation",
                "Inc.",
                "Holdings Inc.",
                "Group Inc.",
                "Technologies Inc.",
                "Bancorp",
            ],
        );
        format!("{} {suffix}", capitalised(ticker))
    };
    let (kind, exchanges) = if etf {
        ("ETF", ["ARCX", "BATS"])
    } else {
        ("CS", ["XNYS", "XNAS"])
    };
    SimTicker {
        ticker: ticker.to_owned(),
        name,
        ticker_type: Some(kind.to_owned()),
        primary_exchange: exchanges[(mix(w ^ 10) % 2) as usize].to_owned(),
        listed,
        delisted,
        last_updated,
        cik: (!etf || mix(w ^ 11) % 2 == 0).then(|| format!("{:010}", mix(w ^ 12) % 2_000_000)),
        composite_figi: figi(mix(w ^ 13)),
        share_class_figi: figi(mix(w ^ 14)),
        marker: marker(w ^ 15),
    }
}

/// A weekday from `from` through `to` (inclusive, at least a week apart), drawn from `w`.
fn weekday_between(w: u64, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let (first, last) = (day_of_date(from), day_of_date(to));
    let span = (last - first + 1).max(1) as u64;
    let day = first + (mix(w ^ 16) % span) as i64;
    let weekday = [0, 1, 2, -1, -2]
        .into_iter()
        .map(|offset| day + offset)
        .find(|d| (first..=last).contains(d) && !is_weekend(*d))
        .unwrap_or(day);
    date(weekday)
}

/// `ABC` as `Abc`.
fn capitalised(ticker: &str) -> String {
    let mut out = String::with_capacity(ticker.len());
    for (i, c) in ticker.chars().enumerate() {
        out.push(if i == 0 { c } else { c.to_ascii_lowercase() });
    }
    out
}

/// A FIGI-shaped identifier: `BBG` and nine consonants or digits.
fn figi(w: u64) -> String {
    const CHARS: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZ";
    let mut out = String::from("BBG");
    let mut x = w;
    for _ in 0..9 {
        out.push(CHARS[(x % CHARS.len() as u64) as usize] as char);
        x = mix(x);
    }
    out
}

/// 64 hex digits, the shape of the hash in Polygon's `page_marker`.
fn marker(w: u64) -> String {
    (0..4u64).map(|k| format!("{:016x}", mix(w ^ k))).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::market;

    fn universe(n: usize) -> Vec<SimTicker> {
        let mut names = market::tickers(n + n.div_ceil(5));
        let delisted = names.split_off(n);
        records(&names, &delisted)
    }

    #[test]
    fn the_history_has_listings_delistings_duplicates_and_reuse() {
        let all = universe(25);
        let names = market::tickers(25);
        // Today: every universe ticker, some twice (stale duplicates); no delisted one.
        let today: Vec<&SimTicker> = all.iter().filter(|r| r.is_active_on(None)).collect();
        let distinct: BTreeSet<&str> = today.iter().map(|r| r.ticker.as_str()).collect();
        assert_eq!(distinct, names.iter().map(String::as_str).collect());
        assert_eq!(
            today.len(),
            25 + 3,
            "indices 4, 14 and 24 have stale records"
        );
        // Delisted by today: the five extra names and the former companies of indices 7 and 16.
        let gone: Vec<&SimTicker> = all.iter().filter(|r| r.is_delisted_by(None)).collect();
        assert_eq!(gone.len(), 5 + 2);
        assert!(gone.iter().all(|r| r.delisted.unwrap() > r.listed));
        for i in [7, 16] {
            let reused: Vec<&SimTicker> = all.iter().filter(|r| r.ticker == names[i]).collect();
            assert_eq!(reused.len(), 2, "{}", names[i]);
            let (old, new) = if reused[0].delisted.is_some() {
                (reused[0], reused[1])
            } else {
                (reused[1], reused[0])
            };
            assert!(old.delisted.unwrap() < new.listed);
        }
        // Every event is a weekday in the past, and records are sorted by ticker, then marker.
        for r in &all {
            for d in [Some(r.listed), r.delisted].into_iter().flatten() {
                assert!(d <= LAST_EVENT && !is_weekend(day_of_date(d)), "{r:?}");
            }
            assert_eq!(r.marker.len(), 64);
            assert_eq!(r.composite_figi.len(), 12);
        }
        assert!(all
            .windows(2)
            .all(|w| (&w[0].ticker, &w[0].marker) < (&w[1].ticker, &w[1].marker)));
        // ETFs and common stock.
        let etfs = all
            .iter()
            .filter(|r| r.ticker_type.as_deref() == Some("ETF"))
            .count();
        assert!(etfs >= 4, "{etfs}");
    }

    #[test]
    fn a_past_day_lists_another_set_and_larger_universes_start_alike() {
        let all = universe(25);
        let on = |d: Option<NaiveDate>| -> BTreeSet<(&str, &str)> {
            all.iter()
                .filter(|r| r.is_active_on(d))
                .map(|r| (r.ticker.as_str(), r.marker.as_str()))
                .collect()
        };
        let (today, past) = (on(None), on(Some(ymd(2005, 1, 3))));
        assert!(!past.is_empty() && past != today);
        assert!(past.iter().any(|r| !today.contains(r)), "delisted since");
        assert!(today.iter().any(|r| !past.contains(r)), "listed since");
        assert!(on(Some(ymd(1989, 12, 29))).is_empty());
        assert_eq!(on(Some(LAST_EVENT)), today);
        let big = universe(200);
        let first: Vec<&SimTicker> = big
            .iter()
            .filter(|r| market::tickers(25).contains(&r.ticker) && r.delisted.is_none())
            .collect();
        let small: Vec<&SimTicker> = all.iter().filter(|r| r.delisted.is_none()).collect();
        assert_eq!(first, small);
    }
}
