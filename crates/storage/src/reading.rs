//! Reads built on [`CandleStore`] alone, the same for every backend: a series read to its end
//! page by page, a stored series resampled to a coarser timeframe page by page, and a series'
//! quality report. All stream the series in pages, so memory stays bounded whatever its length.

use backfill_domain::{
    Candle, DateRange, Hours, QualityCheck, QualityReport, RangeBound, Resampler, Symbol,
    Timeframe, Timespan,
};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::traits::CandleStore;
use crate::types::{CandlePage, CandleQuery};

/// A page of a stored series read as a coarser timeframe.
#[derive(Debug, Clone, PartialEq)]
pub struct ResampleQuery {
    pub symbol: Symbol,
    /// The stored series' timeframe.
    pub source: Timeframe,
    /// The timeframe to build.
    pub target: Timeframe,
    pub hours: Hours,
    pub adjusted: bool,
    /// Built bars whose start lies in this range; source bars outside it are not read.
    pub range: DateRange,
    /// At most this many built bars, 1 to [`CandleQuery::MAX_LIMIT`].
    pub limit: u32,
    /// Only bars strictly after this start: the `next_cursor` of the previous page.
    pub after: Option<DateTime<Utc>>,
}

/// One page of `query`: built bars oldest first, and the cursor of the next page.
///
/// # Errors
/// [`Error::InvalidInput`] for a resampling that cannot be done (see
/// [`Resampler::new`]) or a limit out of bounds; storage errors.
pub async fn resampled(store: &dyn CandleStore, query: &ResampleQuery) -> Result<CandlePage> {
    if !(1..=CandleQuery::MAX_LIMIT).contains(&query.limit) {
        return Err(Error::InvalidInput(format!(
            "limit must be between 1 and {}, got {}",
            CandleQuery::MAX_LIMIT,
            query.limit
        )));
    }
    let mut resampler = Resampler::new(query.source, query.target, query.hours)
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
    let limit = query.limit as usize;
    let mut built: Vec<Candle> = Vec::with_capacity(limit.min(4_096) + 1);
    let mut after = query.after;
    'pages: loop {
        let page = store
            .candles(&CandleQuery {
                symbol: query.symbol.clone(),
                timeframe: query.source,
                adjusted: query.adjusted,
                range: query.range,
                limit: CandleQuery::MAX_LIMIT,
                after,
            })
            .await?;
        for c in &page.candles {
            // The source bars of the last bar handed out were read by the previous page.
            if query.after.is_some_and(|a| resampler.bucket(c.ts()) <= a) {
                continue;
            }
            if let Some(bar) = resampler.push(c).map_err(Error::from)? {
                built.push(bar);
                // One more than asked proves that there is a next page.
                if built.len() > limit {
                    break 'pages;
                }
            }
        }
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => {
                built.extend(resampler.finish().map_err(Error::from)?);
                break;
            }
        }
    }
    let next_cursor = (built.len() > limit).then(|| {
        built.truncate(limit);
        built.last().map(Candle::ts)
    });
    Ok(CandlePage {
        candles: built,
        next_cursor: next_cursor.flatten(),
    })
}

/// What a [`SeriesPages`] reads: a stored series, or a stored series resampled.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesRead {
    Stored(CandleQuery),
    Resampled(ResampleQuery),
}

/// A series read from its query's `after` to its end, a page of the query's `limit` at a
/// time: what an export streams.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPages {
    read: SeriesRead,
    done: bool,
}

impl SeriesRead {
    /// The page the query asks for.
    ///
    /// # Errors
    /// Those of [`CandleStore::candles`] and [`resampled`].
    pub async fn page(&self, store: &dyn CandleStore) -> Result<CandlePage> {
        match self {
            Self::Stored(q) => store.candles(q).await,
            Self::Resampled(q) => resampled(store, q).await,
        }
    }
}

impl SeriesPages {
    pub fn new(read: SeriesRead) -> Self {
        Self { read, done: false }
    }

    /// The next page of candles, oldest first; `None` once the last page was read.
    ///
    /// # Errors
    /// Those of [`CandleStore::candles`] and [`resampled`].
    pub async fn next(&mut self, store: &dyn CandleStore) -> Result<Option<Vec<Candle>>> {
        if self.done {
            return Ok(None);
        }
        let page = self.read.page(store).await?;
        match (page.next_cursor, &mut self.read) {
            (None, _) => self.done = true,
            (Some(c), SeriesRead::Stored(q)) => q.after = Some(c),
            (Some(c), SeriesRead::Resampled(q)) => q.after = Some(c),
        }
        Ok(Some(page.candles))
    }
}

/// What a quality report covers.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityQuery {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    pub adjusted: bool,
    pub range: DateRange,
}

/// The quality report of a stored series over a range (see [`QualityCheck`]): its coverage,
/// its bars read page by page, and for a minute series the day bars of the same symbol and
/// adjustment to compare with, when they are stored.
///
/// # Errors
/// Storage errors.
pub async fn quality(
    store: &dyn CandleStore,
    query: &QualityQuery,
    now: DateTime<Utc>,
) -> Result<QualityReport> {
    let coverage = store
        .coverage(&query.symbol, query.timeframe, query.adjusted)
        .await?;
    let mut check = QualityCheck::new(
        query.symbol.clone(),
        query.timeframe,
        query.adjusted,
        query.range,
        &coverage,
        now,
    );
    let minutes =
        query.timeframe.timespan() == Timespan::Minute && query.timeframe.multiplier() == 1;
    if minutes {
        let day = Timeframe::new(1, Timespan::Day)?;
        // A day bar starts at New York midnight, before the range's first minute.
        let range = DateRange::new(
            RangeBound::Date(query.range.from_ny_date()),
            RangeBound::Instant(query.range.to()),
        )?;
        let mut day_bars = Vec::new();
        let mut pages = SeriesPages::new(SeriesRead::Stored(CandleQuery {
            symbol: query.symbol.clone(),
            timeframe: day,
            adjusted: query.adjusted,
            range,
            limit: CandleQuery::MAX_LIMIT,
            after: None,
        }));
        while let Some(page) = pages.next(store).await? {
            day_bars.extend(page);
        }
        if !day_bars.is_empty() {
            check = check.with_day_bars(day_bars);
        }
    }
    let mut pages = SeriesPages::new(SeriesRead::Stored(CandleQuery {
        symbol: query.symbol.clone(),
        timeframe: query.timeframe,
        adjusted: query.adjusted,
        range: query.range,
        limit: CandleQuery::MAX_LIMIT,
        after: None,
    }));
    while let Some(page) = pages.next(store).await? {
        for c in &page {
            check.push(c);
        }
    }
    Ok(check.finish())
}
