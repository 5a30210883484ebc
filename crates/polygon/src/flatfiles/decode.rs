//! From compressed bytes to pages of candles, on a blocking thread: the bytes of a download arrive
//! in chunks over a bounded channel, are inflated as a stream (`flate2`, every gzip member), split
//! into lines and parsed, and pages go out over another bounded channel. Memory stays bounded: a
//! few chunks, one buffer of text and the pages in flight.

use std::io::{self, BufRead, Read};
use std::sync::Arc;

use bytes::Bytes;
use flate2::bufread::MultiGzDecoder;
use tokio::sync::mpsc;

use super::rows::{Columns, RowParser};
use super::Counters;
use crate::{Dataset, Error, FilePage, FilePages, Result};

/// What the download sends the decoder.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// The next bytes of the file, with the GETs made since the previous chunk (the one that
    /// brought these bytes included).
    Data { bytes: Bytes, requests: u32 },
    /// The download failed for good; the decoder reports it and stops.
    Failed(Error),
}

/// How the decoder reads a file.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) key: String,
    pub(crate) dataset: Dataset,
    pub(crate) skip_rows: u64,
    pub(crate) page_rows: usize,
}

/// Starts decoding the chunks that arrive on `chunks` on a blocking thread and returns its pages.
/// Dropping the returned stream stops the thread at its next page, which in turn stops the
/// download (its channel closes).
pub(crate) fn spawn(
    plan: Plan,
    chunks: mpsc::Receiver<Chunk>,
    counters: Arc<Counters>,
) -> FilePages {
    let (pages, receiver) = mpsc::channel(PAGES_IN_FLIGHT);
    // The thread logs where the caller does, in its span.
    let span = tracing::Span::current();
    let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
    tokio::task::spawn_blocking(move || {
        let _dispatch = tracing::dispatcher::set_default(&dispatch);
        let _span = span.enter();
        let body = Body::new(chunks);
        let result = decode(&plan, body, &counters, |page| {
            pages.blocking_send(Ok(page)).is_ok()
        });
        if let Err(error) = result {
            tracing::warn!(key = %plan.key, error = %error, "reading a flat file failed");
            let _ = pages.blocking_send(Err(error));
        }
    });
    Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move {
            let page = receiver.recv().await?;
            Some((page, receiver))
        },
    ))
}

/// Pages decoded ahead of the consumer: the next one is decoded while the consumer stores one.
const PAGES_IN_FLIGHT: usize = 1;

/// How much inflated text is read at a time.
const TEXT_BUFFER: usize = 256 * 1024;

/// Decodes a whole file from `body`, handing each page to `emit` (which returns false when
/// nobody wants more). Pages hold at most `plan.page_rows` candles; the last page carries the
/// final counts (there is always at least one page, empty when the file has no rows after the
/// skipped ones).
pub(crate) fn decode<B: Compressed>(
    plan: &Plan,
    mut body: B,
    counters: &Counters,
    mut emit: impl FnMut(FilePage) -> bool,
) -> Result<()> {
    let failure = |body: &mut B, error: io::Error| -> Error {
        body.take_failure().unwrap_or_else(|| Error::Decode {
            message: format!("{} is not a valid gzip file: {error}", plan.key),
        })
    };
    let mut gzip = MultiGzDecoder::new(&mut body);
    let mut text = vec![0u8; TEXT_BUFFER];
    // `text[..filled]` holds inflated text not parsed yet, starting at a line's start.
    let mut filled = 0;
    let mut parser: Option<RowParser> = None;
    let mut page = PageBuilder::new(plan.page_rows);
    let mut rows_done: u64 = 0;
    loop {
        if filled == text.len() {
            // A line longer than the buffer (no valid row is): make room for it.
            text.resize(text.len() * 2, 0);
        }
        let read = match gzip.read(&mut text[filled..]) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                drop(gzip);
                return Err(failure(&mut body, error));
            }
        };
        let at_end = read == 0;
        filled += read;
        // Parse every complete line; at the end also a last line without its line end.
        let complete = if at_end {
            filled
        } else {
            match memchr::memrchr(b'\n', &text[filled - read..filled]) {
                Some(at) => filled - read + at + 1,
                None => continue,
            }
        };
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', &text[..complete]).chain(at_end.then_some(complete));
        for end in ends {
            let line = &text[start..end];
            start = end + 1;
            if line.is_empty() || line == b"\r" {
                continue;
            }
            let Some(parser) = parser.as_mut() else {
                let columns = Columns::from_header(line).map_err(|message| Error::Decode {
                    message: format!("{}: {message}", plan.key),
                })?;
                parser = Some(RowParser::new(columns, plan.dataset.timeframe()));
                continue;
            };
            rows_done += 1;
            if rows_done <= plan.skip_rows {
                continue;
            }
            if page.is_full() {
                let full = page.take(rows_done - 1, &**gzip.get_ref(), counters);
                if !emit(full) {
                    return Ok(());
                }
            }
            match parser.parse(line) {
                Some(candle) => page.candles.push(candle),
                None => page.dropped += 1,
            }
        }
        if at_end {
            break;
        }
        text.copy_within(complete..filled, 0);
        filled -= complete;
    }
    drop(gzip);
    if let Some(error) = body.take_failure() {
        return Err(error);
    }
    if parser.is_none() {
        return Err(Error::Decode {
            message: format!("{} has no header line", plan.key),
        });
    }
    let last = page.take(rows_done, &body, counters);
    counters.file_done();
    emit(last);
    Ok(())
}

/// The page being filled.
#[derive(Debug)]
struct PageBuilder {
    page_rows: usize,
    candles: Vec<backfill_domain::Candle>,
    dropped: u64,
}

impl PageBuilder {
    fn new(page_rows: usize) -> Self {
        Self {
            page_rows,
            candles: Vec::with_capacity(page_rows.min(65_536)),
            dropped: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.candles.len() >= self.page_rows
    }

    /// The page so far, up to `rows_done` rows of the file, with what `body` counted since the
    /// previous page.
    fn take(&mut self, rows_done: u64, body: &impl Compressed, counters: &Counters) -> FilePage {
        let capacity = self.page_rows.min(65_536);
        let candles = std::mem::replace(&mut self.candles, Vec::with_capacity(capacity));
        let (bytes, requests) = body.take_counts();
        counters.page(candles.len() as u64, self.dropped);
        FilePage {
            candles,
            rows_done,
            offset: body.consumed(),
            bytes,
            requests,
            dropped: std::mem::take(&mut self.dropped),
        }
    }
}

/// Compressed bytes to inflate, with counts of what they cost.
pub(crate) trait Compressed: BufRead {
    /// Bytes handed to the inflater so far.
    fn consumed(&self) -> u64;
    /// Bytes downloaded and GETs made since the last call.
    fn take_counts(&self) -> (u64, u32);
    /// Why the bytes stopped, when they did not simply end.
    fn take_failure(&mut self) -> Option<Error>;
}

/// A whole file in memory.
#[derive(Debug)]
pub(crate) struct InMemory<'a> {
    bytes: &'a [u8],
    consumed: usize,
    counted: std::cell::Cell<bool>,
}

impl<'a> InMemory<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            consumed: 0,
            counted: std::cell::Cell::new(false),
        }
    }
}

impl Read for InMemory<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = (&self.bytes[self.consumed..]).read(out)?;
        self.consumed += n;
        Ok(n)
    }
}

impl BufRead for InMemory<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(&self.bytes[self.consumed..])
    }

    fn consume(&mut self, amount: usize) {
        self.consumed = (self.consumed + amount).min(self.bytes.len());
    }
}

impl Compressed for InMemory<'_> {
    fn consumed(&self) -> u64 {
        self.consumed as u64
    }

    fn take_counts(&self) -> (u64, u32) {
        if self.counted.replace(true) {
            (0, 0)
        } else {
            (self.bytes.len() as u64, 0)
        }
    }

    fn take_failure(&mut self) -> Option<Error> {
        None
    }
}

/// The compressed bytes as a reader: chunks from the download, in order, with counts of what
/// arrived since the last page.
#[derive(Debug)]
pub(crate) struct Body {
    chunks: mpsc::Receiver<Chunk>,
    current: Bytes,
    /// Bytes handed to the inflater so far.
    consumed: u64,
    /// Bytes and GETs that arrived since the last page.
    counts: std::cell::Cell<(u64, u32)>,
    /// Why the download stopped, when it failed.
    failure: Option<Error>,
    ended: bool,
}

impl Body {
    pub(crate) fn new(chunks: mpsc::Receiver<Chunk>) -> Self {
        Self {
            chunks,
            current: Bytes::new(),
            consumed: 0,
            counts: std::cell::Cell::new((0, 0)),
            failure: None,
            ended: false,
        }
    }
}

impl Compressed for Body {
    fn consumed(&self) -> u64 {
        self.consumed
    }

    fn take_counts(&self) -> (u64, u32) {
        self.counts.take()
    }

    fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }
}

impl Read for Body {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Body {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.is_empty() && !self.ended {
            match self.chunks.blocking_recv() {
                Some(Chunk::Data { bytes, requests }) => {
                    let (b, r) = self.counts.get();
                    self.counts
                        .set((b + bytes.len() as u64, r.saturating_add(requests)));
                    self.current = bytes;
                }
                Some(Chunk::Failed(error)) => {
                    self.failure = Some(error);
                    self.ended = true;
                    return Err(io::Error::other("the download failed"));
                }
                None => self.ended = true,
            }
        }
        if self.failure.is_some() {
            return Err(io::Error::other("the download failed"));
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.current.len());
        let _ = self.current.split_to(amount);
        self.consumed += amount as u64;
    }
}
