//! Splitting a range into requests of at most 50,000 base aggregates.

use backfill_domain::{DateRange, Timeframe, Timespan};

/// Polygon's largest `limit`, in base aggregates.
pub(crate) const MAX_BASE_AGGREGATES: i64 = 50_000;

/// The `index`-th chunk of `range`, or `None` past the end.
///
/// Each chunk spans at most 50,000 base aggregates of round-the-clock trading, including the part
/// of a bar before the chunk that Polygon adds when it snaps `from` down to a bar start. For
/// second, minute and hour bars the chunk bounds after the first are aligned to bar starts, so no
/// bar straddles two chunks. Day and longer bars are built from day bars, so a chunk spans
/// 50,000 days (137 years): one chunk in practice.
pub(crate) fn chunk(range: &DateRange, timeframe: Timeframe, index: u32) -> Option<DateRange> {
    let (anchor, len) = plan(range, timeframe);
    let index = i64::from(index);
    let start = if index == 0 {
        range.from_ms()
    } else {
        anchor.checked_add(index.checked_mul(len)?)?
    };
    if start > range.to_ms() {
        return None;
    }
    let end = anchor
        .checked_add((index + 1).checked_mul(len)?)
        .map_or(range.to_ms(), |next| (next - 1).min(range.to_ms()));
    DateRange::from_millis(start, end).ok()
}

/// Where chunk bounds are counted from and how long a chunk is, in milliseconds.
fn plan(range: &DateRange, timeframe: Timeframe) -> (i64, i64) {
    let base = timeframe.base().duration().num_milliseconds();
    let budget = MAX_BASE_AGGREGATES * base;
    match (timeframe.timespan(), timeframe.duration()) {
        (Timespan::Second | Timespan::Minute | Timespan::Hour, Some(bar)) => {
            let bar = bar.num_milliseconds().max(1);
            let bars = ((budget - bar) / bar).max(1);
            let from = range.from_ms();
            (from - from.rem_euclid(bar), bars * bar)
        }
        _ => (range.from_ms(), budget),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(range: &DateRange, tf: Timeframe) -> Vec<DateRange> {
        (0..).map_while(|i| chunk(range, tf, i)).collect()
    }

    #[test]
    fn chunks_cover_the_range_exactly_within_the_limit() {
        let ranges = [
            DateRange::from_millis(1_600_000_012_345, 1_700_000_000_000).unwrap(),
            DateRange::from_millis(0, 0).unwrap(),
            DateRange::from_millis(1_000, 100_000_000).unwrap(),
        ];
        for range in ranges {
            for tf in [
                "1s", "30s", "1m", "5m", "1h", "4h", "1000h", "1d", "1w", "1mo", "1y",
            ] {
                let tf = Timeframe::parse(tf).unwrap();
                let all = chunks(&range, tf);
                assert!(!all.is_empty());
                assert_eq!(all[0].from(), range.from());
                assert_eq!(all[all.len() - 1].to(), range.to());
                for w in all.windows(2) {
                    assert_eq!(w[0].to_ms() + 1, w[1].from_ms(), "{tf}");
                }
                let base = tf.base().duration().num_milliseconds();
                let bar = tf.duration().map_or(0, |d| d.num_milliseconds());
                for c in &all {
                    let snapped = match tf.timespan() {
                        Timespan::Second | Timespan::Minute | Timespan::Hour => {
                            c.from_ms() - c.from_ms().rem_euclid(bar)
                        }
                        _ => c.from_ms(),
                    };
                    let span = c.to_ms() - snapped + 1;
                    assert!(
                        span <= (MAX_BASE_AGGREGATES * base).max(bar),
                        "{tf}: {span} ms"
                    );
                }
            }
        }
    }

    #[test]
    fn minute_chunks_are_about_35_days_and_aligned() {
        let range = DateRange::from_millis(1_600_000_012_345, 1_610_000_000_000).unwrap();
        let tf = Timeframe::parse("5m").unwrap();
        let all = chunks(&range, tf);
        // 49,995 minutes a chunk, in whole five-minute bars.
        assert_eq!(all[1].len_ms(), 49_995 * 60_000);
        assert_eq!(all[1].from_ms() % 300_000, 0);
        assert_eq!(all.len(), 4);
    }
}
