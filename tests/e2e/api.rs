//! `backfill serve` over real HTTP, on PostgreSQL and on SQLite, against the simulator: post a
//! job, follow its progress stream to the end, read the candles back and page through them, and
//! check every JSON answer against the served OpenAPI document.

use std::time::Duration;

use backfill_domain::{DateRange, RangeBound, Symbol, Timeframe};
use backfill_polygon_sim::{RunningSimulator, SimConfig, Simulator};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{assert_matches_openapi, ServeProcess, TestDb};

const KEY: &str = "e2e-secret-polygon-key";

async fn sim() -> RunningSimulator {
    Simulator::new(SimConfig::new().api_key(KEY).max_page_size(700))
        .spawn("127.0.0.1:0")
        .await
        .unwrap()
}

/// One Server-Sent Event.
#[derive(Debug)]
struct Event {
    name: String,
    data: Value,
}

/// Reads a progress stream until the server closes it.
async fn follow(client: &reqwest::Client, url: &str) -> Vec<Event> {
    let resp = client
        .get(url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    events.push(Event {
                        name,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(90), read)
        .await
        .expect("the stream ends when the job does");
    events
}

async fn scenario(envs: &[(&str, &str)], sim: &RunningSimulator) {
    let dir = tempfile::tempdir().unwrap();
    let mut envs = envs.to_vec();
    envs.extend([
        ("POLYGON_API_KEY", KEY),
        ("POLYGON_BASE_URL", sim.base_url()),
    ]);
    let server = ServeProcess::spawn(dir.path(), &envs, &[]);
    let client = reqwest::Client::new();
    let doc: Value = client
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));

    let resp = client
        .post(server.url("/api/v1/backfill"))
        .json(&json!({
            "symbols": ["aapl", "X:BTCUSD", "AAPL"],
            "timeframe": {"multiplier": 5, "timespan": "minute"},
            "from": "2024-03-01",
            "to": "2024-03-08",
            "adjusted": true,
            "mode": "missing"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    assert_matches_openapi(&doc, "/api/v1/backfill", "post", 202, &created);
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/backfill/status/{job_id}"));
    assert_eq!(created["job"]["symbols"], json!(["AAPL", "X:BTCUSD"]));

    // Follow the job live to its end.
    let events = follow(
        &client,
        &server.url(&format!("/api/v1/backfill/{job_id}/events")),
    )
    .await;
    let last = events.last().expect("events");
    assert_eq!(last.name, "done", "{events:?}");
    let mut percent = 0.0;
    for e in &events {
        assert_matches_openapi(
            &doc,
            "/api/v1/backfill/status/{job_id}",
            "get",
            200,
            &e.data,
        );
        let p = e.data["progress"]["percent"].as_f64().unwrap();
        assert!(p >= percent, "progress went backwards: {p} < {percent}");
        percent = p;
    }
    assert_eq!(last.data["job"]["status"], "succeeded");
    assert_eq!(percent, 100.0);

    let resp = client.get(server.url(&location)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let status: Value = resp.json().await.unwrap();
    assert_matches_openapi(
        &doc,
        "/api/v1/backfill/status/{job_id}",
        "get",
        200,
        &status,
    );

    // Read every candle back, page by page, and compare with what the simulator serves.
    let range = DateRange::new(
        RangeBound::parse("2024-03-01").unwrap(),
        RangeBound::parse("2024-03-08").unwrap(),
    )
    .unwrap();
    let tf = Timeframe::parse("5m").unwrap();
    let mut total = 0;
    for symbol in ["AAPL", "X:BTCUSD"] {
        let expected = sim.expected_candles(&Symbol::parse(symbol).unwrap(), tf, &range, true);
        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut req = client
                .get(server.url(&format!("/api/v1/candles/{symbol}")))
                .query(&[
                    ("timeframe", "5m"),
                    ("from", "2024-03-01"),
                    ("to", "2024-03-08"),
                    ("adjusted", "true"),
                    ("limit", "500"),
                ]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let page: Value = resp.json().await.unwrap();
            assert_matches_openapi(&doc, "/api/v1/candles/{symbol}", "get", 200, &page);
            pages += 1;
            got.extend(page["candles"].as_array().unwrap().clone());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert!(pages > 2, "{symbol}: paged {pages} times");
        assert_eq!(got.len(), expected.len(), "{symbol}");
        for (row, want) in got.iter().zip(&expected) {
            let ts: chrono::DateTime<chrono::Utc> = row["ts"].as_str().unwrap().parse().unwrap();
            assert_eq!(ts, want.ts());
            assert_eq!(row["open"].as_f64(), Some(want.open()));
            assert_eq!(row["high"].as_f64(), Some(want.high()));
            assert_eq!(row["low"].as_f64(), Some(want.low()));
            assert_eq!(row["close"].as_f64(), Some(want.close()));
            assert_eq!(row["volume"].as_f64(), Some(want.volume()));
            assert_eq!(row["vwap"].as_f64(), want.vwap());
            assert_eq!(row["trades"].as_u64(), want.trades());
        }
        total += expected.len();

        // The same candles as CSV: a header and one line each.
        let csv = client
            .get(server.url(&format!("/api/v1/candles/{symbol}")))
            .query(&[
                ("timeframe", "5m"),
                ("from", "2024-03-01"),
                ("to", "2024-03-08"),
                ("limit", "50000"),
            ])
            .header("accept", "text/csv")
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), 200);
        assert!(csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let text = csv.text().await.unwrap();
        assert_eq!(text.lines().count(), expected.len() + 1);
        assert!(text.starts_with("ts,open,high,low,close,volume,vwap,trades"));

        let coverage: Value = client
            .get(server.url(&format!("/api/v1/candles/{symbol}/coverage")))
            .query(&[("timeframe", "5m")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_matches_openapi(
            &doc,
            "/api/v1/candles/{symbol}/coverage",
            "get",
            200,
            &coverage,
        );
        assert_eq!(coverage["intervals"].as_array().unwrap().len(), 1);
    }
    assert_eq!(status["progress"]["candles_stored"], total);

    let recent: Value = client
        .get(server.url("/api/v1/backfill/recent?limit=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_matches_openapi(&doc, "/api/v1/backfill/recent", "get", 200, &recent);
    assert_eq!(recent["jobs"][0]["job"]["id"], job_id.as_str());

    // Bad input answers 4xx in the error shape that the document describes.
    let resp = client
        .post(server.url("/api/v1/backfill"))
        .json(&json!({"symbols": ["<img src=x onerror=alert(1)>"], "timeframe": "1m", "from": "2024-01-01", "to": "2024-01-02"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_matches_openapi(&doc, "/api/v1/backfill", "post", 400, &err);
    assert_eq!(err["error"]["code"], "invalid_symbol");

    // Prometheus metrics of the whole process: jobs by status, the worker's and the API's.
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "backfill_jobs{status=\"succeeded\"}",
        "backfill_candles_stored_total",
        "backfill_pages_stored_total",
        "backfill_task_duration_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    // The Polygon key never appears in any answer or log line.
    let everything = format!("{created}{status}{recent}{:?}", server.log());
    assert!(!everything.contains(KEY));
    server.terminate();
}

#[test]
fn serve_runs_a_job_end_to_end_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = TestDb::create().await;
        let sim = sim().await;
        scenario(&[("DATABASE_URL", &db.url)], &sim).await;
        db.drop_db().await;
    });
}

#[test]
fn serve_runs_a_job_end_to_end_on_sqlite() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sim = sim().await;
        // No DATABASE_URL: the embedded SQLite file in the working directory.
        scenario(&[], &sim).await;
    });
}

#[test]
fn the_schema_check_rejects_answers_that_break_the_document() {
    let doc = serde_json::to_value(backfill_api::openapi()).unwrap();
    let wrong = json!({"job": {"id": 5}, "progress": {}, "tasks": "none"});
    let outcome = std::panic::catch_unwind(|| {
        assert_matches_openapi(&doc, "/api/v1/backfill/status/{job_id}", "get", 200, &wrong);
    });
    assert!(
        outcome.is_err(),
        "a wrong body must not pass the schema check"
    );
    let outcome = std::panic::catch_unwind(|| {
        assert_matches_openapi(&doc, "/api/v1/nowhere", "get", 200, &wrong);
    });
    assert!(
        outcome.is_err(),
        "an undocumented route must not pass either"
    );
}
