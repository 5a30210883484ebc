//! Deterministic cash dividends: a share of the stock tickers pays one every quarter from 2010
//! through 2025, on the first weekday from the 15th of February, May, August and November, an
//! amount fixed per ticker (splits come from the generator: see
//! [`MarketGenerator::splits`](crate::MarketGenerator::splits)).

use chrono::{Datelike, NaiveDate, TimeDelta};

use crate::calendar::{date, day_of_date, is_weekend};
use crate::hash::{mix, unit};
use crate::MarketGenerator;

/// The first and last years with dividends.
const YEARS: std::ops::RangeInclusive<i32> = 2010..=2025;

/// One cash dividend of a simulated ticker.
#[derive(Debug, Clone, PartialEq)]
pub struct SimDividend {
    pub ticker: String,
    pub cash_amount: f64,
    pub declaration_date: NaiveDate,
    pub ex_dividend_date: NaiveDate,
    pub record_date: NaiveDate,
    pub pay_date: NaiveDate,
}

/// The dividends of `ticker`, oldest first: none for crypto and for two tickers in five.
pub(crate) fn dividends(generator: &MarketGenerator, ticker: &str) -> Vec<SimDividend> {
    let key = generator.key(ticker);
    if ticker.starts_with("X:") || mix(key ^ 6) % 5 < 2 {
        return Vec::new();
    }
    let cash_amount = ((0.05 + 0.95 * unit(mix(key ^ 7))) * 100.0).round() / 100.0;
    let mut out = Vec::new();
    for year in YEARS {
        for month in [2, 5, 8, 11] {
            let Some(fifteenth) = NaiveDate::from_ymd_opt(year, month, 15) else {
                continue;
            };
            let mut day = day_of_date(fifteenth);
            while is_weekend(day) {
                day += 1;
            }
            let ex = date(day);
            out.push(SimDividend {
                ticker: ticker.to_owned(),
                cash_amount,
                declaration_date: ex - TimeDelta::days(30),
                ex_dividend_date: ex,
                record_date: ex + TimeDelta::days(1),
                pay_date: ex + TimeDelta::days(14),
            });
        }
    }
    debug_assert!(out
        .iter()
        .all(|d| d.ex_dividend_date.weekday().number_from_monday() <= 5));
    out
}
