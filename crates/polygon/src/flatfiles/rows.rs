//! The CSV rows of a flat file, parsed byte by byte: the header names the columns, each row is
//! `ticker,volume,open,close,high,low,window_start,transactions` (in the header's order), with no
//! quoting, `window_start` in Unix nanoseconds and prices and volumes as decimals.

use backfill_domain::{Candle, Ohlcv, Symbol, Timeframe};
use chrono::DateTime;

/// Where each column the client reads sits in a row, from the header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Columns {
    /// Fields per row (every row must have exactly this many).
    count: usize,
    ticker: usize,
    volume: usize,
    open: usize,
    close: usize,
    high: usize,
    low: usize,
    window_start: usize,
    /// Optional: a file without it gives candles without a trade count.
    transactions: Option<usize>,
}

/// The most fields a row may have (the files have 8).
const MAX_FIELDS: usize = 32;

impl Columns {
    /// Reads the header line (without its line end). Unknown columns are ignored; a missing
    /// required one is an error naming it.
    pub(crate) fn from_header(line: &[u8]) -> Result<Self, String> {
        let line = trim_cr(line);
        let text = std::str::from_utf8(line).map_err(|_| "the header is not UTF-8".to_owned())?;
        let names: Vec<&str> = text.split(',').map(str::trim).collect();
        if names.len() > MAX_FIELDS {
            return Err(format!(
                "the header has {} columns, more than {MAX_FIELDS}",
                names.len()
            ));
        }
        let find = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
        let required = |name: &str| {
            find(name).ok_or_else(|| format!("the header has no {name} column: {}", excerpt(text)))
        };
        Ok(Self {
            count: names.len(),
            ticker: required("ticker")?,
            volume: required("volume")?,
            open: required("open")?,
            close: required("close")?,
            high: required("high")?,
            low: required("low")?,
            window_start: required("window_start")?,
            transactions: find("transactions"),
        })
    }
}

/// Turns rows into candles, remembering the last ticker so that the rows of one ticker (the
/// files are sorted by ticker) share one symbol without parsing it again.
#[derive(Debug)]
pub(crate) struct RowParser {
    columns: Columns,
    timeframe: Timeframe,
    last_ticker: Vec<u8>,
    /// The symbol of `last_ticker`, `None` when it is not a valid symbol.
    last_symbol: Option<Symbol>,
}

impl RowParser {
    pub(crate) fn new(columns: Columns, timeframe: Timeframe) -> Self {
        Self {
            columns,
            timeframe,
            last_ticker: Vec::new(),
            last_symbol: None,
        }
    }

    /// The candle of one row (without its line end), or `None` when the row is malformed or
    /// its values make no candle.
    pub(crate) fn parse(&mut self, line: &[u8]) -> Option<Candle> {
        let line = trim_cr(line);
        let columns = self.columns;
        let mut ends = [0usize; MAX_FIELDS];
        let mut count = 0;
        for comma in memchr::memchr_iter(b',', line) {
            if count + 1 >= columns.count {
                return None;
            }
            ends[count] = comma;
            count += 1;
        }
        if count + 1 != columns.count {
            return None;
        }
        ends[count] = line.len();
        let field = |i: usize| {
            let start = if i == 0 { 0 } else { ends[i - 1] + 1 };
            &line[start..ends[i]]
        };
        let ns = parse_i64(field(columns.window_start))?;
        let ts = DateTime::from_timestamp_millis(ns.div_euclid(1_000_000))?;
        let values = Ohlcv {
            open: parse_f64(field(columns.open))?,
            high: parse_f64(field(columns.high))?,
            low: parse_f64(field(columns.low))?,
            close: parse_f64(field(columns.close))?,
            volume: parse_f64(field(columns.volume))?,
            vwap: None,
            trades: match columns.transactions.map(field) {
                None | Some(b"") => None,
                Some(n) => Some(parse_u64(n)?),
            },
        };
        let symbol = self.symbol(field(columns.ticker))?;
        Candle::new(symbol, self.timeframe, ts, values).ok()
    }

    fn symbol(&mut self, ticker: &[u8]) -> Option<Symbol> {
        if ticker != self.last_ticker.as_slice() || self.last_ticker.is_empty() {
            self.last_ticker.clear();
            self.last_ticker.extend_from_slice(ticker);
            self.last_symbol = std::str::from_utf8(ticker)
                .ok()
                .and_then(|t| Symbol::parse(t).ok());
        }
        self.last_symbol.clone()
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn excerpt(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Powers of ten that an `f64` holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a decimal exactly as `str::parse::<f64>` does. Plain decimals of at most 15 digits
/// (`4930`, `189.53`, `-0.0001`) take a fast path: the digits as an integer divided by a power of
/// ten, both exact in an `f64`, so the one rounding of the division gives the correctly rounded
/// value (Clinger's fast path). Everything else (exponents, long mantissas, `inf`) goes to the
/// standard parser.
pub(crate) fn parse_f64(field: &[u8]) -> Option<f64> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    let mut mantissa: u64 = 0;
    let mut count = 0u32;
    let mut decimals: Option<usize> = None;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
                if count > 15 {
                    return parse_std(field);
                }
            }
            b'.' if decimals.is_none() => decimals = Some(digits.len() - i - 1),
            _ => return parse_std(field),
        }
    }
    if count == 0 {
        return parse_std(field);
    }
    // At most 15 digits: below 2^53 and at most 15 decimals, so both operands are exact.
    let value = mantissa as f64 / POW10[decimals.unwrap_or(0)];
    Some(if negative { -value } else { value })
}

#[cold]
fn parse_std(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// A non-negative integer of at most 19 digits.
pub(crate) fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 19 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(b - b'0');
    }
    Some(value)
}

/// An integer of at most 19 digits, possibly negative.
pub(crate) fn parse_i64(field: &[u8]) -> Option<i64> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    let value = i64::try_from(parse_u64(digits)?).ok()?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use backfill_domain::Timespan;

    use super::*;

    const HEADER: &[u8] = b"ticker,volume,open,close,high,low,window_start,transactions";

    fn parser(header: &[u8], timespan: Timespan) -> RowParser {
        let columns = Columns::from_header(header).unwrap();
        RowParser::new(columns, Timeframe::new(1, timespan).unwrap())
    }

    #[test]
    fn parses_a_minute_row_into_a_raw_candle() {
        let mut rows = parser(HEADER, Timespan::Minute);
        let candle = rows
            .parse(b"AAPL,4930,200.29,200.5,200.5,200.25,1714993200000000000,129")
            .unwrap();
        assert_eq!(candle.symbol().as_str(), "AAPL");
        assert_eq!(candle.timeframe().to_string(), "1m");
        assert_eq!(candle.ts().timestamp_millis(), 1_714_993_200_000);
        let v = candle.values();
        assert_eq!(
            (v.volume, v.open, v.close, v.high, v.low),
            (4930.0, 200.29, 200.5, 200.5, 200.25)
        );
        assert_eq!((v.vwap, v.trades), (None, Some(129)));
    }

    #[test]
    fn follows_the_header_order_and_ignores_unknown_columns() {
        let header = b"ticker,window_start,open,high,low,close,volume,otc,transactions\r";
        let mut rows = parser(header, Timespan::Day);
        let candle = rows
            .parse(b"BRK.A,1714968000000000000,1,4,0.5,2,3.5,false,7\r")
            .unwrap();
        assert_eq!(candle.symbol().as_str(), "BRK.A");
        let v = candle.values();
        assert_eq!((v.open, v.high, v.low, v.close), (1.0, 4.0, 0.5, 2.0));
        assert_eq!((v.volume, v.trades), (3.5, Some(7)));
        // Without a transactions column the count is unknown.
        let mut rows = parser(
            b"ticker,volume,open,close,high,low,window_start",
            Timespan::Day,
        );
        let candle = rows.parse(b"A,1,1,1,1,1,0").unwrap();
        assert_eq!(candle.trades(), None);
    }

    #[test]
    fn a_header_without_a_required_column_is_refused() {
        let err = Columns::from_header(b"ticker,volume,open,close,high,window_start").unwrap_err();
        assert!(err.contains("no low column"), "{err}");
        assert!(Columns::from_header(&[0xff, b',']).is_err());
    }

    #[test]
    fn malformed_rows_and_impossible_values_make_no_candle() {
        let mut rows = parser(HEADER, Timespan::Minute);
        for line in [
            &b""[..],
            b"AAPL,1,1,1,1,1,1714993200000000000",
            b"AAPL,1,1,1,1,1,1714993200000000000,1,extra",
            b"AAPL,x,1,1,1,1,1714993200000000000,1",
            b"AAPL,1,,1,1,1,1714993200000000000,1",
            b"AAPL,1,1,1,1,1,17149932000000000.5,1",
            b"AAPL,1,1,1,1,1,1714993200000000000,-1",
            b"AAPL,1,1,1,1,1,1714993200000000000,1.5",
            b"AAPL,-1,1,1,1,1,1714993200000000000,1",
            b"AAPL,1,NaN,1,1,1,1714993200000000000,1",
            b"AAPL,1,inf,1,1,1,1714993200000000000,1",
            b"AA PL,1,1,1,1,1,1714993200000000000,1",
            b",1,1,1,1,1,1714993200000000000,1",
            b"\xff,1,1,1,1,1,1714993200000000000,1",
            b"AAPL,1,1,1,1,1,99999999999999999999,1",
        ] {
            assert!(
                rows.parse(line).is_none(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // An inconsistent bar (open above high) is real data and kept.
        let candle = rows.parse(b"AAPL,1,9,1,2,1,1714993200000000000,1").unwrap();
        assert!(candle.is_inconsistent());
        // An empty trade count is no count.
        let candle = rows.parse(b"AAPL,1,1,1,1,1,1714993200000000000,").unwrap();
        assert_eq!(candle.trades(), None);
    }

    #[test]
    fn the_symbol_is_parsed_once_per_ticker_run() {
        let mut rows = parser(HEADER, Timespan::Minute);
        let a = rows.parse(b"aapl,1,1,1,1,1,0,1").unwrap();
        let b = rows.parse(b"aapl,1,1,1,1,1,60000000000,1").unwrap();
        assert_eq!(a.symbol().as_str(), "AAPL");
        assert!(std::ptr::eq(a.symbol().as_str(), b.symbol().as_str()));
        assert!(rows.parse(b"BAD TICKER,1,1,1,1,1,0,1").is_none());
        assert!(rows.parse(b"BAD TICKER,1,1,1,1,1,60000000000,1").is_none());
        assert_eq!(
            rows.parse(b"MSFT,1,1,1,1,1,0,1").unwrap().symbol().as_str(),
            "MSFT"
        );
    }

    #[test]
    fn decimals_parse_exactly_as_the_standard_parser_does() {
        let samples = [
            "0", "-0", "4930", "200.29", "0.1", "0.3", "-12.5", "1.", ".5", "007.10",
            "123456789012345", "1234567890123456", "12345678901234567890", "0.000000000000001",
            "9007199254740993", "189.53000000000003", "1e-7", "1.5E3", "2.5e+2", "+4",
            "179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ];
        for s in samples {
            let expected: f64 = s.parse().unwrap();
            assert_eq!(
                parse_f64(s.as_bytes()).map(f64::to_bits),
                Some(expected.to_bits()),
                "{s}"
            );
        }
        for s in ["", "-", ".", "1.2.3", "1,5", "abc", "--1", "1e"] {
            assert_eq!(parse_f64(s.as_bytes()), None, "{s}");
        }
        // Every shortest form ryu (and so serde_json) would print, over many magnitudes.
        let mut x: f64 = 0.000_123_456_7;
        for i in 0..20_000 {
            x = x * 1.000_731 + f64::from(i % 7) * 0.01;
            for value in [x, (x * 100.0).round() / 100.0, (x * 1e4).round() / 1e4] {
                let text = format!("{value}");
                assert_eq!(
                    parse_f64(text.as_bytes()).map(f64::to_bits),
                    Some(value.to_bits()),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), None, "20 digits");
        assert_eq!(
            parse_u64(b"1234567890123456789"),
            Some(1_234_567_890_123_456_789)
        );
        assert_eq!(
            parse_i64(b"-1714993200000000000"),
            Some(-1_714_993_200_000_000_000)
        );
        for s in ["", "-", "+1", "1.0", " 1", "1e3"] {
            assert_eq!(parse_u64(s.as_bytes()), None, "{s}");
            assert_eq!(parse_i64(s.as_bytes()), None, "{s}");
        }
    }
}
