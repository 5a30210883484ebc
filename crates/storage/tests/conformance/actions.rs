//! Corporate actions and the record of each adjusted series' last whole fetch.

use backfill_domain::{
    BackfillMode, Chosen, DateRange, Dividend, JobSpec, RangeBound, Source, Split, Timeframe,
};
use backfill_storage::{DayCompletion, DaySeries, Fetched, Storage};
use chrono::{NaiveDate, Utc};

use super::{claim_one, job_range, minute, spec, spec_with, sym, tf, LONG};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn split(symbol: &str, date: &str, from: f64, to: f64) -> Split {
    Split::new(sym(symbol), day(date), from, to).unwrap()
}

fn dividend(symbol: &str, ex: &str, cash: f64) -> Dividend {
    Dividend {
        ticker: sym(symbol),
        ex_dividend_date: day(ex),
        cash_amount: cash,
        currency: Some("USD".to_owned()),
        declaration_date: Some(day("2023-09-01")),
        record_date: None,
        pay_date: Some(day("2023-12-01")),
        frequency: Some(4),
        dividend_type: Some("CD".to_owned()),
    }
}

pub(crate) async fn splits_and_dividends_are_upserted_once_per_date(s: &dyn Storage) {
    let splits = [
        split("AAPL", "2020-08-31", 1.0, 4.0),
        split("AAPL", "2014-06-09", 1.0, 7.0),
        split("MSFT", "2003-02-18", 1.0, 2.0),
    ];
    assert_eq!(s.upsert_splits(&splits).await.unwrap(), 3);
    assert_eq!(s.upsert_splits(&splits).await.unwrap(), 0);
    // A corrected ratio replaces the stored one.
    let corrected = split("AAPL", "2014-06-09", 2.0, 14.5);
    assert_eq!(
        s.upsert_splits(std::slice::from_ref(&corrected))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.splits(&sym("AAPL")).await.unwrap(),
        vec![corrected, splits[0].clone()]
    );
    assert_eq!(
        s.splits(&sym("MSFT")).await.unwrap(),
        vec![splits[2].clone()]
    );
    assert!(s.splits(&sym("NONE")).await.unwrap().is_empty());

    let bare = Dividend {
        currency: None,
        declaration_date: None,
        pay_date: None,
        frequency: None,
        dividend_type: None,
        ..dividend("AAPL", "2023-08-11", 0.24)
    };
    let dividends = [dividend("AAPL", "2023-11-10", 0.24), bare.clone()];
    assert_eq!(s.upsert_dividends(&dividends).await.unwrap(), 2);
    assert_eq!(s.upsert_dividends(&dividends).await.unwrap(), 0);
    let raised = dividend("AAPL", "2023-11-10", 0.25);
    assert_eq!(
        s.upsert_dividends(std::slice::from_ref(&raised))
            .await
            .unwrap(),
        1
    );
    // Optional fields going from absent to present count as a change too.
    let completed = dividend("AAPL", "2023-08-11", 0.24);
    assert_eq!(
        s.upsert_dividends(std::slice::from_ref(&completed))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.dividends(&sym("AAPL")).await.unwrap(),
        vec![completed, raised]
    );
    assert_eq!(
        s.upsert_dividends(std::slice::from_ref(&bare))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.dividends(&sym("AAPL")).await.unwrap()[0], bare);
}

/// Runs a job of one task to its end, covering the job's range.
async fn run(s: &dyn Storage, spec: &JobSpec) {
    s.create_job(spec, None).await.unwrap();
    let c = claim_one(s, "w1", LONG).await;
    s.complete_task(&c.lease, &[spec.range()]).await.unwrap();
}

/// When the one adjusted series of AAPL was last fetched whole.
async fn fetched_at(s: &dyn Storage) -> chrono::DateTime<Utc> {
    let series = s.adjusted_series(&sym("AAPL")).await.unwrap();
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0].timeframe, tf());
    series[0].fetched_at.expect("a fetch is recorded")
}

pub(crate) async fn adjusted_tasks_record_when_their_series_was_fetched_whole(s: &dyn Storage) {
    let before = Utc::now();
    run(s, &spec(&["AAPL"])).await;
    let first = fetched_at(s).await;
    assert!(first >= before - chrono::TimeDelta::milliseconds(1) && first <= Utc::now());
    // Unadjusted series are not listed.
    run(s, &spec_with(&["AAPL"], false)).await;
    assert_eq!(s.adjusted_series(&sym("AAPL")).await.unwrap().len(), 1);
    // Let the clock move past the first record, so that a new one would differ.
    while Utc::now() <= first + chrono::TimeDelta::milliseconds(1) {
        tokio::task::yield_now().await;
    }
    // A `missing` job fetches only gaps: the series keeps its first record.
    run(s, &spec(&["AAPL"])).await;
    assert_eq!(fetched_at(s).await, first);
    // A `full` job over part of what the series covers does not fetch it whole either.
    let part = DateRange::from_instants(minute(0), minute(60)).unwrap();
    let full = |range: DateRange| {
        JobSpec::new(vec![sym("AAPL")], tf(), range, true, BackfillMode::Full).unwrap()
    };
    run(s, &full(part)).await;
    assert_eq!(fetched_at(s).await, first);
    // A `full` job over the whole covered range does.
    let again = Utc::now();
    run(s, &full(job_range())).await;
    let second = fetched_at(s).await;
    assert!(second > first && second >= again - chrono::TimeDelta::milliseconds(1));
}

/// A whole-market job of day bars from grouped daily (one task per weekday), adjusted unless
/// `raw`.
fn grouped_job(mode: BackfillMode, from: &str, to: &str, raw: bool) -> JobSpec {
    JobSpec::with_source(
        None,
        Timeframe::parse("1d").unwrap(),
        DateRange::new(
            RangeBound::parse(from).unwrap(),
            RangeBound::parse(to).unwrap(),
        )
        .unwrap(),
        !raw,
        mode,
        Chosen {
            source: Source::Grouped,
            reason: "asked for: grouped".to_owned(),
        },
    )
    .unwrap()
}

/// A whole-market adjusted job of day bars from grouped daily.
fn grouped(mode: BackfillMode, from: &str, to: &str) -> JobSpec {
    grouped_job(mode, from, to, false)
}

/// Ends every day task of the job just created, each covering its day for `symbols`.
async fn run_days(s: &dyn Storage, spec: &JobSpec, symbols: &[&str]) {
    s.create_job(spec, None).await.unwrap();
    for c in super::claim_all(s, "w1", LONG).await {
        let day = c.task.unit.day().expect("a day task");
        s.complete_day(
            &c.lease,
            &DayCompletion {
                covered: Some((
                    DateRange::ny_day(day),
                    DaySeries::Listed(symbols.iter().map(|s| sym(s)).collect()),
                )),
                file: None,
                note: None,
                fetched: Fetched::default(),
            },
        )
        .await
        .unwrap();
    }
}

pub(crate) async fn adjusted_day_tasks_record_when_their_series_were_fetched(s: &dyn Storage) {
    assert_eq!(s.oldest_adjusted_fetch().await.unwrap(), None);
    let before = Utc::now();
    run_days(
        s,
        &grouped(BackfillMode::Missing, "2024-01-02", "2024-01-03"),
        &["AAPL", "IBM"],
    )
    .await;
    let daily = Timeframe::parse("1d").unwrap();
    let mut first = None;
    for symbol in ["AAPL", "IBM"] {
        let series = s.adjusted_series(&sym(symbol)).await.unwrap();
        assert_eq!(series.len(), 1, "{symbol}: {series:?}");
        assert_eq!(series[0].timeframe, daily);
        let at = series[0]
            .fetched_at
            .expect("the day's series record a fetch");
        assert!(at >= before - chrono::TimeDelta::milliseconds(1) && at <= Utc::now());
        first = Some(at);
    }
    let first = first.unwrap();
    assert_eq!(s.oldest_adjusted_fetch().await.unwrap(), Some(first));
    while Utc::now() <= first + chrono::TimeDelta::milliseconds(1) {
        tokio::task::yield_now().await;
    }
    // A later day (keep-current) does not make the earlier days fresher: the record stays.
    run_days(
        s,
        &grouped(BackfillMode::Missing, "2024-01-04", "2024-01-04"),
        &["AAPL"],
    )
    .await;
    let aapl = s.adjusted_series(&sym("AAPL")).await.unwrap();
    assert_eq!(aapl[0].fetched_at, Some(first));
    // A full job over every covered day stores the series whole again.
    run_days(
        s,
        &grouped(BackfillMode::Full, "2024-01-02", "2024-01-04"),
        &["AAPL"],
    )
    .await;
    let aapl = s.adjusted_series(&sym("AAPL")).await.unwrap();
    assert!(aapl[0].fetched_at.unwrap() > first, "{aapl:?}");
    // IBM's series still holds the oldest record.
    assert_eq!(s.oldest_adjusted_fetch().await.unwrap(), Some(first));
    // Raw day tasks record nothing.
    let raw = grouped_job(BackfillMode::Missing, "2024-01-02", "2024-01-02", true);
    run_days(s, &raw, &["MSFT"]).await;
    assert!(s.adjusted_series(&sym("MSFT")).await.unwrap().is_empty());
}
