//! A whole series answered as one CSV or Parquet file, streamed: each page read from storage is
//! encoded on a blocking thread and sent on as soon as the encoder lets go of it (a page of CSV,
//! a row group of Parquet), so memory stays bounded whatever the range.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use backfill_domain::{Candle, SplitAdjuster, Symbol, Timeframe};
use backfill_export::{CandleWriter, Format};
use backfill_storage::{SeriesPages, SeriesRead};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a streamed export stands.
struct Export {
    state: AppState,
    pages: SeriesPages,
    /// The first page, read before answering so that a failing read answers an error.
    first: Option<Vec<Candle>>,
    /// `None` once the file is complete.
    writer: Option<CandleWriter<Vec<u8>>>,
    /// Adjusts a raw series for its stored splits as it is read (`adjust=splits`).
    adjuster: Option<SplitAdjuster>,
}

/// The response: headers now, the file's bytes as the series is read.
///
/// # Errors
/// The first page cannot be read.
pub(crate) async fn response(
    state: AppState,
    read: SeriesRead,
    adjuster: Option<SplitAdjuster>,
    format: Format,
    symbol: &Symbol,
    timeframe: Timeframe,
) -> Result<Response, ApiError> {
    let mut pages = SeriesPages::new(read);
    let first = pages.next(state.candles()).await?;
    let writer = CandleWriter::new(format, Vec::new())?;
    let export = Export {
        state,
        pages,
        first,
        writer: Some(writer),
        adjuster,
    };
    let body = Body::from_stream(futures::stream::try_unfold(export, next_chunk));
    // Letters, digits, `.`, `-` and `_` only: a valid header and a file name on any system.
    let filename = format!(
        "{}_{timeframe}.{}",
        symbol.as_str().replace(':', "_"),
        format.extension()
    );
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(|e| ApiError::new(ErrorCode::InternalError, "a file name").with_source(e))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// The next bytes of the file: pages are read and encoded until the encoder has output, and the
/// writer is finished after the last page. `None` once everything was sent.
async fn next_chunk(mut export: Export) -> Result<Option<(Bytes, Export)>, BoxError> {
    loop {
        let Some(mut writer) = export.writer.take() else {
            return Ok(None);
        };
        let page = match export.first.take() {
            Some(page) => Some(page),
            None => export
                .pages
                .next(export.state.candles())
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "export stopped: reading failed"))?,
        };
        let page = match (&export.adjuster, page) {
            (Some(adjuster), Some(page)) => Some(page.iter().map(|c| adjuster.adjust(c)).collect()),
            (_, page) => page,
        };
        let (writer, chunk) = tokio::task::spawn_blocking(move || match page {
            Some(page) => {
                writer.write(&page)?;
                let chunk = std::mem::take(writer.get_mut());
                Ok::<_, backfill_export::Error>((Some(writer), chunk))
            }
            None => Ok((None, writer.finish()?)),
        })
        .await?
        .inspect_err(|e| tracing::warn!(error = %e, "export stopped: encoding failed"))?;
        export.writer = writer;
        if !chunk.is_empty() || export.writer.is_none() {
            return Ok(Some((Bytes::from(chunk), export)));
        }
    }
}
