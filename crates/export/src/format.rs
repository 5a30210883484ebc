//! The file formats of an export.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A file format for candles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Apache Parquet, zstd-compressed.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
}

impl Format {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
        }
    }

    /// The media type of a file of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "parquet" => Ok(Self::Parquet),
            "csv" => Ok(Self::Csv),
            _ => Err(Error::UnknownFormat(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_a_bad_one_is_named() {
        assert_eq!("parquet".parse::<Format>().unwrap(), Format::Parquet);
        assert_eq!("CSV".parse::<Format>().unwrap(), Format::Csv);
        let err = "xlsx".parse::<Format>().unwrap_err();
        assert!(err.to_string().contains("\"xlsx\""), "{err}");
    }
}
