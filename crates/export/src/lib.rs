//! Stored candles written out for other tools: Parquet (zstd, row groups of bounded size) or
//! CSV with a header, one file or Hive-style partitions by symbol and month
//! (`symbol=AAPL/month=2024-01/part-0.parquet`).
//!
//! Writers take candles a page at a time and hold at most one row group in memory, whatever
//! the length of the series. No I/O beyond [`std::io::Write`] and, for partitions, files.

mod error;
mod format;
mod partition;
mod writer;

pub use error::{Error, Result};
pub use format::Format;
pub use partition::{partition_path, PartitionedWriter, WrittenFile};
pub use writer::{schema, CandleWriter, CSV_HEADER, ROW_GROUP_ROWS};
