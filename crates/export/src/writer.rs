//! One stream of candles written as Parquet or CSV.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    Float64Builder, StringBuilder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use backfill_domain::{Candle, Timeframe};
use chrono::{Datelike, Timelike};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::Result;
use crate::format::Format;

/// Rows per Parquet row group: the most a writer holds in memory before writing them out.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// The header row of a CSV export: the columns of [`schema`], in its order.
pub const CSV_HEADER: &str = "symbol,timeframe,ts,open,high,low,close,volume,vwap,trades";

/// The columns of a Parquet export, mirroring [`Candle`]: `ts` is the bar's start in
/// milliseconds, UTC; `vwap` and `trades` are null when upstream sent none.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let price = |name| Field::new(name, DataType::Float64, false);
            Arc::new(Schema::new(vec![
                Field::new("symbol", DataType::Utf8, false),
                Field::new("timeframe", DataType::Utf8, false),
                Field::new(
                    "ts",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    false,
                ),
                price("open"),
                price("high"),
                price("low"),
                price("close"),
                price("volume"),
                Field::new("vwap", DataType::Float64, true),
                Field::new("trades", DataType::UInt64, true),
            ]))
        })
        .clone()
}

/// Writes candles to `W` in one format, a page at a time.
///
/// Parquet goes out a row group ([`ROW_GROUP_ROWS`] rows) at a time and CSV a page at a time,
/// so the writer's memory does not grow with the series. [`CandleWriter::finish`] must be
/// called: a Parquet file is only readable once its footer is written.
pub struct CandleWriter<W: Write + Send> {
    inner: Inner<W>,
    rows: u64,
}

enum Inner<W: Write + Send> {
    Parquet(Box<ArrowWriter<W>>),
    Csv { out: W, line: Vec<u8> },
}

impl<W: Write + Send> std::fmt::Debug for CandleWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleWriter")
            .field("format", &self.format())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Send> CandleWriter<W> {
    /// A writer of `format` into `out`; CSV starts with its header row.
    ///
    /// # Errors
    /// The header cannot be written.
    pub fn new(format: Format, mut out: W) -> Result<Self> {
        let inner = match format {
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .build();
                Inner::Parquet(Box::new(ArrowWriter::try_new(out, schema(), Some(props))?))
            }
            Format::Csv => {
                out.write_all(CSV_HEADER.as_bytes())?;
                out.write_all(b"\n")?;
                Inner::Csv {
                    out,
                    line: Vec::new(),
                }
            }
        };
        Ok(Self { inner, rows: 0 })
    }

    pub fn format(&self) -> Format {
        match self.inner {
            Inner::Parquet(_) => Format::Parquet,
            Inner::Csv { .. } => Format::Csv,
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends candles, in the order given.
    ///
    /// # Errors
    /// The output fails, or Parquet cannot encode the rows.
    pub fn write(&mut self, candles: &[Candle]) -> Result<()> {
        match &mut self.inner {
            Inner::Parquet(writer) => {
                for chunk in candles.chunks(ROW_GROUP_ROWS) {
                    writer.write(&batch(chunk)?)?;
                }
            }
            Inner::Csv { out, line } => {
                for chunk in candles.chunks(4_096) {
                    line.clear();
                    let mut timeframe = TimeframeText::default();
                    for c in chunk {
                        csv_row(line, c, timeframe.of(c.timeframe()));
                    }
                    out.write_all(line)?;
                }
            }
        }
        self.rows += candles.len() as u64;
        Ok(())
    }

    /// The output, to take what has been written so far out of an in-memory buffer (a full
    /// Parquet row group or CSV page at a time). Bytes written to it go into the export.
    pub fn get_mut(&mut self) -> &mut W {
        match &mut self.inner {
            Inner::Parquet(writer) => writer.inner_mut(),
            Inner::Csv { out, .. } => out,
        }
    }

    /// Writes what is pending (the last row group and the footer of Parquet) and returns the
    /// output, flushed.
    ///
    /// # Errors
    /// The output fails, or Parquet cannot encode the rows.
    pub fn finish(self) -> Result<W> {
        let mut out = match self.inner {
            Inner::Parquet(writer) => writer.into_inner()?,
            Inner::Csv { out, .. } => out,
        };
        out.flush()?;
        Ok(out)
    }
}

/// The text of a page's timeframe, made once per page rather than once per row.
#[derive(Default)]
struct TimeframeText(Option<(Timeframe, String)>);

impl TimeframeText {
    fn of(&mut self, tf: Timeframe) -> &str {
        if self.0.as_ref().is_none_or(|(t, _)| *t != tf) {
            self.0 = Some((tf, tf.to_string()));
        }
        self.0.as_ref().map_or("", |(_, text)| text)
    }
}

/// One record batch of candles in [`schema`]'s columns.
fn batch(candles: &[Candle]) -> Result<RecordBatch> {
    let n = candles.len();
    let mut symbol = StringBuilder::with_capacity(n, n * 4);
    let mut timeframe = StringBuilder::with_capacity(n, n * 2);
    let mut ts = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut values: [Float64Builder; 5] = std::array::from_fn(|_| Float64Builder::with_capacity(n));
    let mut vwap = Float64Builder::with_capacity(n);
    let mut trades = UInt64Builder::with_capacity(n);
    let mut tf = TimeframeText::default();
    for c in candles {
        symbol.append_value(c.symbol().as_str());
        timeframe.append_value(tf.of(c.timeframe()));
        ts.append_value(c.ts().timestamp_millis());
        for (builder, v) in
            values
                .iter_mut()
                .zip([c.open(), c.high(), c.low(), c.close(), c.volume()])
        {
            builder.append_value(v);
        }
        vwap.append_option(c.vwap());
        trades.append_option(c.trades());
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(symbol.finish()),
        Arc::new(timeframe.finish()),
        Arc::new(ts.finish()),
    ];
    columns.extend(values.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(vwap.finish()));
    columns.push(Arc::new(trades.finish()));
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// One CSV row: numbers in their shortest exact form, `ts` in RFC 3339 (UTC, milliseconds
/// when not whole seconds), absent values empty. Symbols and timeframes never need quoting.
fn csv_row(line: &mut Vec<u8>, c: &Candle, timeframe: &str) {
    let mut int = itoa::Buffer::new();
    let mut float = ryu::Buffer::new();
    line.extend_from_slice(c.symbol().as_str().as_bytes());
    line.push(b',');
    line.extend_from_slice(timeframe.as_bytes());
    line.push(b',');
    rfc3339(line, c.ts());
    for v in [c.open(), c.high(), c.low(), c.close(), c.volume()] {
        line.push(b',');
        line.extend_from_slice(float.format_finite(v).as_bytes());
    }
    line.push(b',');
    if let Some(v) = c.vwap() {
        line.extend_from_slice(float.format_finite(v).as_bytes());
    }
    line.push(b',');
    if let Some(n) = c.trades() {
        line.extend_from_slice(int.format(n).as_bytes());
    }
    line.push(b'\n');
}

/// `2024-01-02T14:30:00Z`, or `2024-01-02T14:30:00.250Z` for a start within a second.
fn rfc3339(line: &mut Vec<u8>, ts: chrono::DateTime<chrono::Utc>) {
    let two = |line: &mut Vec<u8>, n: u32| {
        line.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8])
    };
    let year = ts.year();
    if (0..=9999).contains(&year) {
        let y = year as u32;
        two(line, y / 100);
        two(line, y % 100);
    } else {
        line.extend_from_slice(format!("{year:+}").as_bytes());
    }
    line.push(b'-');
    two(line, ts.month());
    line.push(b'-');
    two(line, ts.day());
    line.push(b'T');
    two(line, ts.hour());
    line.push(b':');
    two(line, ts.minute());
    line.push(b':');
    two(line, ts.second());
    let millis = ts.timestamp_subsec_millis();
    if millis != 0 {
        line.push(b'.');
        line.push(b'0' + (millis / 100) as u8);
        two(line, millis % 100);
    }
    line.push(b'Z');
}

#[cfg(test)]
mod tests {
    use backfill_domain::{Ohlcv, Symbol};
    use chrono::{DateTime, SecondsFormat};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    pub(crate) fn candle(symbol: &str, ms: i64, close: f64, vwap: Option<f64>) -> Candle {
        Candle::new(
            Symbol::parse(symbol).unwrap(),
            Timeframe::parse("1m").unwrap(),
            DateTime::from_timestamp_millis(ms).unwrap(),
            Ohlcv {
                open: 187.15,
                high: 187.4,
                low: 0.1 + 0.2,
                close,
                volume: 1_029_145.5,
                vwap,
                trades: vwap.map(|_| u64::MAX),
            },
        )
        .unwrap()
    }

    #[test]
    fn csv_rows_hold_every_value_exactly() {
        let candles = [
            candle("AAPL", 1_704_205_800_000, 1e21, Some(187.1)),
            candle("X:BTCUSD", 1_704_205_800_250, 5e-324, None),
        ];
        let mut w = CandleWriter::new(Format::Csv, Vec::new()).unwrap();
        w.write(&candles).unwrap();
        assert_eq!(w.rows(), 2);
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(CSV_HEADER));
        for (line, c) in lines.zip(&candles) {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f[0], c.symbol().as_str());
            assert_eq!(f[1], "1m");
            assert_eq!(
                f[2],
                c.ts().to_rfc3339_opts(SecondsFormat::AutoSi, true),
                "{line}"
            );
            let num = |s: &str| s.parse::<f64>().unwrap();
            assert_eq!(
                [num(f[3]), num(f[4]), num(f[5]), num(f[6]), num(f[7])],
                [c.open(), c.high(), c.low(), c.close(), c.volume()]
            );
            assert_eq!(f[8].parse::<f64>().ok(), c.vwap());
            assert_eq!(f[9].parse::<u64>().ok(), c.trades());
        }
    }

    #[test]
    fn parquet_reads_back_in_row_groups_of_bounded_size() {
        let candles: Vec<Candle> = (0..ROW_GROUP_ROWS as i64 * 2 + 10)
            .map(|i| {
                candle(
                    "AAPL",
                    1_704_205_800_000 + i * 60_000,
                    i as f64 + 0.5,
                    (i % 3 != 0).then_some(i as f64),
                )
            })
            .collect();
        let mut w = CandleWriter::new(Format::Parquet, Vec::new()).unwrap();
        // Pages smaller than a row group: the first row group goes out before the last page.
        let mut flushed_before_the_end = 0;
        for page in candles.chunks(50_000) {
            w.write(page).unwrap();
            flushed_before_the_end = flushed_before_the_end.max(w.get_mut().len());
        }
        assert!(flushed_before_the_end > 0);
        let bytes = bytes::Bytes::from(w.finish().unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let meta = reader.metadata().clone();
        assert_eq!(meta.num_row_groups(), 3);
        assert!(meta
            .row_groups()
            .iter()
            .all(|g| g.num_rows() as usize <= ROW_GROUP_ROWS
                && g.columns()
                    .iter()
                    .all(|c| c.compression() == Compression::ZSTD(ZstdLevel::default()))));
        let mut got = Vec::new();
        for b in reader.build().unwrap() {
            let b = b.unwrap();
            assert_eq!(b.schema(), schema());
            got.extend((0..b.num_rows()).map(|i| row(&b, i)));
        }
        let want: Vec<Candle> = candles;
        assert_eq!(got, want);
    }

    /// Row `i` of a batch as a candle again.
    fn row(b: &RecordBatch, i: usize) -> Candle {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Float64Type, TimestampMillisecondType, UInt64Type};
        use arrow_array::Array;
        let f = |col: usize| b.column(col).as_primitive::<Float64Type>();
        let opt = |col: usize| {
            let a = f(col);
            a.is_valid(i).then(|| a.value(i))
        };
        let trades = b.column(9).as_primitive::<UInt64Type>();
        Candle::new(
            Symbol::parse(b.column(0).as_string::<i32>().value(i)).unwrap(),
            Timeframe::parse(b.column(1).as_string::<i32>().value(i)).unwrap(),
            DateTime::from_timestamp_millis(
                b.column(2)
                    .as_primitive::<TimestampMillisecondType>()
                    .value(i),
            )
            .unwrap(),
            Ohlcv {
                open: f(3).value(i),
                high: f(4).value(i),
                low: f(5).value(i),
                close: f(6).value(i),
                volume: f(7).value(i),
                vwap: opt(8),
                trades: trades.is_valid(i).then(|| trades.value(i)),
            },
        )
        .unwrap()
    }
}
