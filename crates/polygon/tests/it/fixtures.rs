//! Every recorded aggregates body parses to the candles it holds, field by field, and every
//! recorded error body becomes the right typed error.

use std::time::Duration;

use backfill_domain::{Symbol, Timeframe};
use backfill_polygon::{decode_aggregates, decode_grouped, DecodedPage, Error};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/polygon-fixtures/"
);

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn decode(name: &str, status: u16) -> Result<DecodedPage, Error> {
    decode_aggregates(
        status,
        None,
        &read(name),
        &Symbol::parse("AAPL").unwrap(),
        Timeframe::parse("1d").unwrap(),
    )
}

/// `(t, o, h, l, c, v, vw, n)` as written in the fixture.
type Bar = (i64, f64, f64, f64, f64, f64, Option<f64>, Option<u64>);

const PY_RANGE: &[Bar] = &[
    (
        1_112_331_600_000,
        1.5032,
        1.5064,
        1.4489,
        1.4604,
        642_646_396.0,
        Some(1.469),
        Some(82_132),
    ),
    (
        1_112_587_200_000,
        1.4639,
        1.4754,
        1.4343,
        1.4675,
        578_172_308.0,
        Some(1.4589),
        Some(65_543),
    ),
];
const SPEC_RANGE: &[Bar] = &[
    (
        1_577_941_200_000,
        74.06,
        75.15,
        73.7975,
        75.0875,
        135_647_456.0,
        Some(74.6099),
        Some(1),
    ),
    (
        1_578_027_600_000,
        74.2875,
        75.145,
        74.125,
        74.3575,
        146_535_512.0,
        Some(74.7026),
        Some(1),
    ),
];
const GROUPED: &[Bar] = &[
    (
        1_602_705_600_000,
        26.07,
        26.25,
        25.91,
        25.9102,
        4_369.0,
        Some(26.0407),
        Some(74),
    ),
    (
        1_602_705_600_000,
        24.5,
        24.763,
        22.65,
        23.4,
        25_933.6,
        Some(23.493),
        Some(1_096),
    ),
    (
        1_602_705_600_000,
        34.9,
        35.47,
        34.21,
        34.24,
        312_583.0,
        Some(34.4736),
        Some(4_966),
    ),
];

/// A fixture file, its bars, its `next_url` and its `status`.
type Fixture = (
    &'static str,
    Vec<Bar>,
    Option<&'static str>,
    Option<&'static str>,
);

fn aggregates_fixtures() -> Vec<Fixture> {
    vec![
        ("client-python__v2_aggs_ticker_AAPL_range_1_day_2005-04-01_2005-04-04.json", PY_RANGE.to_vec(), None, Some("OK")),
        ("client-python__v2_aggs_ticker_AAPL_range_1_day_2005-04-02_2005-04-04.json", PY_RANGE.to_vec(), None, Some("OK")),
        (
            "client-python__v2_aggs_ticker_AAPL_prev.json",
            vec![(1_651_003_200_000, 162.25, 162.34, 156.72, 156.8, 95_595_226.0, Some(158.6074), Some(899_965))],
            None,
            Some("OK"),
        ),
        (
            "client-python__v2_aggs_grouped_locale_us_market_stocks_2005-04-04__q_adjusted-true.json",
            vec![(1_602_705_600_000, 9.99, 10.02, 9.9, 10.02, 895_345.0, Some(9.9979), Some(96))],
            None,
            Some("OK"),
        ),
        (
            "client-go__v2_aggs_ticker_AAPL_range_1_day_1626912000000_1629590400000__q_adjusted-true_limit-2_sort-desc.json",
            SPEC_RANGE.to_vec(),
            Some("https://api.massive.com/v2/aggs/ticker/AAPL/range/1/day/1626912000000/1629590400000?cursor=AGGSCURSOR"),
            Some("OK"),
        ),
        ("client-go__v2_aggs_ticker_AAPL_range_1_day_1626912000000_1629590400000__q_cursor-AGGSCURSOR.json", vec![], None, None),
        ("client-go__v2_aggs_grouped_locale_us_market_stocks_2021-07-22.json", GROUPED.to_vec(), None, Some("OK")),
        (
            "client-go__v2_aggs_ticker_AAPL_prev.json",
            vec![(1_605_042_000_000, 115.55, 117.59, 114.13, 115.97, 131_704_427.0, Some(116.3058), None)],
            None,
            Some("OK"),
        ),
        (
            "client-python-openapi__v2_aggs_ticker_stocksTicker_range__200_example.json",
            SPEC_RANGE.to_vec(),
            Some("https://api.massive.com/v2/aggs/ticker/AAPL/range/1/day/1578114000000/2020-01-10?cursor=bGltaXQ9MiZzb3J0PWFzYw"),
            Some("OK"),
        ),
        ("client-python-openapi__v2_aggs_grouped_locale_us_market_stocks_date__200_example.json", GROUPED.to_vec(), None, Some("OK")),
        ("issue__polygon-io_issues_2__ok_results_null.json", vec![], None, Some("OK")),
        (
            "thirdparty-capture__v2_aggs_ticker_NVDA_range_1_day__status_DELAYED.json",
            vec![(1_728_878_400_000, 136.47, 139.6, 136.3, 138.07, 224_602_526.0, Some(138.3656), Some(1_590_531))],
            None,
            Some("DELAYED"),
        ),
    ]
}

#[test]
fn every_aggregates_fixture_parses_to_its_candles_field_by_field() {
    for (name, bars, next_url, status) in aggregates_fixtures() {
        let page = decode(name, 200).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(page.invalid_bars, 0, "{name}");
        assert_eq!(page.candles.len(), bars.len(), "{name}");
        for (candle, (t, o, h, l, c, v, vw, n)) in page.candles.iter().zip(bars) {
            assert_eq!(candle.ts().timestamp_millis(), t, "{name}: t");
            assert_eq!(candle.open(), o, "{name}: o");
            assert_eq!(candle.high(), h, "{name}: h");
            assert_eq!(candle.low(), l, "{name}: l");
            assert_eq!(candle.close(), c, "{name}: c");
            assert_eq!(candle.volume(), v, "{name}: v");
            assert_eq!(candle.vwap(), vw, "{name}: vw");
            assert_eq!(candle.trades(), n, "{name}: n");
            assert_eq!(candle.symbol().as_str(), "AAPL");
        }
        assert_eq!(page.next_url.as_deref(), next_url, "{name}");
        assert_eq!(page.status.as_deref(), status, "{name}");
    }
}

#[test]
fn the_table_covers_every_aggregates_fixture_on_disk() {
    let listed: Vec<&str> = aggregates_fixtures().iter().map(|f| f.0).collect();
    let mut seen = 0;
    for entry in std::fs::read_dir(DIR).expect("../shared/polygon-fixtures exists") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.contains("v2_aggs") || name.contains("results_null") || name.contains("DELAYED") {
            assert!(listed.contains(&name.as_str()), "{name} has no expectation");
            seen += 1;
        }
    }
    assert_eq!(seen, listed.len());
}

#[test]
fn error_fixtures_become_typed_errors_carrying_their_text() {
    let to_before_from = "issue__massive-com_client-python_888__error_to_before_from.json";
    assert_eq!(
        decode(to_before_from, 400).unwrap_err(),
        Error::BadRequest {
            message: "The parameter 'to' cannot be a time that occurs before 'from'".to_owned()
        }
    );
    let no_key = "issue__polygon-io_issues_219__400_error_api_key_not_provided.json";
    assert_eq!(
        decode(no_key, 400).unwrap_err(),
        Error::BadRequest {
            message: "API Key was not provided".to_owned()
        }
    );
    assert_eq!(
        decode(no_key, 401).unwrap_err(),
        Error::Unauthorized {
            message: "API Key was not provided".to_owned()
        }
    );
    let not_authorized = "issue__maybe-finance_maybe_152__not_authorized.json";
    let text =
        "You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing";
    for status in [403, 200] {
        assert_eq!(
            decode(not_authorized, status).unwrap_err(),
            Error::NotEntitled {
                status,
                message: text.to_owned()
            }
        );
    }
    let not_found = "client-go__iter_test_TestListResourceError__404.json";
    let err = decode(not_found, 404).unwrap_err();
    assert_eq!(
        err,
        Error::NotFound {
            message: "resource not found".to_owned()
        }
    );
    assert!(err.is_permanent());
    // The same error text on a 2xx is still an error.
    assert!(matches!(
        decode(to_before_from, 200),
        Err(Error::BadRequest { .. })
    ));
    // A rate-limit answer keeps its Retry-After.
    let err = decode_aggregates(
        429,
        Some(Duration::from_secs(12)),
        &read(no_key),
        &Symbol::parse("AAPL").unwrap(),
        Timeframe::parse("1d").unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(12)));
    assert!(err.is_transient());
}

#[test]
fn no_fixture_makes_the_decoder_fail_other_than_with_a_typed_error() {
    for entry in std::fs::read_dir(DIR).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".json") {
            continue;
        }
        for status in [200, 404, 500] {
            // Any outcome is fine as long as it is a value, not a panic.
            let _ = decode(&name, status);
        }
        // Bodies that are not aggregates do not pretend to be.
        if name.contains("marketstatus_upcoming") {
            assert!(matches!(decode(&name, 200), Err(Error::Decode { .. })));
        }
        if name.contains("v3_reference_tickers") {
            let page = decode(&name, 200).unwrap();
            assert!(page.candles.is_empty());
            assert_eq!(page.invalid_bars, 2, "ticker records are not bars");
        }
    }
}

/// Every recorded grouped daily body: each ticker's bar, stamped with New York midnight of the
/// requested date (the aggregates endpoint's stamp for day bars), whatever `t` the body carries.
#[test]
fn grouped_daily_bodies_become_day_bars_at_new_york_midnight() {
    let cases = [
        (
            "client-go__v2_aggs_grouped_locale_us_market_stocks_2021-07-22.json",
            "2021-07-22",
            vec![
                ("KIMPL", 26.07, 25.9102, 4_369.0, Some(74)),
                ("TANH", 24.5, 23.4, 25_933.6, Some(1_096)),
                ("VSAT", 34.9, 34.24, 312_583.0, Some(4_966)),
            ],
        ),
        (
            "client-python__v2_aggs_grouped_locale_us_market_stocks_2005-04-04__q_adjusted-true.json",
            "2005-04-04",
            vec![("GIK", 9.99, 10.02, 895_345.0, Some(96))],
        ),
        (
            "client-python-openapi__v2_aggs_grouped_locale_us_market_stocks_date__200_example.json",
            "2020-10-14",
            vec![
                ("KIMPL", 26.07, 25.9102, 4_369.0, Some(74)),
                ("TANH", 24.5, 23.4, 25_933.6, Some(1_096)),
                ("VSAT", 34.9, 34.24, 312_583.0, Some(4_966)),
            ],
        ),
    ];
    for (name, date, expected) in cases {
        let day: chrono::NaiveDate = date.parse().unwrap();
        let page = decode_grouped(200, None, &read(name), day).unwrap();
        assert_eq!(page.invalid_bars, 0, "{name}");
        assert_eq!(page.adjusted, Some(true), "{name}");
        let midnight = backfill_domain::DateRange::ny_day(day).from();
        let got: Vec<(&str, f64, f64, f64, Option<u64>)> = page
            .candles
            .iter()
            .map(|c| {
                assert_eq!(c.ts(), midnight, "{name}");
                assert_eq!(c.timeframe(), Timeframe::parse("1d").unwrap());
                (
                    c.symbol().as_str(),
                    c.open(),
                    c.close(),
                    c.volume(),
                    c.trades(),
                )
            })
            .collect();
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn a_grouped_day_without_results_is_empty_and_errors_are_typed() {
    let day: chrono::NaiveDate = "2020-01-01".parse().unwrap();
    let page = decode_grouped(
        200,
        None,
        &read("issue__polygon-io_issues_2__ok_results_null.json"),
        day,
    )
    .unwrap();
    assert!(page.candles.is_empty());
    let err = decode_grouped(
        401,
        None,
        &read("issue__polygon-io_issues_219__400_error_api_key_not_provided.json"),
        day,
    )
    .unwrap_err();
    assert!(err.is_permanent(), "{err}");
    let err = decode_grouped(200, None, b"<html>oops</html>", day).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }));
}
