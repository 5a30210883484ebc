//! Polygon's (now Massive's) flat files: one gzipped CSV per dataset and trading day holding the
//! bars of every universe ticker, generated on demand from the same generator as the REST bars.
//!
//! Layout: `us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz` (each ticker's unadjusted
//! `1/minute` bars of that New York day) and `us_stocks_sip/day_aggs_v1/...` (its unadjusted
//! `1/day` bar). The CSV's header is [`FLAT_FILE_HEADER`]; rows are sorted by ticker, then
//! `window_start`, which is in Unix nanoseconds; there is no vwap column. Prices and volumes are
//! written so that they parse back to exactly the `f64` the REST JSON carries: integral values as
//! integers (`4930`, as the real files have them), others in the shortest form that round-trips
//! (`ryu`, which `serde_json` uses too).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use backfill_domain::{BaseAggregate, Timeframe, Timespan};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use flate2::{Compress, Compression, Crc, FlushCompress};

use crate::bar::SimBar;
use crate::calendar::{date, ny_hour_ms};
use crate::generator::MarketGenerator;
use crate::hash::{fnv, hash};

/// The header line of every flat file (without its newline).
pub const FLAT_FILE_HEADER: &str = "ticker,volume,open,close,high,low,window_start,transactions";

/// A flat-file dataset of US stocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// `us_stocks_sip/day_aggs_v1`: each ticker's day bar.
    DayAggs,
    /// `us_stocks_sip/minute_aggs_v1`: each ticker's minute bars.
    MinuteAggs,
}

impl Dataset {
    /// Both datasets, in the order of their keys.
    pub const ALL: [Dataset; 2] = [Dataset::DayAggs, Dataset::MinuteAggs];

    /// The key prefix of the dataset's files, without a trailing slash.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::DayAggs => "us_stocks_sip/day_aggs_v1",
            Self::MinuteAggs => "us_stocks_sip/minute_aggs_v1",
        }
    }

    /// The timeframe of the dataset's bars: `1d` or `1m`.
    pub fn timeframe(self) -> Timeframe {
        let timespan = match self {
            Self::DayAggs => Timespan::Day,
            Self::MinuteAggs => Timespan::Minute,
        };
        Timeframe::new(1, timespan).expect("a multiplier of 1 is valid")
    }

    pub(crate) fn base(self) -> BaseAggregate {
        match self {
            Self::DayAggs => BaseAggregate::Day,
            Self::MinuteAggs => BaseAggregate::Minute,
        }
    }
}

/// The object key of a dataset's file for a date, such as
/// `us_stocks_sip/minute_aggs_v1/2024/05/2024-05-06.csv.gz`.
pub fn flat_file_key(dataset: Dataset, date: NaiveDate) -> String {
    format!(
        "{}/{:04}/{:02}/{}.csv.gz",
        dataset.prefix(),
        date.year(),
        date.month(),
        date.format("%Y-%m-%d")
    )
}

/// The dataset and date of a key in exactly the layout of [`flat_file_key`].
pub(crate) fn parse_key(key: &str) -> Option<(Dataset, NaiveDate)> {
    let (dataset, rest) = Dataset::ALL.into_iter().find_map(|d| {
        let rest = key.strip_prefix(d.prefix())?.strip_prefix('/')?;
        Some((d, rest))
    })?;
    let name = rest.get(8..)?.strip_suffix(".csv.gz")?;
    let date = NaiveDate::parse_from_str(name, "%Y-%m-%d").ok()?;
    (flat_file_key(dataset, date) == key).then_some((dataset, date))
}

/// When a day's file is first published: 06:00 New York time the next day.
pub(crate) fn published_at(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ny_hour_ms(day + 1, 6)).unwrap_or_default()
}

/// A generated flat file, as the bucket serves it.
#[derive(Debug, Clone)]
pub struct FlatFile {
    key: String,
    bytes: Bytes,
    etag: String,
    last_modified: DateTime<Utc>,
}

impl FlatFile {
    /// The object key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The gzip bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The ETag, quoted as S3 sends it: it changes whenever the content does.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// When this content was published (`Last-Modified`).
    pub fn last_modified(&self) -> DateTime<Utc> {
        self.last_modified
    }

    pub(crate) fn shared_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    pub(crate) fn meta(&self) -> Meta {
        Meta {
            size: self.bytes.len() as u64,
            etag: self.etag.clone(),
        }
    }
}

/// Which content a file has: its dataset, day and that day's revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub(crate) dataset: Dataset,
    pub(crate) day: i64,
    pub(crate) revision: u64,
}

/// What a listing says of a file without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) size: u64,
    pub(crate) etag: String,
}

/// The most recently generated files (a few, bounded in bytes) and the size and ETag of every file
/// generated so far, so that listings and HEADs do not generate a file twice.
#[derive(Debug, Default)]
pub(crate) struct FileCache {
    recent: Mutex<VecDeque<(FileId, Slot)>>,
    metas: Mutex<HashMap<FileId, Meta>>,
}

/// A cached file, or the place where the first caller to ask for it puts it.
type Slot = Arc<OnceLock<Arc<FlatFile>>>;

/// How many generated files the cache keeps.
const CACHED_FILES: usize = 8;
/// How many bytes of generated files the cache keeps at most (the newest file is always kept).
const CACHED_BYTES: usize = 512 << 20;

impl FileCache {
    /// The file with this id, generated by `make` unless a recent one is cached; concurrent
    /// callers for the same file wait for one generation. `generated` tells whether this call
    /// generated it.
    pub(crate) fn get_or_make(
        &self,
        id: FileId,
        make: impl FnOnce() -> FlatFile,
    ) -> (Arc<FlatFile>, bool) {
        let slot = {
            let mut recent = lock(&self.recent);
            match recent.iter().position(|(k, _)| *k == id) {
                Some(at) => {
                    // The most recently used file goes to the back, the last to be evicted.
                    let slot = Arc::clone(&recent[at].1);
                    recent.remove(at);
                    recent.push_back((id, Arc::clone(&slot)));
                    slot
                }
                None => {
                    let slot = Arc::new(OnceLock::new());
                    recent.push_back((id, Arc::clone(&slot)));
                    slot
                }
            }
        };
        let mut generated = false;
        let file = Arc::clone(slot.get_or_init(|| {
            generated = true;
            Arc::new(make())
        }));
        if generated {
            lock(&self.metas).insert(id, file.meta());
            self.evict();
        }
        (file, generated)
    }

    /// The size and ETag of a file generated before, if any.
    pub(crate) fn meta(&self, id: FileId) -> Option<Meta> {
        lock(&self.metas).get(&id).cloned()
    }

    fn evict(&self) {
        let mut recent = lock(&self.recent);
        let size = |slot: &OnceLock<Arc<FlatFile>>| slot.get().map_or(0, |f| f.bytes.len());
        while recent.len() > 1 {
            let total: usize = recent.iter().map(|(_, s)| size(s)).sum();
            if recent.len() <= CACHED_FILES && total <= CACHED_BYTES {
                break;
            }
            recent.pop_front();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Generates a file: the bars of `tickers` (sorted) on a day, as gzipped CSV.
///
/// The CSV is compressed in chunks of about [`CHUNK`] bytes, each an independent run of deflate
/// blocks ended by a sync flush (as `pigz -i` does), so that large files are compressed by
/// several threads while one thread makes the rows. The chunking depends only on the content, so
/// the bytes do not depend on the threads' timing.
pub(crate) fn generate(
    generator: &MarketGenerator,
    tickers: &[String],
    id: FileId,
    last_modified: DateTime<Utc>,
) -> FlatFile {
    let expected_rows = match id.dataset {
        Dataset::DayAggs => tickers.len(),
        Dataset::MinuteAggs => tickers.len() * 150,
    };
    let mut crc = Crc::new();
    let header = format!("{FLAT_FILE_HEADER}\n").into_bytes();
    crc.update(&header);
    let mut parts = vec![deflate_chunk(&header)];
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    if expected_rows < PARALLEL_ROWS || workers < 2 {
        write_csv(generator, tickers, id, |chunk| {
            crc.update(chunk);
            parts.push(deflate_chunk(chunk));
        });
    } else {
        let (to_workers, chunks) = std::sync::mpsc::sync_channel::<(usize, Vec<u8>)>(workers);
        let chunks = Mutex::new(chunks);
        let done = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let next = lock(&chunks).recv();
                    let Ok((seq, chunk)) = next else {
                        break;
                    };
                    let compressed = deflate_chunk(&chunk);
                    lock(&done).push((seq, compressed));
                });
            }
            let mut seq = 0;
            write_csv(generator, tickers, id, |chunk| {
                crc.update(chunk);
                // The workers live until this sender is dropped.
                let _ = to_workers.send((seq, std::mem::take(chunk)));
                seq += 1;
            });
            drop(to_workers);
        });
        let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
        done.sort_unstable_by_key(|(seq, _)| *seq);
        parts.extend(done.into_iter().map(|(_, compressed)| compressed));
    }
    let size: usize = parts.iter().map(Vec::len).sum();
    let mut bytes = Vec::with_capacity(GZIP_HEADER.len() + size + 16);
    bytes.extend_from_slice(&GZIP_HEADER);
    for part in &parts {
        bytes.extend_from_slice(part);
    }
    // An empty final block ends the deflate stream.
    bytes.extend_from_slice(&[0x03, 0x00]);
    bytes.extend_from_slice(&crc.sum().to_le_bytes());
    bytes.extend_from_slice(&crc.amount().to_le_bytes());
    // The ETag follows the content through the CSV's CRC-32 and length and the file's size.
    let words = [
        u64::from(crc.sum()),
        u64::from(crc.amount()),
        bytes.len() as u64,
        fnv(id.dataset.prefix().as_bytes()),
    ];
    let etag = format!("\"{:016x}{:016x}\"", hash(&words), hash(&[hash(&words), 1]));
    FlatFile {
        key: flat_file_key(id.dataset, date(id.day)),
        bytes: Bytes::from(bytes),
        etag,
        last_modified,
    }
}

/// A gzip member header: deflate, no name, no time, fastest compression, unknown system.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// Raw deflate blocks for a chunk, ended by a sync flush (byte-aligned, not final), so that
/// chunks compressed apart can be concatenated into one stream.
fn deflate_chunk(input: &[u8]) -> Vec<u8> {
    let mut compress = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(input.len() / 2 + 1024);
    loop {
        let consumed = usize::try_from(compress.total_in()).unwrap_or(input.len());
        let rest = input.get(consumed..).unwrap_or(&[]);
        if compress
            .compress_vec(rest, &mut out, FlushCompress::Sync)
            .is_err()
        {
            break;
        }
        let consumed = usize::try_from(compress.total_in()).unwrap_or(input.len());
        if consumed >= input.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(4096));
    }
    out
}

/// Makes the CSV rows (without the header) and hands them over in chunks of about [`CHUNK`]
/// bytes; `emit` may take the chunk's buffer, which is cleared after each call.
fn write_csv(
    generator: &MarketGenerator,
    tickers: &[String],
    id: FileId,
    mut emit: impl FnMut(&mut Vec<u8>),
) {
    let mut csv = Vec::with_capacity(CHUNK + 4096);
    let mut bars = Vec::new();
    let mut numbers = Numbers::default();
    for ticker in tickers {
        bars.clear();
        generator.day_bars(ticker, id.dataset.base(), id.day, false, &mut bars);
        for bar in &bars {
            numbers.row(&mut csv, ticker, bar);
        }
        if csv.len() >= CHUNK {
            emit(&mut csv);
            csv.clear();
            csv.reserve(CHUNK + 4096);
        }
    }
    if !csv.is_empty() {
        emit(&mut csv);
    }
}

/// From how many expected rows a file is compressed by several threads.
const PARALLEL_ROWS: usize = 20_000;

/// How much CSV is gathered before it is compressed (a chunk ends at a ticker's last row).
const CHUNK: usize = 1 << 20;

/// Writes CSV rows with reusable number buffers.
#[derive(Default)]
struct Numbers {
    float: ryu::Buffer,
    int: itoa::Buffer,
}

impl Numbers {
    fn row(&mut self, out: &mut Vec<u8>, ticker: &str, bar: &SimBar) {
        out.extend_from_slice(ticker.as_bytes());
        for value in [bar.v, bar.o, bar.c, bar.h, bar.l] {
            out.push(b',');
            self.number(out, value);
        }
        out.push(b',');
        out.extend_from_slice(self.int.format(i128::from(bar.t) * 1_000_000).as_bytes());
        out.push(b',');
        out.extend_from_slice(self.int.format(bar.n).as_bytes());
        out.push(b'\n');
    }

    /// An integral value as an integer, others in the shortest form that parses back exactly.
    fn number(&mut self, out: &mut Vec<u8>, value: f64) {
        if value.fract() == 0.0 && value.abs() < 1e15 {
            out.extend_from_slice(self.int.format(value as i64).as_bytes());
        } else {
            out.extend_from_slice(self.float.format(value).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::calendar::day_of_date;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn keys_follow_the_flat_file_layout_and_parse_back() {
        let key = flat_file_key(Dataset::MinuteAggs, d(2024, 5, 6));
        assert_eq!(
            key,
            "us_stocks_sip/minute_aggs_v1/2024/05/2024-05-06.csv.gz"
        );
        assert_eq!(parse_key(&key), Some((Dataset::MinuteAggs, d(2024, 5, 6))));
        let key = flat_file_key(Dataset::DayAggs, d(2003, 11, 28));
        assert_eq!(key, "us_stocks_sip/day_aggs_v1/2003/11/2003-11-28.csv.gz");
        assert_eq!(parse_key(&key), Some((Dataset::DayAggs, d(2003, 11, 28))));
        for bad in [
            "us_stocks_sip/minute_aggs_v1/2024/06/2024-05-06.csv.gz",
            "us_stocks_sip/minute_aggs_v1/2024/05/2024-05-06.csv",
            "us_stocks_sip/minute_aggs_v1/2024/5/2024-05-06.csv.gz",
            "us_stocks_sip/trades_v1/2024/05/2024-05-06.csv.gz",
            "us_stocks_sip/minute_aggs_v1/2024/05/2024-05-32.csv.gz",
            "",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
        assert!(
            flat_file_key(Dataset::DayAggs, d(2024, 1, 2))
                < flat_file_key(Dataset::MinuteAggs, d(2000, 1, 3))
        );
    }

    #[test]
    fn numbers_parse_back_to_the_same_floats() {
        let mut numbers = Numbers::default();
        for value in [
            4930.0,
            200.29,
            0.0001,
            1e-7,
            123_456_789.5,
            1e16,
            187.15,
            0.1 + 0.2,
        ] {
            let mut out = Vec::new();
            numbers.number(&mut out, value);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.parse::<f64>().unwrap(), value, "{text}");
            assert!(!text.ends_with(".0"), "{text}");
        }
        let mut out = Vec::new();
        numbers.number(&mut out, 4930.0);
        assert_eq!(out, b"4930");
    }

    #[test]
    fn a_file_is_gzipped_csv_sorted_by_ticker_then_time() {
        let tickers = crate::market::tickers(5);
        let mut sorted = tickers.clone();
        sorted.sort();
        let generator = MarketGenerator::new(42, 0.0).with_market(&tickers);
        let id = FileId {
            dataset: Dataset::MinuteAggs,
            day: day_of_date(d(2024, 5, 6)),
            revision: 0,
        };
        let file = generate(&generator, &sorted, id, published_at(id.day));
        let mut csv = String::new();
        flate2::read::GzDecoder::new(file.bytes())
            .read_to_string(&mut csv)
            .unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(FLAT_FILE_HEADER));
        let rows: Vec<(String, i64)> = lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                assert_eq!(f.len(), 8, "{l}");
                (f[0].to_owned(), f[6].parse().unwrap())
            })
            .collect();
        let mut in_order = rows.clone();
        in_order.sort();
        assert_eq!(rows, in_order);
        assert!(rows.len() > 5 && rows.len() < 5 * 960);
        assert_eq!(rows[0].1 % 60_000_000_000, 0);
        assert!(file.etag().starts_with('"') && file.etag().len() == 34);
        assert_eq!(
            file.key(),
            flat_file_key(Dataset::MinuteAggs, d(2024, 5, 6))
        );
        let again = generate(&generator, &sorted, id, published_at(id.day));
        assert_eq!((again.bytes(), again.etag()), (file.bytes(), file.etag()));
    }

    #[test]
    fn the_cache_generates_once_and_keeps_a_few_files() {
        let cache = FileCache::default();
        let file = |n: u64| FlatFile {
            key: n.to_string(),
            bytes: Bytes::from(vec![0u8; 10]),
            etag: format!("\"{n}\""),
            last_modified: DateTime::default(),
        };
        let id = |day: i64| FileId {
            dataset: Dataset::DayAggs,
            day,
            revision: 0,
        };
        assert!(cache.get_or_make(id(1), || file(1)).1);
        assert!(!cache.get_or_make(id(1), || file(9)).1);
        for day in 2..=(CACHED_FILES as i64 + 1) {
            assert!(cache.get_or_make(id(day), || file(day as u64)).1);
        }
        // Day 1 was evicted, but its size and ETag are remembered.
        assert!(cache.get_or_make(id(1), || file(1)).1);
        assert_eq!(cache.meta(id(3)).unwrap().etag, "\"3\"");
        assert!(cache.meta(id(99)).is_none());
    }
}
