//! Polygon (Massive) Flat Files: one gzipped CSV per trading day holding every US stock
//! ticker's minute or day bars, raw prices, no vwap, in an S3-compatible bucket.

use async_trait::async_trait;
use backfill_domain::{Candle, Timeframe, Timespan};
use chrono::{Datelike, NaiveDate};
use futures::stream::BoxStream;

use crate::Result;

/// A Flat Files dataset of US stocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// `us_stocks_sip/minute_aggs_v1`: every ticker's one-minute bars of a day (extended hours
    /// included).
    MinuteAggs,
    /// `us_stocks_sip/day_aggs_v1`: every ticker's day bar.
    DayAggs,
}

impl Dataset {
    /// The dataset that holds bars of `timeframe`: 1m or 1d; none for any other.
    pub fn for_timeframe(timeframe: Timeframe) -> Option<Self> {
        match (timeframe.multiplier(), timeframe.timespan()) {
            (1, Timespan::Minute) => Some(Self::MinuteAggs),
            (1, Timespan::Day) => Some(Self::DayAggs),
            _ => None,
        }
    }

    /// The timeframe of the dataset's bars.
    pub fn timeframe(self) -> Timeframe {
        let timespan = match self {
            Self::MinuteAggs => Timespan::Minute,
            Self::DayAggs => Timespan::Day,
        };
        Timeframe::new(1, timespan).unwrap_or_else(|_| unreachable!("1 is a valid multiplier"))
    }

    /// The key prefix of the dataset's files in the bucket.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::MinuteAggs => "us_stocks_sip/minute_aggs_v1",
            Self::DayAggs => "us_stocks_sip/day_aggs_v1",
        }
    }

    /// The key of the file of `day`: `{prefix}/YYYY/MM/YYYY-MM-DD.csv.gz`.
    pub fn key(self, day: NaiveDate) -> String {
        format!(
            "{}/{:04}/{:02}/{day}.csv.gz",
            self.prefix(),
            day.year(),
            day.month()
        )
    }
}

/// One day's file as the bucket lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFile {
    pub dataset: Dataset,
    pub day: NaiveDate,
    pub key: String,
    /// The ETag the bucket gives the file's current content (a replaced file gets another).
    pub etag: String,
    /// Its size in bytes (compressed).
    pub size: u64,
}

/// A page of a day file's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePage {
    /// Candles of any tickers, in file order (by ticker, then time), raw prices, no vwap.
    pub candles: Vec<Candle>,
    /// Data rows of the file read so far, this page's included (skipped and dropped rows count;
    /// the header and empty lines do not). Passing it as `skip_rows` resumes right after this
    /// page; the last page's is the file's row count.
    pub rows_done: u64,
    /// How far into the file (compressed bytes handed to the inflater) those rows reach: an upper
    /// bound, since the inflater reads ahead; the last page's is the file's size.
    pub offset: u64,
    /// Bytes downloaded for this page (a restarted download counts again).
    pub bytes: u64,
    /// Requests made for this page (GETs, retries included).
    pub requests: u32,
    /// Rows dropped: malformed, or values that make no candle.
    pub dropped: u64,
}

/// The pages of a day file, in order; the stream ends after the last page or the first error.
pub type FilePages = BoxStream<'static, Result<FilePage>>;

/// Flat Files: the source of whole-market days.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait FlatFiles: Send + Sync {
    /// The file of `day` in `dataset`, or `None` when there is none: a weekend, a market
    /// holiday, or a day not published yet (files appear the next morning).
    ///
    /// # Errors
    /// Transient failures are retried within the client's budget first; refused credentials
    /// are permanent ([`crate::Error::is_permanent`]).
    async fn day_file(&self, dataset: Dataset, day: NaiveDate) -> Result<Option<DayFile>>;

    /// The rows of `file` after its first `skip_rows`, as pages of candles, downloaded and
    /// decoded as a stream (never the whole file in memory). A download cut short is resumed
    /// within the client's retry budget. There is always at least one page (an empty one when
    /// no row is left after the skipped ones); malformed rows are counted in
    /// [`FilePage::dropped`], never an error.
    ///
    /// # Errors
    /// The call fails, or the stream yields an error as its last item, when the file cannot be
    /// read: changed or removed since `file` was looked up ([`crate::Error::FileChanged`]: look
    /// it up again and read the new content from row 0), refused credentials, not gzip or
    /// without the expected header ([`crate::Error::Decode`]), or out of retries (transient:
    /// the rows of the pages already yielded stay valid, so a later call can pass the last
    /// page's `rows_done` as `skip_rows`).
    async fn pages(&self, file: &DayFile, skip_rows: u64) -> Result<FilePages>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_bucket_layout() {
        let day: NaiveDate = "2024-03-05".parse().unwrap();
        assert_eq!(
            Dataset::MinuteAggs.key(day),
            "us_stocks_sip/minute_aggs_v1/2024/03/2024-03-05.csv.gz"
        );
        assert_eq!(
            Dataset::DayAggs.key(day),
            "us_stocks_sip/day_aggs_v1/2024/03/2024-03-05.csv.gz"
        );
        let tf = |s: &str| Timeframe::parse(s).unwrap();
        assert_eq!(Dataset::for_timeframe(tf("1m")), Some(Dataset::MinuteAggs));
        assert_eq!(Dataset::for_timeframe(tf("1d")), Some(Dataset::DayAggs));
        assert_eq!(Dataset::for_timeframe(tf("5m")), None);
        assert_eq!(Dataset::DayAggs.timeframe(), tf("1d"));
    }
}
