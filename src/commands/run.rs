//! `backfill run`: a one-shot backfill in this process, with progress bars on a terminal and
//! plain log lines otherwise.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use backfill_domain::ProgressEvent;
use backfill_domain::{JobStatus, TaskStatus, TaskUnit};
use backfill_progress::{ProgressBus, RecvError};
use backfill_storage::JobDetails;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tracing::{info, warn};

use crate::app;
use crate::cli::RunArgs;
use crate::commands::plan;

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let signalled = app::shutdown_on_signal();
    let mut market = app::market(&args.polygon).await?;
    let (spec, _) = plan::spec(args.spec, market.sources())?;
    let database = app::open_storage(&args.database, args.polygon.demo).await?;
    market.share_quota(&database)?;
    let (storage, backend) = (database.storage, database.backend);
    let job = storage
        .create_job(&spec, None)
        .await
        .context("creating the job")?
        .job;
    info!(
        job_id = %job.id,
        %backend,
        source = %spec.source(),
        symbols = spec.symbols().len(),
        tasks = spec.units().len(),
        "backfill started"
    );
    if let Some(reason) = spec.source_reason() {
        info!("source: {reason}");
    }

    let bus = ProgressBus::new(4096);
    let mut events = bus.subscribe();
    let worker = app::worker(&storage, &market, &args.worker, Some(job.id), bus);
    // The worker stops on a signal, or once the job has ended.
    let shutdown = signalled.child_token();
    let token = shutdown.clone();
    let worker = tokio::spawn(async move { worker.run(token).await });

    let noun = if spec.source().is_bulk() {
        "days"
    } else {
        "symbols"
    };
    let mut ui = Ui::new(spec.units().len(), noun);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut interrupted = false;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) if event.job_id() == job.id => {
                    let finished = matches!(event, ProgressEvent::JobFinished { .. });
                    ui.on_event(&event);
                    if finished {
                        break;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                let details = storage.get_job(job.id).await.context("reading the job")?;
                ui.refresh(&details);
                if details.job.status.is_terminal() && details.progress.symbols_running == 0 {
                    break;
                }
            }
            () = signalled.cancelled() => {
                interrupted = true;
                break;
            }
        }
    }
    shutdown.cancel();
    worker
        .await
        .context("the worker task failed")?
        .context("stopping the worker")?;
    market.settle().await;
    let details = storage.get_job(job.id).await.context("reading the job")?;
    ui.finish(&details);
    drop(market.simulator);

    if args.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &summary(&details))?;
        writeln!(out)?;
    }
    report(&details, interrupted);
    Ok(match (interrupted, details.job.status) {
        (true, _) => ExitCode::from(130),
        (false, JobStatus::Succeeded) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

fn summary(details: &JobDetails) -> serde_json::Value {
    let p = &details.progress;
    json!({
        "job_id": details.job.id,
        "status": details.job.status,
        "simulated": details.job.simulated,
        "symbols_total": p.symbols_total,
        "symbols_done": p.symbols_done,
        "symbols_failed": p.symbols_failed,
        "candles_fetched": p.candles_fetched,
        "candles_stored": p.candles_stored,
        "pages": p.pages,
        "elapsed_seconds": p.elapsed_seconds,
        "candles_per_second": p.candles_per_second,
        "peak_rss_bytes": app::peak_rss_bytes(),
        "symbols": details.tasks.iter().map(|t| json!({
            "symbol": t.symbol(),
            "day": t.unit.day(),
            "status": t.status,
            "attempts": t.attempts,
            "candles_stored": t.candles_stored,
            "error": t.last_error,
        })).collect::<Vec<_>>(),
    })
}

fn report(details: &JobDetails, interrupted: bool) {
    let p = &details.progress;
    if interrupted {
        warn!(
            job_id = %details.job.id,
            "interrupted; stored pages are kept and `backfill worker` (or the same `run`) resumes from the checkpoints"
        );
        return;
    }
    for t in details
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Failed)
    {
        warn!(task = %t.unit, error = t.last_error.as_deref().unwrap_or("unknown"), "task failed");
    }
    info!(
        job_id = %details.job.id,
        status = %details.job.status,
        symbols_done = p.symbols_done,
        symbols_failed = p.symbols_failed,
        candles_stored = p.candles_stored,
        elapsed_seconds = p.elapsed_seconds.unwrap_or_default(),
        "backfill finished"
    );
}

/// Progress bars on a terminal; plain log lines otherwise.
struct Ui {
    multi: MultiProgress,
    overall: ProgressBar,
    lines: HashMap<TaskUnit, ProgressBar>,
    candles: HashMap<TaskUnit, u64>,
    /// What the tasks are: `symbols`, or `days` for the bulk sources.
    noun: &'static str,
    tty: bool,
    last_log: Instant,
}

impl Ui {
    fn new(tasks: usize, noun: &'static str) -> Self {
        let tty = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let overall = multi.add(ProgressBar::new(1000));
        overall.set_style(
            ProgressStyle::with_template(
                "{spinner:.green} [{elapsed_precise}] [{wide_bar:.cyan/blue}] {percent:>3}% {msg} (ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_message(format!("0/{tasks} {noun}"));
        overall.enable_steady_tick(Duration::from_millis(120));
        Self {
            multi,
            overall,
            lines: HashMap::new(),
            candles: HashMap::new(),
            noun,
            tty,
            last_log: Instant::now(),
        }
    }

    fn on_event(&mut self, event: &ProgressEvent) {
        match event {
            ProgressEvent::TaskStarted { unit, attempt, .. } => {
                let line = self.multi.add(ProgressBar::new_spinner());
                line.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix:<14} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                line.set_prefix(unit.to_string());
                line.set_message(format!("attempt {attempt}: fetching"));
                line.enable_steady_tick(Duration::from_millis(120));
                self.lines.insert(unit.clone(), line);
            }
            ProgressEvent::PageStored {
                unit,
                fetched,
                checkpoint,
                ..
            } => {
                let total = self.candles.entry(unit.clone()).or_default();
                *total += fetched;
                if let Some(line) = self.lines.get(unit) {
                    line.set_message(format!(
                        "{total} candles, through {}",
                        checkpoint.format("%Y-%m-%d %H:%M")
                    ));
                }
            }
            ProgressEvent::TaskFinished {
                unit,
                status,
                error,
                ..
            } => {
                if let Some(line) = self.lines.remove(unit) {
                    line.finish_and_clear();
                    self.multi.remove(&line);
                }
                match error {
                    Some(e) => {
                        self.print(&format!("{unit}: {status}: {e}"));
                    }
                    None if !self.tty => info!(%unit, %status, "task finished"),
                    None => {}
                }
            }
            ProgressEvent::JobFinished { .. } => {}
        }
    }

    fn refresh(&mut self, details: &JobDetails) {
        let p = &details.progress;
        self.overall.set_position((p.percent * 10.0).round() as u64);
        let rate = p
            .candles_per_second
            .map(|r| format!(", {r:.0} candles/s"))
            .unwrap_or_default();
        let msg = format!(
            "{}/{} {}, {} failed, {} candles{rate}",
            p.symbols_done, p.symbols_total, self.noun, p.symbols_failed, p.candles_stored
        );
        if !self.tty && self.last_log.elapsed() >= Duration::from_secs(5) {
            self.last_log = Instant::now();
            info!(percent = format!("{:.1}", p.percent), "{msg}");
        }
        self.overall.set_message(msg);
    }

    fn finish(&mut self, details: &JobDetails) {
        self.refresh(details);
        for (_, line) in self.lines.drain() {
            line.finish_and_clear();
        }
        self.overall.finish();
    }

    fn print(&self, text: &str) {
        if self.tty {
            let _ = self.multi.println(text);
        } else {
            warn!("{text}");
        }
    }
}
