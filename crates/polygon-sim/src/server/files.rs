//! The simulator's flat files: which exist, their content (cached) and the candles they hold.

use std::sync::Arc;

use backfill_domain::{Candle, Ohlcv, Symbol};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::America::New_York;

use super::Simulator;
use crate::calendar::day_of_date;
use crate::flatfile::{self, Dataset, FileId, FlatFile, Meta};

impl Simulator {
    /// The last day with flat files: [`SimConfig::published_through`](crate::SimConfig::published_through)
    /// or, by default, yesterday in New York at the time of the call.
    pub fn published_through(&self) -> NaiveDate {
        self.shared.config.published_through.unwrap_or_else(|| {
            let today = Utc::now().with_timezone(&New_York).date_naive();
            today.pred_opt().unwrap_or(today)
        })
    }

    /// The file that the bucket serves for a dataset and date, generating it unless it is
    /// cached: `None` on weekends and holidays and outside the published dates. Generating a
    /// minute file of a large universe takes a while; call this off the async runtime.
    pub fn flat_file(&self, dataset: Dataset, date: NaiveDate) -> Option<FlatFile> {
        let day = day_of_date(date);
        self.is_published(day)
            .then(|| self.file(self.file_id(dataset, day)).as_ref().clone())
    }

    /// Exactly the candles that the file of a dataset and date holds (or would hold once
    /// published), in the file's order: each universe ticker's unadjusted `1m` or `1d` bars of
    /// that New York day, with trades and without vwap (the files have no vwap column). Empty on
    /// weekends and holidays.
    pub fn flat_file_rows(&self, dataset: Dataset, date: NaiveDate) -> Vec<Candle> {
        let day = day_of_date(date);
        let timeframe = dataset.timeframe();
        let mut bars = Vec::new();
        let mut out = Vec::new();
        for ticker in &self.shared.listed {
            let Ok(symbol) = Symbol::parse(ticker) else {
                continue;
            };
            bars.clear();
            self.shared
                .generator
                .day_bars(ticker, dataset.base(), day, false, &mut bars);
            out.extend(bars.iter().filter_map(|bar| {
                let ts = DateTime::from_timestamp_millis(bar.t)?;
                let values = Ohlcv {
                    open: bar.o,
                    high: bar.h,
                    low: bar.l,
                    close: bar.c,
                    volume: bar.v,
                    vwap: None,
                    trades: Some(bar.n),
                };
                Candle::new(symbol.clone(), timeframe, ts, values).ok()
            }));
        }
        out
    }

    /// Whether the bucket has files for a day: a trading day within the published dates.
    pub(crate) fn is_published(&self, day: i64) -> bool {
        let first = day_of_date(self.shared.config.flat_files_from);
        let last = day_of_date(self.published_through());
        (first..=last).contains(&day) && self.shared.generator.is_trading_day(day)
    }

    /// The first and last day with files (inclusive), which may be an empty range.
    pub(crate) fn published_days(&self) -> (i64, i64) {
        (
            day_of_date(self.shared.config.flat_files_from),
            day_of_date(self.published_through()),
        )
    }

    /// The current content of a dataset's file for a day.
    pub(crate) fn file_id(&self, dataset: Dataset, day: i64) -> FileId {
        FileId {
            dataset,
            day,
            revision: self.shared.generator.revision(day),
        }
    }

    /// A file's bytes, generated unless cached (counted in the stats when generated).
    pub(crate) fn file(&self, id: FileId) -> Arc<FlatFile> {
        let (file, generated) = self.shared.files.get_or_make(id, || {
            flatfile::generate(
                &self.shared.generator,
                &self.shared.listed,
                id,
                self.last_modified(id.day),
            )
        });
        if generated {
            self.lock().stats.flat_files_generated += 1;
        }
        file
    }

    /// The size and ETag of files, generating (in parallel) those never generated before.
    pub(crate) fn file_metas(&self, ids: &[FileId]) -> Vec<Meta> {
        let mut metas: Vec<Option<Meta>> =
            ids.iter().map(|id| self.shared.files.meta(*id)).collect();
        let missing: Vec<usize> = (0..ids.len()).filter(|i| metas[*i].is_none()).collect();
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(missing.len());
        if workers > 0 {
            let next = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(|| loop {
                        let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&index) = missing.get(at) else {
                            break;
                        };
                        self.file(ids[index]);
                    });
                }
            });
        }
        for (meta, id) in metas.iter_mut().zip(ids) {
            if meta.is_none() {
                *meta = self.shared.files.meta(*id);
            }
        }
        metas
            .into_iter()
            .zip(ids)
            .map(|(meta, id)| meta.unwrap_or_else(|| self.file(*id).meta()))
            .collect()
    }

    /// When a day's files got their current content: the morning after the day, or when the
    /// day was last revised if that is later.
    pub(crate) fn last_modified(&self, day: i64) -> DateTime<Utc> {
        let published = flatfile::published_at(day);
        let revised = self.lock().revised_at.get(&day).copied();
        revised.map_or(published, |r| r.max(published))
    }
}
