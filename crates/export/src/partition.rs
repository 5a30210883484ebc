//! Hive-style partitions: one file per symbol and month,
//! `symbol=AAPL/month=2024-01/part-0.parquet`.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use backfill_domain::{Candle, Symbol};
use chrono::Datelike;

use crate::error::{Error, Result};
use crate::format::Format;
use crate::writer::CandleWriter;

/// A file an export wrote, with its number of rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub rows: u64,
}

/// A partition: a symbol and a month (year, month) of bar starts in UTC.
type Key = (Symbol, i32, u32);

/// The path of part `part` of a partition, relative to the export's root: characters of the
/// symbol other than letters, digits, `.`, `_` and `-` are percent-encoded as Hive does
/// (`symbol=X%3ABTCUSD`).
pub fn partition_path(
    symbol: &Symbol,
    year: i32,
    month: u32,
    part: u32,
    format: Format,
) -> PathBuf {
    let mut escaped = String::with_capacity(symbol.as_str().len());
    for b in symbol.as_str().bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            escaped.push(char::from(b));
        } else {
            escaped.push_str(&format!("%{b:02X}"));
        }
    }
    PathBuf::from(format!("symbol={escaped}"))
        .join(format!("month={year:04}-{month:02}"))
        .join(format!("part-{part}.{}", format.extension()))
}

/// Writes candles under a directory, one file per symbol and month, keeping one file open at a
/// time: feed each series in time order (series after series) and every partition gets one
/// file. A partition met again later gets another part rather than overwriting the first.
pub struct PartitionedWriter {
    root: PathBuf,
    format: Format,
    current: Option<(Key, PathBuf, CandleWriter<BufWriter<File>>)>,
    parts: HashMap<Key, u32>,
    written: Vec<WrittenFile>,
}

impl std::fmt::Debug for PartitionedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedWriter")
            .field("root", &self.root)
            .field("format", &self.format)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl PartitionedWriter {
    pub fn new(root: impl Into<PathBuf>, format: Format) -> Self {
        Self {
            root: root.into(),
            format,
            current: None,
            parts: HashMap::new(),
            written: Vec::new(),
        }
    }

    /// Appends candles, each to the file of its symbol and month.
    ///
    /// # Errors
    /// A directory or file cannot be created or written.
    pub fn write(&mut self, candles: &[Candle]) -> Result<()> {
        let mut rest = candles;
        while let Some(first) = rest.first() {
            let key = key(first);
            let run = rest.iter().take_while(|c| same_partition(c, &key)).count();
            let (now, later) = rest.split_at(run);
            if self.current.as_ref().is_none_or(|(k, _, _)| *k != key) {
                self.close_current()?;
                self.open(key)?;
            }
            if let Some((_, path, writer)) = &mut self.current {
                writer.write(now).map_err(|e| in_file(e, path))?;
            }
            rest = later;
        }
        Ok(())
    }

    /// Closes the last file and returns every file written, in the order they were opened.
    ///
    /// # Errors
    /// The last file cannot be written.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>> {
        self.close_current()?;
        Ok(self.written)
    }

    fn open(&mut self, key: Key) -> Result<()> {
        let part = self.parts.entry(key.clone()).or_insert(0);
        let relative = partition_path(&key.0, key.1, key.2, *part, self.format);
        *part += 1;
        let path = self.root.join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::File {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = File::create(&path).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
        let writer = CandleWriter::new(self.format, BufWriter::with_capacity(1 << 20, file))
            .map_err(|e| in_file(e, &path))?;
        self.current = Some((key, path, writer));
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some((_, path, writer)) = self.current.take() {
            let rows = writer.rows();
            writer.finish().map_err(|e| in_file(e, &path))?;
            self.written.push(WrittenFile { path, rows });
        }
        Ok(())
    }
}

fn key(c: &Candle) -> Key {
    (c.symbol().clone(), c.ts().year(), c.ts().month())
}

fn same_partition(c: &Candle, key: &Key) -> bool {
    c.ts().month() == key.2 && c.ts().year() == key.1 && *c.symbol() == key.0
}

/// An I/O error names the file it happened in.
fn in_file(e: Error, path: &Path) -> Error {
    match e {
        Error::Io(source) => Error::File {
            path: path.to_path_buf(),
            source,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use backfill_domain::{Ohlcv, Timeframe};
    use chrono::DateTime;

    use super::*;

    fn candle(symbol: &str, rfc3339: &str) -> Candle {
        Candle::new(
            Symbol::parse(symbol).unwrap(),
            Timeframe::parse("1d").unwrap(),
            DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc(),
            Ohlcv {
                open: 1.0,
                high: 2.0,
                low: 0.5,
                close: 1.5,
                volume: 10.0,
                vwap: None,
                trades: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn files_per_symbol_and_month_with_escaped_symbols() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartitionedWriter::new(dir.path(), Format::Csv);
        w.write(&[
            candle("AAPL", "2024-01-30T05:00:00Z"),
            candle("AAPL", "2024-01-31T05:00:00Z"),
        ])
        .unwrap();
        // The month and the symbol change inside one page.
        w.write(&[
            candle("AAPL", "2024-02-01T05:00:00Z"),
            candle("X:BTCUSD", "2024-02-01T00:00:00Z"),
        ])
        .unwrap();
        // A partition met again gets a new part.
        w.write(&[candle("AAPL", "2024-01-29T05:00:00Z")]).unwrap();
        let files = w.finish().unwrap();
        let got: Vec<(String, u64)> = files
            .iter()
            .map(|f| {
                let rel = f.path.strip_prefix(dir.path()).unwrap();
                (rel.to_string_lossy().into_owned(), f.rows)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("symbol=AAPL/month=2024-01/part-0.csv".to_owned(), 2),
                ("symbol=AAPL/month=2024-02/part-0.csv".to_owned(), 1),
                ("symbol=X%3ABTCUSD/month=2024-02/part-0.csv".to_owned(), 1),
                ("symbol=AAPL/month=2024-01/part-1.csv".to_owned(), 1),
            ]
        );
        for f in &files {
            let text = std::fs::read_to_string(&f.path).unwrap();
            assert_eq!(
                text.lines().count() as u64,
                f.rows + 1,
                "{}",
                f.path.display()
            );
        }
    }

    #[test]
    fn a_file_that_cannot_be_created_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("symbol=AAPL");
        std::fs::write(&blocker, b"a file, not a directory").unwrap();
        let mut w = PartitionedWriter::new(dir.path(), Format::Parquet);
        let err = w
            .write(&[candle("AAPL", "2024-01-30T05:00:00Z")])
            .unwrap_err();
        assert!(err.to_string().contains("symbol=AAPL"), "{err}");
    }
}
