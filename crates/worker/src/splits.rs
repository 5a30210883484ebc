//! The split watch: keeps stored split-adjusted series right as schedules keep them current.
//!
//! A schedule's `missing` runs fetch only recent days, so after a split the older bars of an
//! adjusted series stay on the old basis: the series is stale. When schedules that keep
//! adjusted series fire, the watch lists the splits executed since the oldest recorded fetch of
//! any adjusted series (one listing of the whole market, a few requests), stores them, and
//! creates for each stale series of the schedules' symbols the `full` job that fetches it again
//! (one per series and split, whichever process finds it: the job's idempotency key says so).

use std::collections::BTreeSet;
use std::sync::Arc;

use backfill_domain::{
    new_york_date, refetch_key, refetch_spec, JobId, SeriesFreshness, Split, Symbol, Tickers,
    Timeframe,
};
use backfill_polygon::ActionData;
use backfill_storage::{ScheduleRun, Storage};
use chrono::{DateTime, TimeDelta, Utc};
use tracing::{info, warn};

/// Jobs created by the split watch to fetch a stale adjusted series again.
pub const SPLIT_REFETCHES_TOTAL: &str = "backfill_split_refetches_total";

/// The symbols whose adjusted series a check keeps right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchScope {
    /// Every symbol (a schedule of the whole market).
    All,
    /// These symbols.
    Symbols(BTreeSet<Symbol>),
}

impl WatchScope {
    fn holds(&self, symbol: &Symbol) -> bool {
        match self {
            Self::All => true,
            Self::Symbols(set) => set.contains(symbol),
        }
    }

    pub(crate) fn widen(&mut self, other: WatchScope) {
        match (&mut *self, other) {
            (Self::All, _) => {}
            (_, Self::All) => *self = Self::All,
            (Self::Symbols(mine), Self::Symbols(theirs)) => mine.extend(theirs),
        }
    }
}

/// A job the watch made (or found made) for a stale series.
#[derive(Debug, Clone, PartialEq)]
pub struct Refetch {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    /// The split that made the series stale.
    pub split: Split,
    pub job_id: JobId,
    /// `false`: another process (or an earlier check) had made it already.
    pub created: bool,
}

/// What one check did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SplitCheck {
    /// Splits listed upstream in the window.
    pub listed: usize,
    /// Of them, new or changed in storage.
    pub stored: u64,
    /// One per stale series of the scope.
    pub refetches: Vec<Refetch>,
}

/// Lists new splits and fetches again the adjusted series they made stale.
#[derive(Clone)]
pub struct SplitWatch {
    source: Arc<dyn ActionData>,
    storage: Arc<dyn Storage>,
}

impl std::fmt::Debug for SplitWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitWatch").finish_non_exhaustive()
    }
}

impl SplitWatch {
    /// A watch that lists splits from `source` and keeps `storage`'s adjusted series.
    pub fn new(source: Arc<dyn ActionData>, storage: Arc<dyn Storage>) -> Self {
        Self { source, storage }
    }

    /// What the fired `runs` ask the watch to keep right: the symbols of the runs that made
    /// jobs of split-adjusted series, with the latest end of their ranges; `None` when no run
    /// keeps adjusted series.
    ///
    /// # Errors
    /// Storage errors reading the schedules or their universes.
    pub async fn scope_of(
        &self,
        runs: &[ScheduleRun],
    ) -> crate::Result<Option<(WatchScope, DateTime<Utc>)>> {
        let mut scope: Option<WatchScope> = None;
        let mut until = None;
        for run in runs.iter().filter(|r| !r.job_ids.is_empty()) {
            let schedule = match self.storage.get_schedule(&run.schedule).await {
                Ok(schedule) => schedule,
                // Deleted since it fired: its jobs stand, nothing to keep.
                Err(backfill_storage::Error::NotFound { .. }) => continue,
                Err(err) => return Err(err.into()),
            };
            let spec = &schedule.spec;
            if !spec.adjusted() {
                continue;
            }
            let symbols = match spec.tickers() {
                Tickers::All => WatchScope::All,
                Tickers::Symbols(list) => WatchScope::Symbols(list.iter().cloned().collect()),
                Tickers::Universe(name) => match self.storage.get_universe(name).await {
                    Ok(universe) => WatchScope::Symbols(universe.symbols.into_iter().collect()),
                    Err(backfill_storage::Error::NotFound { .. }) => continue,
                    Err(err) => return Err(err.into()),
                },
            };
            match &mut scope {
                Some(scope) => scope.widen(symbols),
                None => scope = Some(symbols),
            }
            let end = spec.run_range(run.due_at).map_or(run.due_at, |r| r.to());
            until = Some(until.map_or(end, |u: DateTime<Utc>| u.max(end)));
        }
        Ok(scope.zip(until))
    }

    /// Lists the splits executed after the oldest recorded fetch of an adjusted series and by
    /// `now`'s New York day, stores them, and for each stale adjusted series of a symbol in
    /// `scope` creates (once) the `full` job that fetches it again, reaching to `until` at
    /// least (the end of the runs that asked).
    ///
    /// # Errors
    /// The splits could not be listed upstream (nothing is stored then), or storage failed.
    /// A series whose job cannot be made is logged and skipped.
    pub async fn check(
        &self,
        scope: &WatchScope,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> crate::Result<SplitCheck> {
        let Some(oldest) = self.storage.oldest_adjusted_fetch().await? else {
            return Ok(SplitCheck::default());
        };
        // A split on the fetch's own day was reflected by it (see `stale_split`).
        let from = new_york_date(oldest) + TimeDelta::days(1);
        let today = new_york_date(now);
        if from > today {
            return Ok(SplitCheck::default());
        }
        let listing = self
            .source
            .list_splits_between(from, today)
            .await
            .map_err(crate::Error::Actions)?;
        let stored = self.storage.upsert_splits(&listing.records).await?;
        let symbols: BTreeSet<&Symbol> = listing
            .records
            .iter()
            .map(|s| &s.ticker)
            .filter(|s| scope.holds(s))
            .collect();
        let mut refetches = Vec::new();
        for symbol in symbols {
            refetches.extend(self.refetch_stale(symbol, until, today).await?);
        }
        info!(
            %from, to = %today, listed = listing.records.len(), stored,
            refetches = refetches.len(), requests = listing.requests,
            "split watch checked"
        );
        Ok(SplitCheck {
            listed: listing.records.len(),
            stored,
            refetches,
        })
    }

    /// Creates the job of each stale adjusted series of `symbol`.
    async fn refetch_stale(
        &self,
        symbol: &Symbol,
        until: DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> crate::Result<Vec<Refetch>> {
        let splits = self.storage.splits(symbol).await?;
        let mut made = Vec::new();
        for series in self.storage.adjusted_series(symbol).await? {
            let freshness =
                SeriesFreshness::judge(series.timeframe, series.fetched_at, &splits, today);
            let Some(split) = freshness.stale_since else {
                continue;
            };
            let covered = self
                .storage
                .coverage(symbol, series.timeframe, true)
                .await?;
            let spec = match refetch_spec(symbol, series.timeframe, &covered, Some(until)) {
                Ok(Some(spec)) => spec,
                Ok(None) => continue,
                Err(err) => {
                    warn!(%symbol, timeframe = %series.timeframe, error = %err,
                        "split watch: the series' refetch job cannot be made");
                    continue;
                }
            };
            let key = refetch_key(series.timeframe, &split);
            let (job_id, created) = match self.storage.create_job(&spec, Some(&key)).await {
                Ok(job) => (job.job.id, job.created),
                // The key holds a job over an older range: that job is the refetch.
                Err(backfill_storage::Error::Conflict(message)) => {
                    info!(%symbol, timeframe = %series.timeframe, %message,
                        "split watch: a refetch job exists already");
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            if created {
                metrics::counter!(SPLIT_REFETCHES_TOTAL).increment(1);
                info!(
                    %symbol, timeframe = %series.timeframe, split = %split.execution_date,
                    %job_id, range = %spec.range(),
                    "split watch: a stale adjusted series is fetched again"
                );
            }
            made.push(Refetch {
                symbol: symbol.clone(),
                timeframe: series.timeframe,
                split,
                job_id,
                created,
            });
        }
        Ok(made)
    }
}
