//! Candle read-back (JSON, CSV, cursor) and coverage.

use axum::http::{header, Request, StatusCode};
use backfill_domain::DateRange;
use backfill_storage::{CandlePage, MockCandleStore, MockJobRepository};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::helpers::*;

fn page(minutes: &[i64], next: Option<i64>) -> CandlePage {
    CandlePage {
        candles: minutes
            .iter()
            .map(|&m| candle(m, Some(187.1), Some(4211)))
            .collect(),
        next_cursor: next.map(|m| t0() + TimeDelta::minutes(m)),
    }
}

#[tokio::test]
async fn candles_answer_a_json_page_with_the_next_cursor() {
    let mut candles = MockCandleStore::new();
    candles
        .expect_candles()
        .withf(|q| {
            q.symbol.as_str() == "AAPL"
                && q.timeframe.to_string() == "1m"
                && q.adjusted
                && q.limit == 2
                && q.after.is_none()
                && q.range.from() == "2024-01-02T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        })
        .times(1)
        .returning(|_| Ok(page(&[0, 1], Some(1))));
    let app = app(MockJobRepository::new(), candles);
    let response = send(
        &app,
        get("/api/v1/candles/aapl?timeframe=1m&from=2024-01-02&to=2024-01-05&limit=2"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cursor = (t0() + TimeDelta::minutes(1))
        .timestamp_millis()
        .to_string();
    assert_eq!(response.headers()["x-next-cursor"], cursor.as_str());
    assert_eq!(
        response.headers()[header::LINK],
        format!(
            "</api/v1/candles/aapl?timeframe=1m&from=2024-01-02&to=2024-01-05&limit=2&cursor={cursor}>; rel=\"next\""
        )
        .as_str()
    );
    let body = body_json(response).await;
    assert_eq!(body["symbol"], "AAPL");
    assert_eq!(body["timeframe"], "1m");
    assert_eq!(body["adjusted"], true);
    assert_eq!(body["next_cursor"], cursor.as_str());
    assert_eq!(
        body["candles"][0],
        json!({
            "ts": "2024-01-02T14:30:00Z", "open": 187.15, "high": 187.4, "low": 186.9,
            "close": 187.2, "volume": 1_029_145.5, "vwap": 187.1, "trades": 4211
        })
    );
    assert_eq!(body["candles"][1]["ts"], "2024-01-02T14:31:00Z");
}

#[tokio::test]
async fn the_cursor_reads_the_next_page_and_the_last_page_has_none() {
    let after = t0() + TimeDelta::minutes(1);
    let mut candles = MockCandleStore::new();
    candles
        .expect_candles()
        .withf(move |q| q.after == Some(after) && q.limit == 1000 && !q.adjusted)
        .times(1)
        .returning(|_| Ok(page(&[2], None)));
    let app = app(MockJobRepository::new(), candles);
    let response = send(
        &app,
        get(&format!(
            "/api/v1/candles/AAPL?timeframe=1m&adjusted=false&cursor={}",
            after.timestamp_millis()
        )),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("x-next-cursor").is_none());
    assert!(response.headers().get(header::LINK).is_none());
    let body = body_json(response).await;
    assert_eq!(body["next_cursor"], json!(null));
    assert_eq!(body["adjusted"], false);
    assert_eq!(body["candles"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn accept_text_csv_answers_csv() {
    let mut candles = MockCandleStore::new();
    candles.expect_candles().times(1).returning(|_| {
        Ok(CandlePage {
            candles: vec![candle(0, Some(187.1), Some(4211)), candle(1, None, None)],
            next_cursor: Some(t0() + TimeDelta::minutes(1)),
        })
    });
    let app = app(MockJobRepository::new(), candles);
    let request = Request::get("/api/v1/candles/AAPL?timeframe=1m&limit=2")
        .header(header::ACCEPT, "text/csv")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert!(response.headers().get("x-next-cursor").is_some());
    assert!(response.headers().get(header::LINK).is_some());
    assert_eq!(
        body_text(response).await,
        "ts,open,high,low,close,volume,vwap,trades\n\
         2024-01-02T14:30:00Z,187.15,187.4,186.9,187.2,1029145.5,187.1,4211\n\
         2024-01-02T14:31:00Z,187.15,187.4,186.9,187.2,1029145.5,,\n"
    );
}

/// A store answering a series in two pages of the largest size, the cursor of the first
/// leading to the second.
fn two_pages() -> MockCandleStore {
    let mut candles = MockCandleStore::new();
    let cursor = t0() + TimeDelta::minutes(1);
    candles
        .expect_candles()
        .withf(|q| q.limit == 50_000 && q.after.is_none())
        .times(1)
        .returning(move |_| {
            Ok(CandlePage {
                candles: vec![candle(0, Some(187.1), Some(4211)), candle(1, None, None)],
                next_cursor: Some(cursor),
            })
        });
    candles
        .expect_candles()
        .withf(move |q| q.limit == 50_000 && q.after == Some(cursor))
        .times(1)
        .returning(|_| Ok(page(&[2], None)));
    candles
}

#[tokio::test]
async fn format_csv_answers_every_page_as_one_file() {
    let app = app(MockJobRepository::new(), two_pages());
    let response = send(&app, get("/api/v1/candles/AAPL?timeframe=1m&format=csv")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"AAPL_1m.csv\""
    );
    assert!(response.headers().get("x-next-cursor").is_none());
    assert_eq!(
        body_text(response).await,
        "symbol,timeframe,ts,open,high,low,close,volume,vwap,trades\n\
         AAPL,1m,2024-01-02T14:30:00Z,187.15,187.4,186.9,187.2,1029145.5,187.1,4211\n\
         AAPL,1m,2024-01-02T14:31:00Z,187.15,187.4,186.9,187.2,1029145.5,,\n\
         AAPL,1m,2024-01-02T14:32:00Z,187.15,187.4,186.9,187.2,1029145.5,187.1,4211\n"
    );
}

#[tokio::test]
async fn format_parquet_answers_a_parquet_file_of_every_page() {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let app = app(MockJobRepository::new(), two_pages());
    let response = send(
        &app,
        get("/api/v1/candles/aapl?timeframe=1m&format=parquet&from=2024-01-02"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/vnd.apache.parquet"
    );
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"AAPL_1m.parquet\""
    );
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let file = SerializedFileReader::new(bytes).unwrap();
    let meta = file.metadata().file_metadata();
    assert_eq!(meta.num_rows(), 3);
    let columns: Vec<&str> = meta
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(
        columns,
        [
            "symbol",
            "timeframe",
            "ts",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "vwap",
            "trades"
        ]
    );
}

#[tokio::test]
async fn a_failing_first_read_of_an_export_answers_an_error() {
    let mut candles = MockCandleStore::new();
    candles
        .expect_candles()
        .times(1)
        .returning(|_| Err(backfill_storage::Error::InvalidInput("no".into())));
    let app = app(MockJobRepository::new(), candles);
    expect_error(
        &app,
        get("/api/v1/candles/AAPL?timeframe=1m&format=parquet"),
        StatusCode::BAD_REQUEST,
        "invalid_input",
    )
    .await;
}

#[tokio::test]
async fn the_largest_page_is_accepted() {
    let mut candles = MockCandleStore::new();
    candles
        .expect_candles()
        .withf(|q| q.limit == 50_000)
        .times(1)
        .returning(|_| Ok(page(&[], None)));
    let app = app(MockJobRepository::new(), candles);
    let response = send(&app, get("/api/v1/candles/AAPL?timeframe=1m&limit=50000")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_candle_queries_are_400s() {
    let app = idle_app();
    for (uri, code) in [
        ("/api/v1/candles/A%20B?timeframe=1m", "invalid_symbol"),
        (
            "/api/v1/candles/%3Cscript%3E?timeframe=1m",
            "invalid_symbol",
        ),
        ("/api/v1/candles/AAPL?timeframe=7x", "invalid_timeframe"),
        ("/api/v1/candles/AAPL?timeframe=0m", "invalid_timeframe"),
        (
            "/api/v1/candles/AAPL?timeframe=1m&from=2024-13-01",
            "invalid_range",
        ),
        (
            "/api/v1/candles/AAPL?timeframe=1m&from=2024-02-01&to=2024-01-01",
            "invalid_range",
        ),
        ("/api/v1/candles/AAPL?timeframe=1m&limit=0", "invalid_limit"),
        (
            "/api/v1/candles/AAPL?timeframe=1m&limit=50001",
            "invalid_limit",
        ),
        (
            "/api/v1/candles/AAPL?timeframe=1m&cursor=abc",
            "invalid_cursor",
        ),
        (
            "/api/v1/candles/AAPL?timeframe=1m&cursor=",
            "invalid_cursor",
        ),
        (
            "/api/v1/candles/AAPL?timeframe=1m&cursor=99999999999999999999",
            "invalid_cursor",
        ),
        ("/api/v1/candles/AAPL", "invalid_query"),
        (
            "/api/v1/candles/AAPL?timeframe=1m&adjusted=maybe",
            "invalid_query",
        ),
        (
            "/api/v1/candles/AAPL?timeframe=1m&limit=ten",
            "invalid_query",
        ),
        (
            "/api/v1/candles/AAPL?timeframe=1m&format=xlsx",
            "invalid_query",
        ),
        (
            "/api/v1/candles/AAPL?timeframe=1m&format=csv&limit=10",
            "invalid_query",
        ),
        (
            "/api/v1/candles/AAPL?timeframe=1m&format=parquet&cursor=5",
            "invalid_query",
        ),
        ("/api/v1/candles/AAPL/coverage", "invalid_query"),
        (
            "/api/v1/candles/A%20B/coverage?timeframe=1m",
            "invalid_symbol",
        ),
        (
            "/api/v1/candles/AAPL/coverage?timeframe=1x",
            "invalid_timeframe",
        ),
    ] {
        expect_error(&app, get(uri), StatusCode::BAD_REQUEST, code).await;
    }
}

#[tokio::test]
async fn coverage_answers_the_stored_intervals() {
    let mut candles = MockCandleStore::new();
    candles
        .expect_coverage()
        .withf(|symbol, timeframe, adjusted| {
            symbol.as_str() == "X:BTCUSD" && timeframe.to_string() == "1d" && *adjusted
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(vec![DateRange::from_millis(
                1_704_067_200_000,
                1_704_153_599_999,
            )
            .unwrap()])
        });
    let app = app(MockJobRepository::new(), candles);
    let response = send(&app, get("/api/v1/candles/x:btcusd/coverage?timeframe=1d")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_json(response).await,
        json!({
            "symbol": "X:BTCUSD", "timeframe": "1d", "adjusted": true,
            "intervals": [{"from": "2024-01-01T00:00:00Z", "to": "2024-01-01T23:59:59.999Z"}]
        })
    );
}

#[tokio::test]
async fn input_refused_by_storage_is_a_400() {
    let mut candles = MockCandleStore::new();
    candles.expect_candles().times(1).returning(|_| {
        Err(backfill_storage::Error::InvalidInput(
            "limit must be at least 1".into(),
        ))
    });
    let app = app(MockJobRepository::new(), candles);
    expect_error(
        &app,
        get("/api/v1/candles/AAPL?timeframe=1m"),
        StatusCode::BAD_REQUEST,
        "invalid_input",
    )
    .await;
}

#[tokio::test]
async fn a_stored_series_is_read_resampled_without_a_stored_coarser_one() {
    // t0 is 09:30 New York: minutes 0..9 make the 09:30 and 09:35 five-minute bars.
    let mut candles = MockCandleStore::new();
    candles
        .expect_candles()
        .withf(|q| q.timeframe.to_string() == "1m" && q.limit == 50_000)
        .times(1)
        .returning(|_| Ok(page(&(0..10).collect::<Vec<_>>(), None)));
    let app = app(MockJobRepository::new(), candles);
    let body = body_json(
        send(
            &app,
            get("/api/v1/candles/AAPL?timeframe=5m&resample_from=1m&hours=regular"),
        )
        .await,
    )
    .await;
    assert_eq!(body["timeframe"], "5m");
    let bars = body["candles"].as_array().unwrap();
    assert_eq!(bars.len(), 2);
    assert_eq!(bars[0]["ts"], "2024-01-02T14:30:00Z");
    assert_eq!(bars[1]["ts"], "2024-01-02T14:35:00Z");
    let one = candle(0, Some(187.1), Some(4211));
    assert_eq!(bars[0]["volume"], one.volume() * 5.0);
    assert_eq!(bars[0]["trades"], 4211 * 5);
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_resampled_series_is_exported_as_a_file() {
    let mut candles = MockCandleStore::new();
    candles
        .expect_candles()
        .withf(|q| q.timeframe.to_string() == "1m")
        .times(1)
        .returning(|_| Ok(page(&(0..10).collect::<Vec<_>>(), None)));
    let app = app(MockJobRepository::new(), candles);
    let response = send(
        &app,
        get("/api/v1/candles/AAPL?timeframe=5m&resample_from=1m&format=csv"),
    )
    .await;
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"AAPL_5m.csv\""
    );
    let text = body_text(response).await;
    let starts: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(starts, ["2024-01-02T14:30:00Z", "2024-01-02T14:35:00Z"]);
    assert!(
        text.lines().skip(1).all(|l| l.starts_with("AAPL,5m,")),
        "{text}"
    );
}

#[tokio::test]
async fn impossible_resamplings_and_stray_hours_are_400s() {
    let app = idle_app();
    let error = expect_error(
        &app,
        get("/api/v1/candles/AAPL?timeframe=7m&resample_from=1m"),
        StatusCode::BAD_REQUEST,
        "invalid_timeframe",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("divide a day"));
    expect_error(
        &app,
        get("/api/v1/candles/AAPL?timeframe=1d&resample_from=1d&hours=regular"),
        StatusCode::BAD_REQUEST,
        "invalid_timeframe",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/candles/AAPL?timeframe=1m&hours=regular"),
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/candles/AAPL?timeframe=5m&resample_from=1m&hours=lunch"),
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn the_quality_report_counts_gaps_in_the_covered_session() {
    // Covered: 09:30 to 09:39 New York; bars at 09:30-09:34 and 09:37-09:39.
    let covered = DateRange::from_instants(t0(), t0() + TimeDelta::minutes(9)).unwrap();
    let mut candles = MockCandleStore::new();
    candles
        .expect_coverage()
        .returning(move |_, _, _| Ok(vec![covered]));
    candles
        .expect_candles()
        .withf(|q| q.timeframe.to_string() == "1m")
        .returning(|_| Ok(page(&[0, 1, 2, 3, 4, 7, 8, 9], None)));
    candles
        .expect_candles()
        .withf(|q| q.timeframe.to_string() == "1d")
        .returning(|_| Ok(page(&[], None)));
    let app = app(MockJobRepository::new(), candles);
    let body = body_json(
        send(
            &app,
            get("/api/v1/candles/AAPL/quality?timeframe=1m&from=2024-01-02&to=2024-01-02"),
        )
        .await,
    )
    .await;
    assert_eq!(body["bars"], 8);
    assert_eq!(body["days"]["covered"], 1);
    assert_eq!(body["session_gaps"]["regular_minutes"], 10);
    assert_eq!(body["session_gaps"]["regular_missing"], 2);
    assert_eq!(
        body["session_gaps"]["longest_gaps"][0],
        json!({"from": "2024-01-02T14:35:00Z", "to": "2024-01-02T14:36:00Z", "minutes": 2})
    );
    assert_eq!(body["ohlc"]["violations"], 0);
    assert_eq!(body["day_agreement"], serde_json::Value::Null);
}
