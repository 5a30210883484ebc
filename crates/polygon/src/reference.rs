//! Reference data: the US stock tickers Polygon lists (`GET /v3/reference/tickers`), active,
//! delisted or both, today or as of a past day, for refreshing universes of symbols.
//!
//! Polygon's list needs two kinds of care before it becomes symbols:
//!
//! - **Tickers that are not [`Symbol`]s are skipped and reported, not fatal.** A record without a
//!   ticker, or with one that [`Symbol::parse`] rejects, lands in [`TickerListing::skipped`].
//!   So does a ticker with lower-case letters: Polygon's tickers are case-sensitive (`AMpB` is
//!   AM's preferred class B, not the stock `AMPB`; polygon-io/issues#36), and a [`Symbol`] is
//!   upper-cased, so keeping one would name another security.
//! - **Duplicates are merged.** Polygon has listed one ticker twice, the records differing in
//!   `last_updated_utc`, the case of the name or the CIK (polygon-io/issues#145, #165, #310;
//!   client-python#637). One record is kept per symbol: an active one over a delisted one (with
//!   [`Listing::Both`], a reused ticker is listed as its current company), then the one updated
//!   last, then the first received; [`TickerListing::duplicates`] counts the others.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use backfill_domain::Symbol;
use chrono::{DateTime, NaiveDate, Utc};

use crate::Result;

/// Polygon's largest page of tickers (`limit`).
pub const MAX_TICKERS_PAGE: u32 = 1_000;

/// Which tickers to list, by trading status on the day asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    /// Tickers that trade (`active=true`, Polygon's default).
    Active,
    /// Tickers delisted by then (`active=false`).
    Delisted,
    /// Both: two listings, merged.
    Both,
}

impl Listing {
    /// The `active=` values to list, in order.
    pub(crate) fn active_flags(self) -> &'static [bool] {
        match self {
            Self::Active => &[true],
            Self::Delisted => &[false],
            Self::Both => &[true, false],
        }
    }
}

/// What to list: US stock tickers (`market=stocks`) of a status, sorted by ticker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TickersRequest {
    /// Active, delisted or both.
    pub listing: Listing,
    /// The tickers as of this day (`date=YYYY-MM-DD`); `None` for today.
    pub date: Option<NaiveDate>,
    /// Only this type (`type=`): `CS` for common stock, `ETF`, `ADRC`, `PFD`, ... as Polygon
    /// names them; `None` for every type.
    pub ticker_type: Option<String>,
    /// Tickers per request (`limit`), clamped to 1..=[`MAX_TICKERS_PAGE`]. Polygon's maximum
    /// (the default) takes the fewest requests.
    pub page_size: u32,
}

impl TickersRequest {
    /// Today's tickers of `listing`, of every type, in pages of [`MAX_TICKERS_PAGE`].
    pub fn new(listing: Listing) -> Self {
        Self {
            listing,
            date: None,
            ticker_type: None,
            page_size: MAX_TICKERS_PAGE,
        }
    }
}

/// One ticker of Polygon's reference data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ticker {
    /// The ticker, exactly as Polygon spells it.
    pub symbol: Symbol,
    /// The company's or the fund's name (empty when Polygon gave none).
    pub name: String,
    /// Polygon's type code (`CS`, `ETF`, ...), when given.
    pub ticker_type: Option<String>,
    /// The ISO MIC of the primary listing (`XNYS`, `XNAS`, `ARCX`, ...), when given.
    pub primary_exchange: Option<String>,
    /// Whether it trades on the day asked.
    pub active: bool,
    /// When it was delisted, for a delisted ticker.
    pub delisted_utc: Option<DateTime<Utc>>,
    /// When Polygon last updated the record.
    pub last_updated_utc: Option<DateTime<Utc>>,
    /// The SEC's Central Index Key of the company, when given.
    pub cik: Option<String>,
    /// The OpenFIGI composite identifier, when given.
    pub composite_figi: Option<String>,
}

/// A record whose ticker cannot be a [`Symbol`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkippedTicker {
    /// The ticker as Polygon sent it (empty when it sent none), cut to 64 characters.
    pub ticker: String,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why a record's ticker cannot be a [`Symbol`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The record has no ticker, or an empty one.
    Missing,
    /// The ticker has lower-case letters: it is case-sensitive at Polygon, and the upper-cased
    /// [`Symbol`] would name another security.
    CaseSensitive,
    /// [`Symbol::parse`] rejects it; the message says why.
    NotASymbol(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("the record has no ticker"),
            Self::CaseSensitive => f.write_str(
                "the ticker has lower-case letters, and upper-casing it would name another security",
            ),
            Self::NotASymbol(message) => f.write_str(message),
        }
    }
}

/// Every ticker a [`TickersRequest`] selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickerListing {
    /// One record per symbol, sorted by symbol.
    pub tickers: Vec<Ticker>,
    /// Records whose ticker cannot be a symbol, once per ticker, in the order received.
    pub skipped: Vec<SkippedTicker>,
    /// Records dropped because another record of the same symbol was kept.
    pub duplicates: u64,
    /// Pages fetched.
    pub pages: u32,
    /// HTTP requests made, retries included.
    pub requests: u32,
}

/// A source of reference data.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReferenceData: Send + Sync {
    /// Lists every ticker `request` selects, following every page, with duplicates merged and
    /// tickers that are not symbols skipped (see the module notes).
    ///
    /// Every request is rate limited and retried as [`MarketData::fetch_page`]'s are; an error
    /// (the first permanent one, or a transient one that outlasted the retries, or
    /// [`Error::CursorLoop`] when a page brings nothing new) fails the whole listing, since a
    /// partial list of symbols would look complete.
    ///
    /// [`MarketData::fetch_page`]: crate::MarketData::fetch_page
    /// [`Error::CursorLoop`]: crate::Error::CursorLoop
    async fn list_tickers(&self, request: &TickersRequest) -> Result<TickerListing>;
}

/// Collects the records of one or more listings into a [`TickerListing`].
#[derive(Debug, Default)]
pub(crate) struct Merge {
    kept: HashMap<Symbol, Ticker>,
    skipped: Vec<SkippedTicker>,
    duplicates: u64,
}

impl Merge {
    /// Adds a record; a second record of a symbol replaces the first only if it is preferred.
    pub(crate) fn add(&mut self, ticker: Ticker) {
        match self.kept.get_mut(&ticker.symbol) {
            None => {
                self.kept.insert(ticker.symbol.clone(), ticker);
            }
            Some(kept) => {
                self.duplicates += 1;
                if preferred(&ticker, kept) {
                    *kept = ticker;
                }
            }
        }
    }

    /// Adds a skipped record, unless its ticker was skipped before.
    pub(crate) fn skip(&mut self, skipped: SkippedTicker) {
        if !self.skipped.iter().any(|s| s.ticker == skipped.ticker) {
            self.skipped.push(skipped);
        }
    }

    /// The listing, sorted by symbol.
    pub(crate) fn finish(self, pages: u32, requests: u32) -> TickerListing {
        let mut tickers: Vec<Ticker> = self.kept.into_values().collect();
        tickers.sort_unstable_by(|a, b| a.symbol.as_str().cmp(b.symbol.as_str()));
        TickerListing {
            tickers,
            skipped: self.skipped,
            duplicates: self.duplicates,
            pages,
            requests,
        }
    }
}

/// Whether `new` should replace `kept`: active first, then updated later; ties keep `kept`.
fn preferred(new: &Ticker, kept: &Ticker) -> bool {
    (new.active, new.last_updated_utc) > (kept.active, kept.last_updated_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticker(symbol: &str, name: &str, active: bool, updated: Option<&str>) -> Ticker {
        Ticker {
            symbol: Symbol::parse(symbol).unwrap(),
            name: name.to_owned(),
            ticker_type: Some("CS".to_owned()),
            primary_exchange: Some("XNYS".to_owned()),
            active,
            delisted_utc: None,
            last_updated_utc: updated.map(|u| u.parse().unwrap()),
            cik: None,
            composite_figi: None,
        }
    }

    #[test]
    fn merging_keeps_the_active_then_the_latest_then_the_first_record_of_a_symbol() {
        let mut merge = Merge::default();
        merge.add(ticker(
            "PG",
            "Procter & Gamble Company",
            true,
            Some("2021-05-10T00:00:00Z"),
        ));
        merge.add(ticker(
            "PG",
            "Procter & Gamble",
            true,
            Some("2019-04-25T00:00:00Z"),
        ));
        merge.add(ticker(
            "CASY",
            "CASEYS GENERAL STORES INC",
            true,
            Some("2011-05-10T00:00:00Z"),
        ));
        merge.add(ticker(
            "CASY",
            "Casey's General Stores Inc",
            true,
            Some("2021-10-07T00:00:00Z"),
        ));
        merge.add(ticker(
            "ABC",
            "Reused ticker, new company",
            true,
            Some("2020-01-01T00:00:00Z"),
        ));
        merge.add(ticker(
            "ABC",
            "Old company",
            false,
            Some("2023-01-01T00:00:00Z"),
        ));
        merge.add(ticker("TIE", "First", true, None));
        merge.add(ticker("TIE", "Second", true, None));
        let listing = merge.finish(3, 4);
        let names: Vec<(&str, &str)> = listing
            .tickers
            .iter()
            .map(|t| (t.symbol.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("ABC", "Reused ticker, new company"),
                ("CASY", "Casey's General Stores Inc"),
                ("PG", "Procter & Gamble Company"),
                ("TIE", "First"),
            ]
        );
        assert_eq!(listing.duplicates, 4);
        assert_eq!((listing.pages, listing.requests), (3, 4));
    }

    #[test]
    fn a_skipped_ticker_is_reported_once() {
        let mut merge = Merge::default();
        for _ in 0..2 {
            merge.skip(SkippedTicker {
                ticker: "AMpB".to_owned(),
                reason: SkipReason::CaseSensitive,
            });
        }
        merge.skip(SkippedTicker {
            ticker: String::new(),
            reason: SkipReason::Missing,
        });
        let listing = merge.finish(1, 1);
        assert_eq!(listing.skipped.len(), 2);
        assert!(listing.tickers.is_empty());
        assert_eq!(listing.duplicates, 0);
        assert!(listing.skipped[0].reason.to_string().contains("lower-case"));
    }

    #[test]
    fn listings_ask_for_active_delisted_or_both() {
        assert_eq!(Listing::Active.active_flags(), [true]);
        assert_eq!(Listing::Delisted.active_flags(), [false]);
        assert_eq!(Listing::Both.active_flags(), [true, false]);
        let request = TickersRequest::new(Listing::Both);
        assert_eq!(request.page_size, MAX_TICKERS_PAGE);
        assert_eq!((request.date, request.ticker_type), (None, None));
    }
}
