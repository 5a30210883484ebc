//! Corporate actions end to end, on PostgreSQL against the simulator: an adjusted backfill,
//! a split that appears after it, the refresh that finds the series stale, the fix job that
//! fetches it again (then the candles are the simulator's new adjusted series), and the raw
//! series read adjusted on the fly, equal to the adjusted fetch within the simulator's
//! rounding.

use backfill_domain::{new_york_date, Candle, DateRange, RangeBound, Symbol, Timeframe};
use backfill_polygon_sim::{RunningSimulator, SimConfig, Simulator};
use chrono::Utc;
use serde_json::{json, Value};

use crate::helpers::{backfill, eventually, stderr, ServeProcess, TestDb};

const KEY: &str = "e2e-actions-polygon-key";
const FROM: &str = "2024-03-01";
const TO: &str = "2024-03-29";

async fn get(client: &reqwest::Client, url: String) -> Value {
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp.json().await.unwrap()
}

async fn post(client: &reqwest::Client, url: String) -> (u16, Value) {
    let resp = client.post(&url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Waits until a job succeeds.
async fn finished(client: &reqwest::Client, server: &ServeProcess, id: &str) {
    let url = server.url(&format!("/api/v1/backfill/status/{id}"));
    let status = eventually(90, "the job to end", || async {
        let body = get(client, url.clone()).await;
        let status = body["job"]["status"].as_str().unwrap().to_owned();
        (status != "queued" && status != "running").then_some(status)
    })
    .await;
    assert_eq!(status, "succeeded");
}

/// Backfills AAPL's day bars of March 2024, adjusted or raw, and waits for the job.
async fn backfill_days(client: &reqwest::Client, server: &ServeProcess, adjusted: bool) {
    let resp = client
        .post(server.url("/api/v1/backfill"))
        .json(&json!({
            "symbols": ["AAPL"], "timeframe": "1d", "from": FROM, "to": TO,
            "adjusted": adjusted, "mode": "missing"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    finished(client, server, body["job"]["id"].as_str().unwrap()).await;
}

/// Every stored candle of the month, as the API answers them.
async fn candles(client: &reqwest::Client, server: &ServeProcess, query: &str) -> Vec<Value> {
    let body = get(
        client,
        server.url(&format!(
            "/api/v1/candles/AAPL?timeframe=1d&from={FROM}&to={TO}&limit=1000&{query}"
        )),
    )
    .await;
    assert_eq!(body["next_cursor"], Value::Null);
    body["candles"].as_array().unwrap().clone()
}

/// Checks rows against the simulator's candles: prices within `price`, volumes within
/// `volume`, trades equal.
fn assert_close(rows: &[Value], expected: &[Candle], price: f64, volume: f64) {
    assert_eq!(rows.len(), expected.len());
    assert!(!rows.is_empty());
    for (row, want) in rows.iter().zip(expected) {
        assert_eq!(
            row["ts"].as_str().unwrap(),
            want.ts()
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        );
        let near = |key: &str, value: f64, tolerance: f64| {
            let got = row[key].as_f64().unwrap();
            assert!(
                (got - value).abs() <= tolerance,
                "{key}: {got} vs {value} ({row})"
            );
        };
        near("open", want.open(), price);
        near("high", want.high(), price);
        near("low", want.low(), price);
        near("close", want.close(), price);
        near("vwap", want.vwap().unwrap(), price);
        near("volume", want.volume(), volume);
        assert_eq!(row["trades"].as_u64(), want.trades(), "{row}");
    }
}

/// A fresh database, the simulator, and `backfill serve` over both (with its directory).
async fn serve() -> (TestDb, RunningSimulator, tempfile::TempDir, ServeProcess) {
    let db = TestDb::create().await;
    let sim = Simulator::new(SimConfig::new().api_key(KEY))
        .spawn("127.0.0.1:0")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(
        dir.path(),
        &[
            ("DATABASE_URL", &db.url),
            ("POLYGON_API_KEY", KEY),
            ("POLYGON_BASE_URL", sim.base_url()),
        ],
        &[],
    );
    (db, sim, dir, server)
}

/// Dates AAPL's adjusted fetches three days back and splits AAPL 4-for-1 today (returned): a
/// split after the fetch.
async fn split_after_the_fetch(db: &TestDb, sim: &RunningSimulator) -> chrono::NaiveDate {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::Executor::execute(
        &mut conn,
        "UPDATE series SET adjusted_fetched_at = adjusted_fetched_at - interval '3 days' \
         WHERE symbol = 'AAPL' AND adjusted",
    )
    .await
    .unwrap();
    let today = new_york_date(Utc::now());
    sim.add_split("AAPL", today, 1.0, 4.0);
    today
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_after_an_adjusted_backfill_is_found_and_fixed() {
    let (db, sim, dir, server) = serve().await;
    let client = reqwest::Client::new();
    let actions = server.url("/api/v1/corporate-actions/AAPL");
    backfill_days(&client, &server, true).await;
    backfill_days(&client, &server, false).await;

    // The simulated split of 2012 was reflected by the fetch: nothing is stale.
    let (status, body) = post(&client, format!("{actions}/refresh")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["splits"].as_array().unwrap().len(), 1);
    assert_eq!(body["changed"]["splits"], 1);
    assert_eq!(body["stale"], json!([]));
    assert_eq!(body["series"][0]["timeframe"], "1d");

    // Days pass (the fetch is dated three days back), and AAPL splits 4-for-1 today.
    let today = split_after_the_fetch(&db, &sim).await;
    let (status, body) = post(&client, format!("{actions}/refresh")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"]["splits"], 1);
    assert_eq!(body["stale"], json!(["1d"]));
    assert_eq!(
        body["series"][0]["stale_since"]["execution_date"],
        today.to_string()
    );

    // The CLI says so, and offers the fix; the fix is a full adjusted job.
    let show = backfill(dir.path())
        .args(["actions", "show", "aapl", "--server", &server.base_url])
        .output()
        .unwrap();
    assert!(show.status.success(), "{}", stderr(&show));
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("STALE since the split of"), "{text}");
    let fix = backfill(dir.path())
        .args([
            "actions",
            "fix",
            "AAPL",
            "--server",
            &server.base_url,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(fix.status.success(), "{}", stderr(&fix));
    let fix: Value = serde_json::from_slice(&fix.stdout).unwrap();
    let job = fix["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(fix["jobs"].as_array().unwrap().len(), 1);
    let status = get(
        &client,
        server.url(&format!("/api/v1/backfill/status/{job}")),
    )
    .await;
    assert_eq!(status["job"]["mode"], "full");
    assert_eq!(status["job"]["adjusted"], true);
    finished(&client, &server, &job).await;

    // Fixed: not stale, and the stored adjusted series is the simulator's new one.
    let body = get(&client, actions.clone()).await;
    assert_eq!(body["stale"], json!([]), "{body}");
    let aapl = Symbol::parse("AAPL").unwrap();
    let range = DateRange::new(
        RangeBound::parse(FROM).unwrap(),
        RangeBound::parse(TO).unwrap(),
    )
    .unwrap();
    let adjusted = sim.expected_candles(&aapl, Timeframe::parse("1d").unwrap(), &range, true);
    assert_close(&candles(&client, &server, "").await, &adjusted, 1e-9, 1e-9);
    // The split divided March's prices by four.
    let before: Vec<Candle> =
        sim.expected_candles(&aapl, Timeframe::parse("1d").unwrap(), &range, false);
    assert!((before[0].close() / 4.0 - adjusted[0].close()).abs() < 1e-4);

    // The raw series read adjusted on the fly: the simulator rounds prices to 1e-4 at each
    // scale and volumes to whole shares, so the two agree within 1e-4 and 4 shares (the
    // ratio); trade counts are equal.
    let on_the_fly = candles(&client, &server, "adjusted=false&adjust=splits").await;
    assert_close(&on_the_fly, &adjusted, 1e-4, 4.0);
    let raw = candles(&client, &server, "adjusted=false").await;
    assert_close(&raw, &before, 1e-9, 1e-9);

    // A bad symbol is named by the CLI.
    let out = backfill(dir.path())
        .args([
            "actions",
            "show",
            "BAD TICKER",
            "--server",
            &server.base_url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("BAD TICKER"), "{}", stderr(&out));

    server.terminate();
    db.drop_db().await;
}

/// A schedule keeps AAPL's adjusted day bars current; AAPL splits after they were fetched; the
/// schedule's next run finds the split and fetches the series again, once, with no one asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fetches_again_the_series_a_split_made_stale() {
    let (db, sim, _dir, server) = serve().await;
    let client = reqwest::Client::new();
    backfill_days(&client, &server, true).await;

    // Days pass (the fetch is dated three days back), and AAPL splits 4-for-1 today.
    let today = split_after_the_fetch(&db, &sim).await;

    // A schedule that runs every second keeps the series current.
    let created = client
        .post(server.url("/api/v1/schedules"))
        .json(&json!({
            "name": "aapl-daily", "symbols": ["AAPL"], "timeframes": ["1d"],
            "adjusted": true, "trigger": "* * * * * *", "lookback_days": 1
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());

    // Its run's split check stores the split and creates the full adjusted job of AAPL.
    let recent = server.url("/api/v1/backfill/recent?limit=100");
    let full_jobs = |body: &Value| -> Vec<String> {
        body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["job"]["mode"] == "full")
            .map(|j| j["job"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let job = eventually(60, "the split watch's job", || async {
        let body = get(&client, recent.clone()).await;
        full_jobs(&body).into_iter().next()
    })
    .await;
    let status = get(
        &client,
        server.url(&format!("/api/v1/backfill/status/{job}")),
    )
    .await;
    assert_eq!(status["job"]["adjusted"], true);
    assert_eq!(status["job"]["symbols"], json!(["AAPL"]));
    assert!(
        status["job"]["range"]["from"]
            .as_str()
            .unwrap()
            .starts_with(FROM),
        "{status}"
    );
    finished(&client, &server, &job).await;

    // Fixed: nothing stale, the split stored, March on the new basis.
    let actions = get(&client, server.url("/api/v1/corporate-actions/AAPL")).await;
    assert_eq!(actions["stale"], json!([]), "{actions}");
    assert!(actions["splits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["execution_date"] == today.to_string()));
    let range = DateRange::new(
        RangeBound::parse(FROM).unwrap(),
        RangeBound::parse(TO).unwrap(),
    )
    .unwrap();
    let aapl = Symbol::parse("AAPL").unwrap();
    let adjusted = sim.expected_candles(&aapl, Timeframe::parse("1d").unwrap(), &range, true);
    assert_close(&candles(&client, &server, "").await, &adjusted, 1e-9, 1e-9);

    // Runs go on every second; none makes a second job for the split.
    let runs = |body: Value| body["runs"].as_u64().unwrap();
    let schedule = server.url("/api/v1/schedules/aapl-daily");
    let seen = runs(get(&client, schedule.clone()).await);
    eventually(60, "three more runs", || async {
        (runs(get(&client, schedule.clone()).await) >= seen + 3).then_some(())
    })
    .await;
    let (status, _) = post(&client, format!("{schedule}/pause")).await;
    assert_eq!(status, 200);
    assert_eq!(full_jobs(&get(&client, recent.clone()).await), [job]);

    server.terminate();
    db.drop_db().await;
}
