use chrono::{DateTime, TimeDelta, Utc};

use backfill_domain::{BackfillMode, DateRange};

/// The intervals a task still has to fetch.
///
/// In `missing` mode the coverage already stored for the series is subtracted; in `full` mode
/// the whole range is fetched again. Either way, a task resumed after a crash skips everything at
/// or before its checkpoint.
pub fn intervals_to_fetch(
    range: DateRange,
    mode: BackfillMode,
    coverage: &[DateRange],
    checkpoint: Option<DateTime<Utc>>,
) -> Vec<DateRange> {
    let wanted = match checkpoint {
        Some(cp) if cp >= range.to() => return Vec::new(),
        Some(cp) if cp >= range.from() => {
            match DateRange::from_instants(cp + TimeDelta::milliseconds(1), range.to()) {
                Ok(rest) => rest,
                Err(_) => return Vec::new(),
            }
        }
        _ => range,
    };
    match mode {
        BackfillMode::Full => vec![wanted],
        BackfillMode::Missing => wanted.subtract(coverage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: i64, b: i64) -> DateRange {
        DateRange::from_millis(a, b).unwrap()
    }

    fn at(ms: i64) -> DateTime<Utc> {
        r(ms, ms).from()
    }

    #[test]
    fn full_mode_fetches_everything_despite_coverage() {
        let got = intervals_to_fetch(r(0, 100), BackfillMode::Full, &[r(0, 50)], None);
        assert_eq!(got, vec![r(0, 100)]);
    }

    #[test]
    fn missing_mode_fetches_only_the_gaps() {
        let got = intervals_to_fetch(
            r(0, 100),
            BackfillMode::Missing,
            &[r(10, 20), r(60, 70)],
            None,
        );
        assert_eq!(got, vec![r(0, 9), r(21, 59), r(71, 100)]);
    }

    #[test]
    fn resumes_after_the_checkpoint() {
        let got = intervals_to_fetch(r(0, 100), BackfillMode::Missing, &[r(60, 70)], Some(at(30)));
        assert_eq!(got, vec![r(31, 59), r(71, 100)]);
        let got = intervals_to_fetch(r(0, 100), BackfillMode::Full, &[], Some(at(100)));
        assert!(got.is_empty());
        let got = intervals_to_fetch(r(10, 100), BackfillMode::Full, &[], Some(at(5)));
        assert_eq!(got, vec![r(10, 100)]);
    }
}
