//! One day task of a bulk source: every ticker's bars of one trading day, from the grouped
//! daily endpoint (one request) or a Flat Files file (one download, streamed), stored page by
//! page with `ingest_rows` under the task's lease.

use std::collections::HashSet;

use backfill_domain::{
    BackfillJob, BackfillMode, Candle, DateRange, Source, Symbol, Task, Universe,
};
use backfill_polygon::{Dataset, DayFile, FilePages};
use backfill_storage::{DayCompletion, DayProgress, DaySeries, Fetched, Lease, SourceFile};
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use tracing::{debug, info};

use crate::outcome::{report_page, Outcome};
use crate::running::{Ctx, Running, StopReason};

/// Fetches and stores a day task's rows; returns how it ended.
pub(crate) async fn fetch_and_store(
    ctx: &Ctx,
    lease: &Lease,
    task: &Task,
    day: NaiveDate,
    job: &BackfillJob,
    running: &Running,
    fetch_started: DateTime<Utc>,
) -> Outcome {
    let spec = &job.spec;
    let day_range = DateRange::ny_day(day);
    // The part of the day the job covers, and not after fetching began (bars may still come).
    let covered = day_range
        .intersect(&spec.range())
        .and_then(|r| DateRange::from_instants(r.from(), r.to().min(fetch_started)).ok());
    let day = Day {
        ctx,
        lease,
        job,
        running,
        wanted: match spec.universe() {
            Universe::Symbols => Some(spec.symbols().iter().cloned().collect()),
            Universe::All => None,
        },
        range: spec.range(),
    };
    match spec.source() {
        Source::Grouped => day.grouped(task, covered, day_range).await,
        Source::FlatFiles => day.flat_file(task, covered, day_range).await,
        Source::Rest => Outcome::Storage(backfill_storage::Error::InvalidInput(format!(
            "task {} is a day task of a job of the rest source",
            task.id
        ))),
    }
}

/// What every step of a day task needs.
struct Day<'a> {
    ctx: &'a Ctx,
    lease: &'a Lease,
    job: &'a BackfillJob,
    running: &'a Running,
    /// The listed symbols; `None` keeps every ticker.
    wanted: Option<HashSet<Symbol>>,
    /// The job's range: edge days keep only the rows inside it.
    range: DateRange,
}

impl Day<'_> {
    /// Which series the day covers once stored.
    fn series(&self) -> DaySeries {
        match self.job.spec.universe() {
            Universe::Symbols => DaySeries::Listed(self.job.spec.symbols().to_vec()),
            Universe::All => DaySeries::Stored,
        }
    }

    /// The candles to store: inside the job's range, of a listed symbol (when listed).
    fn keep(&self, mut candles: Vec<Candle>) -> Vec<Candle> {
        candles.retain(|c| {
            self.range.contains(c.ts())
                && self
                    .wanted
                    .as_ref()
                    .is_none_or(|wanted| wanted.contains(c.symbol()))
        });
        candles
    }

    /// Stores one page; returns whether to go on.
    async fn store(
        &self,
        unit_day: NaiveDate,
        candles: Vec<Candle>,
        received: u64,
        progress: DayProgress,
    ) -> Result<(), Outcome> {
        let stored = match self
            .ctx
            .deps
            .candles
            .ingest_rows(self.lease, &candles, progress)
            .await
        {
            Ok(o) => o,
            Err(backfill_storage::Error::LeaseLost { .. }) => {
                return Err(Outcome::Stopped(StopReason::LeaseLost))
            }
            Err(e) => return Err(Outcome::Storage(e)),
        };
        report_page(
            self.ctx,
            self.job,
            &backfill_domain::TaskUnit::Day(unit_day),
            received,
            &stored,
            DateRange::ny_day(unit_day).from(),
        );
        if stored.job_cancelled {
            self.running.trigger(StopReason::Cancelled);
        }
        if self.running.stop.is_cancelled() {
            return Err(Outcome::Stopped(self.running.reason()));
        }
        Ok(())
    }

    /// Every ticker's day bar from the grouped daily endpoint: one request.
    async fn grouped(
        &self,
        task: &Task,
        covered: Option<DateRange>,
        day_range: DateRange,
    ) -> Outcome {
        let day = day_range.from_ny_date();
        let answer = tokio::select! {
            biased;
            _ = self.running.stop.cancelled() => return Outcome::Stopped(self.running.reason()),
            answer = self
                .ctx
                .deps
                .market
                .fetch_grouped(day, self.job.spec.adjusted()) => answer,
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return Outcome::Market(e),
        };
        let received = answer.candles.len() as u64;
        let fetched = Fetched {
            requests: answer.requests,
            bytes: answer.bytes,
        };
        let note = (received == 0)
            .then(|| format!("no bars for {day}: not a trading day (a weekend or a holiday)"));
        let progress = DayProgress {
            rows_done: received,
            file_offset: 0,
            file_size: None,
            file_etag: None,
            fetched,
        };
        if let Err(stopped) = self
            .store(day, self.keep(answer.candles), received, progress)
            .await
        {
            return stopped;
        }
        debug!(task = %task.id, received, "grouped day stored");
        Outcome::DayDone(DayCompletion {
            covered: covered.map(|c| (c, self.series())),
            file: None,
            note,
            fetched: Fetched::default(),
        })
    }

    /// Every ticker's bars from the day's Flat Files file, streamed page by page.
    async fn flat_file(
        &self,
        task: &Task,
        covered: Option<DateRange>,
        day_range: DateRange,
    ) -> Outcome {
        let day = day_range.from_ny_date();
        let Some(files) = self.ctx.deps.files.as_deref() else {
            return Outcome::Unavailable(
                "this worker has no Flat Files credentials: set POLYGON_S3_ACCESS_KEY_ID and \
                 POLYGON_S3_SECRET_ACCESS_KEY"
                    .to_owned(),
            );
        };
        let Some(dataset) = Dataset::for_timeframe(self.job.spec.timeframe()) else {
            return Outcome::Unavailable(format!(
                "Flat Files have no {} bars",
                self.job.spec.timeframe()
            ));
        };
        let looked_up = Fetched {
            requests: 1,
            bytes: 0,
        };
        let file = tokio::select! {
            biased;
            _ = self.running.stop.cancelled() => return Outcome::Stopped(self.running.reason()),
            file = files.day_file(dataset, day) => file,
        };
        let file = match file {
            Ok(Some(file)) => file,
            Ok(None) => {
                info!(%day, "no file for the day");
                return Outcome::DayDone(DayCompletion {
                    covered: None,
                    file: None,
                    note: Some(format!(
                        "no file {} yet: not a trading day (a weekend or a holiday), or not \
                         published yet (files appear the next morning)",
                        dataset.key(day)
                    )),
                    fetched: looked_up,
                });
            }
            Err(e) => return Outcome::Market(e),
        };
        if self.job.spec.mode() == BackfillMode::Missing {
            match self.ctx.deps.candles.stored_file(&file.key).await {
                Ok(Some(stored)) if stored.file.etag == file.etag => {
                    info!(key = %file.key, "file unchanged since stored; not downloaded");
                    return Outcome::DayDone(DayCompletion {
                        covered: covered.map(|c| (c, self.series())),
                        file: None,
                        note: Some(format!(
                            "{} unchanged since it was stored on {} (ETag {}): not downloaded",
                            file.key,
                            stored.stored_at.format("%Y-%m-%d %H:%M UTC"),
                            file.etag
                        )),
                        fetched: looked_up,
                    });
                }
                Ok(_) => {}
                Err(e) => return Outcome::Storage(e),
            }
        }
        // A restart skips the rows already stored, unless they came from another version of the
        // file (it was replaced meanwhile): then it is stored again from its start.
        let skip = if task.file_etag.as_deref() == Some(file.etag.as_str()) {
            task.rows_done
        } else {
            0
        };
        let pages = tokio::select! {
            biased;
            _ = self.running.stop.cancelled() => return Outcome::Stopped(self.running.reason()),
            pages = files.pages(&file, skip) => pages,
        };
        let rows = match pages {
            Ok(pages) => match self.stream(&file, pages, day).await {
                Ok(rows) => rows,
                Err(outcome) => return outcome,
            },
            Err(e) => return Outcome::Market(e),
        };
        let whole_market = self.job.spec.universe() == Universe::All;
        Outcome::DayDone(DayCompletion {
            covered: covered.map(|c| (c, self.series())),
            file: whole_market.then(|| SourceFile {
                key: file.key.clone(),
                etag: file.etag.clone(),
                size: file.size,
                rows,
            }),
            note: None,
            fetched: looked_up,
        })
    }

    /// Stores every page of a file; returns the rows the file held.
    async fn stream(
        &self,
        file: &DayFile,
        mut pages: FilePages,
        day: NaiveDate,
    ) -> Result<u64, Outcome> {
        let mut rows = 0;
        loop {
            let page = tokio::select! {
                biased;
                _ = self.running.stop.cancelled() => {
                    return Err(Outcome::Stopped(self.running.reason()))
                }
                page = pages.next() => page,
            };
            let Some(page) = page else {
                return Ok(rows);
            };
            let page = page.map_err(Outcome::Market)?;
            rows = page.rows_done;
            let received = page.candles.len() as u64;
            let progress = DayProgress {
                rows_done: page.rows_done,
                file_offset: page.offset,
                file_size: Some(file.size),
                file_etag: Some(file.etag.clone()),
                fetched: Fetched {
                    requests: page.requests,
                    bytes: page.bytes,
                },
            };
            self.store(day, self.keep(page.candles), received, progress)
                .await?;
        }
    }
}

#[cfg(test)]
mod tests;
