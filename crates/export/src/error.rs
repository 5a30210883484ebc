//! What can go wrong while writing an export.

use std::path::PathBuf;

/// An export that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A format name that is not one of [`Format`](crate::Format)'s.
    #[error("unknown export format {0:?}: parquet or csv")]
    UnknownFormat(String),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("building a batch of candles: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
