//! Pages of candles: checking a page before it is stored, and cutting reads into pages.

use backfill_domain::Candle;

use crate::error::{Error, Result};
use crate::rows::CandleValues;
use crate::types::{CandlePage, CandleQuery};

/// Checks that every candle belongs to the task's series and returns them sorted by time with
/// repeats removed (the last one of a timestamp wins).
pub(crate) fn prepare_page<'a>(
    candles: &'a [Candle],
    symbol: &str,
    timeframe: &str,
) -> Result<Vec<&'a Candle>> {
    for c in candles {
        if c.symbol().as_str() != symbol {
            return Err(Error::InvalidInput(format!(
                "candle of {} in a page of {symbol}",
                c.symbol()
            )));
        }
        if c.trades().is_some_and(|n| i64::try_from(n).is_err()) {
            return Err(Error::InvalidInput(format!(
                "{} at {}: trade count too large",
                c.symbol(),
                c.ts()
            )));
        }
    }
    if let Some(c) = candles.first() {
        // A page holds one series, so one timeframe; comparing the text once per page is enough
        // after checking that all candles agree.
        if c.timeframe().to_string() != timeframe {
            return Err(Error::InvalidInput(format!(
                "candle of timeframe {} in a page of {timeframe}",
                c.timeframe()
            )));
        }
        if candles.iter().any(|x| x.timeframe() != c.timeframe()) {
            return Err(Error::InvalidInput(
                "candles of several timeframes in one page".into(),
            ));
        }
    }
    Ok(sorted_without_repeats(candles.iter().collect()))
}

/// The candles sorted by time, each timestamp once (the last of its candles wins).
fn sorted_without_repeats(mut page: Vec<&Candle>) -> Vec<&Candle> {
    if !page.windows(2).all(|w| w[0].ts() <= w[1].ts()) {
        // Stable, so that among equal timestamps the later candle stays later.
        page.sort_by_key(|c| c.ts());
    }
    let mut out: Vec<&Candle> = Vec::with_capacity(page.len());
    for c in page {
        match out.last_mut() {
            Some(last) if last.ts() == c.ts() => *last = c,
            _ => out.push(c),
        }
    }
    out
}

/// The candles of one symbol in a page of a day task's rows.
pub(crate) type Group<'a> = (&'a backfill_domain::Symbol, Vec<&'a Candle>);

/// Checks a page of a day task's rows (every candle of the job's `timeframe`, trade counts that
/// fit) and groups it by symbol, in symbol order, each group sorted by time without repeats.
pub(crate) fn prepare_rows<'a>(candles: &'a [Candle], timeframe: &str) -> Result<Vec<Group<'a>>> {
    if let Some(c) = candles.first() {
        if c.timeframe().to_string() != timeframe {
            return Err(Error::InvalidInput(format!(
                "candle of timeframe {} in a day of {timeframe}",
                c.timeframe()
            )));
        }
    }
    for c in candles {
        if candles
            .first()
            .is_some_and(|f| f.timeframe() != c.timeframe())
        {
            return Err(Error::InvalidInput(
                "candles of several timeframes in one page".into(),
            ));
        }
        if c.trades().is_some_and(|n| i64::try_from(n).is_err()) {
            return Err(Error::InvalidInput(format!(
                "{} at {}: trade count too large",
                c.symbol(),
                c.ts()
            )));
        }
    }
    let mut rows: Vec<&Candle> = candles.iter().collect();
    // Files come sorted by ticker and then time: sort only when they are not.
    if !rows
        .windows(2)
        .all(|w| (w[0].symbol(), w[0].ts()) <= (w[1].symbol(), w[1].ts()))
    {
        rows.sort_by(|a, b| a.symbol().cmp(b.symbol()));
    }
    let mut groups: Vec<Group<'a>> = Vec::new();
    for c in rows {
        match groups.last_mut() {
            Some((symbol, group)) if *symbol == c.symbol() => group.push(c),
            _ => groups.push((c.symbol(), vec![c])),
        }
    }
    for (_, group) in &mut groups {
        *group = sorted_without_repeats(std::mem::take(group));
    }
    Ok(groups)
}

/// A page of candles from up to `limit + 1` rows read in time order: the extra row only tells
/// that there is a next page.
pub(crate) fn candle_page(mut rows: Vec<CandleValues>, query: &CandleQuery) -> Result<CandlePage> {
    let limit = query.limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|r| r.ts)
    } else {
        None
    };
    let candles = rows
        .into_iter()
        .map(|r| r.into_candle(&query.symbol, query.timeframe))
        .collect::<Result<Vec<_>>>()?;
    Ok(CandlePage {
        candles,
        next_cursor,
    })
}

/// Fails with [`Error::InvalidInput`] unless `1 <= limit <= MAX_LIMIT`.
pub(crate) fn check_limit(limit: u32) -> Result<()> {
    if limit == 0 || limit > CandleQuery::MAX_LIMIT {
        return Err(Error::InvalidInput(format!(
            "limit must be between 1 and {}, got {limit}",
            CandleQuery::MAX_LIMIT
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use backfill_domain::{Ohlcv, Symbol, Timeframe};
    use chrono::DateTime;

    use super::*;

    fn symbol(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn candle(sym: &str, minute: i64, close: f64) -> Candle {
        Candle::new(
            symbol(sym),
            Timeframe::parse("1m").unwrap(),
            DateTime::from_timestamp_millis(1_700_000_000_000 + minute * 60_000).unwrap(),
            Ohlcv {
                open: 1.0,
                high: 2.0,
                low: 0.5,
                close,
                volume: 10.0,
                vwap: None,
                trades: Some(3),
            },
        )
        .unwrap()
    }

    #[test]
    fn page_is_sorted_and_deduped_last_wins() {
        let page = [
            candle("AAPL", 2, 1.0),
            candle("AAPL", 0, 1.0),
            candle("AAPL", 2, 9.0),
            candle("AAPL", 1, 1.0),
        ];
        let out = prepare_page(&page, "AAPL", "1m").unwrap();
        let got: Vec<(i64, f64)> = out
            .iter()
            .map(|c| {
                (
                    (c.ts().timestamp_millis() - 1_700_000_000_000) / 60_000,
                    c.close(),
                )
            })
            .collect();
        assert_eq!(got, [(0, 1.0), (1, 1.0), (2, 9.0)]);
    }

    #[test]
    fn rows_are_grouped_by_symbol_sorted_and_deduped() {
        let rows = [
            candle("MSFT", 1, 1.0),
            candle("AAPL", 2, 1.0),
            candle("MSFT", 0, 1.0),
            candle("AAPL", 2, 7.0),
            candle("AAPL", 1, 1.0),
        ];
        let groups = prepare_rows(&rows, "1m").unwrap();
        let got: Vec<(&str, Vec<(i64, f64)>)> = groups
            .iter()
            .map(|(s, g)| {
                let bars = g
                    .iter()
                    .map(|c| {
                        (
                            (c.ts().timestamp_millis() - 1_700_000_000_000) / 60_000,
                            c.close(),
                        )
                    })
                    .collect();
                (s.as_str(), bars)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("AAPL", vec![(1, 1.0), (2, 7.0)]),
                ("MSFT", vec![(0, 1.0), (1, 1.0)])
            ]
        );
        assert!(matches!(
            prepare_rows(&rows, "1d"),
            Err(Error::InvalidInput(m)) if m.contains("timeframe")
        ));
    }

    #[test]
    fn page_of_another_series_is_rejected() {
        let page = [candle("AAPL", 0, 1.0), candle("MSFT", 1, 1.0)];
        assert!(matches!(
            prepare_page(&page, "AAPL", "1m"),
            Err(Error::InvalidInput(m)) if m.contains("MSFT")
        ));
        assert!(matches!(
            prepare_page(&page[..1], "AAPL", "5m"),
            Err(Error::InvalidInput(_))
        ));
    }
}
