//! `backfill export`: stored series written to Parquet or CSV, one file or partitions by symbol
//! and month. The database is read a page at a time while the previous page is encoded, so
//! memory stays bounded whatever the range.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use backfill_domain::Candle;
use backfill_export::{CandleWriter, Format, PartitionedWriter, WrittenFile};
use backfill_storage::{CandleQuery, SeriesPages, SeriesRead};
use chrono::Utc;
use tokio::sync::mpsc;

use crate::app;
use crate::cli::ExportArgs;

/// Pages read ahead of the encoder.
const PAGES_AHEAD: usize = 2;

/// Where the rows go.
enum Target {
    /// Every row in one file.
    File(PathBuf),
    /// One file per symbol and month under a directory.
    Partitions(PathBuf),
}

impl Target {
    /// A path with the format's extension is one file; any other extension of an export format
    /// is a mistake; anything else is a directory.
    fn of(out: &Path, format: Format) -> anyhow::Result<Self> {
        let extension = out.extension().and_then(|e| e.to_str()).unwrap_or_default();
        match extension.parse::<Format>() {
            Ok(f) if f == format => Ok(Self::File(out.to_path_buf())),
            Ok(f) => bail!(
                "--out {} names a .{f} file but --format is {format}",
                out.display()
            ),
            Err(_) => Ok(Self::Partitions(out.to_path_buf())),
        }
    }
}

pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let range = args.series.range(Utc::now()).context("--from and --to")?;
    let target = Target::of(&args.out, args.format)?;
    let database = app::open_storage(&args.database, args.demo).await?;

    let (pages, mut received) = mpsc::channel::<Vec<Candle>>(PAGES_AHEAD);
    let format = args.format;
    let writer = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<WrittenFile>> {
        match target {
            Target::File(path) => {
                let file =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                let mut writer =
                    CandleWriter::new(format, BufWriter::with_capacity(1 << 20, file))?;
                while let Some(page) = received.blocking_recv() {
                    writer.write(&page)?;
                }
                let rows = writer.rows();
                writer.finish()?;
                Ok(vec![WrittenFile { path, rows }])
            }
            Target::Partitions(dir) => {
                let mut writer = PartitionedWriter::new(dir, format);
                while let Some(page) = received.blocking_recv() {
                    writer.write(&page)?;
                }
                Ok(writer.finish()?)
            }
        }
    });

    let storage = database.storage.clone();
    let read = async move {
        for symbol in &args.symbols {
            let mut series = SeriesPages::new(SeriesRead::Stored(CandleQuery {
                symbol: symbol.clone(),
                timeframe: args.series.timeframe,
                adjusted: args.series.adjusted,
                range,
                limit: CandleQuery::MAX_LIMIT,
                after: None,
            }));
            while let Some(page) = series
                .next(storage.as_ref())
                .await
                .with_context(|| format!("reading {symbol} {}", args.series.timeframe))?
            {
                if !page.is_empty() && pages.send(page).await.is_err() {
                    // The writer stopped: its error is the one to report.
                    return Ok(());
                }
            }
        }
        anyhow::Ok(())
    };
    let read = read.await;
    let files = writer.await.context("the export's writer")??;
    read?;

    let mut out = std::io::stdout().lock();
    let mut rows = 0;
    for f in &files {
        writeln!(out, "{}\t{} rows", f.path.display(), f.rows)?;
        rows += f.rows;
    }
    writeln!(
        out,
        "{rows} rows written to {} {format} file{}",
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    )?;
    Ok(())
}
