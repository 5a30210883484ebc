//! `backfill export` and `GET /api/v1/candles/{symbol}?format=...` on a demo backfill: the
//! Parquet and CSV files, read back by the real readers (pyarrow and polars, run by python3),
//! hold exactly the stored candles. Without python3, pyarrow or polars the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use backfill_domain::{DateRange, RangeBound, Symbol, Timeframe};
use backfill_storage::sqlite::SqliteStorage;
use backfill_storage::{CandleQuery, SeriesPages, SeriesRead};
use serde::Deserialize;

use crate::helpers::{backfill, stderr, ServeProcess};

/// One row as the readers give it back: symbol, timeframe, start in Unix milliseconds, open,
/// high, low, close, volume, vwap, trades.
type Row = (
    String,
    String,
    i64,
    f64,
    f64,
    f64,
    f64,
    f64,
    Option<f64>,
    Option<u64>,
);

/// Reads each path given as `KIND=PATH` (KIND: parquet, csv, or dataset for a directory of Hive
/// partitions) with pyarrow and with polars, and prints `{"PATH": {"pyarrow": rows, "polars":
/// rows}}`, each row a list in the order of [`Row`], ordered by symbol and time.
const READ_BACK: &str = r#"
import json, sys
import pyarrow as pa, pyarrow.csv, pyarrow.dataset, pyarrow.parquet
import polars as pl

COLUMNS = ["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "vwap", "trades"]

def from_arrow(table):
    table = table.select(COLUMNS)
    ts = table.column("ts")
    if ts.type.unit != "ms":
        ts = ts.cast(pa.timestamp("ms", tz="UTC"))
    table = table.set_column(2, "ts", ts.cast(pa.int64()))
    rows = [[r[c] for c in COLUMNS] for r in table.to_pylist()]
    return sorted(rows, key=lambda r: (r[0], r[2]))

def from_polars(df):
    df = df.select(COLUMNS).with_columns(pl.col("ts").dt.epoch("ms"))
    return sorted((list(r) for r in df.iter_rows()), key=lambda r: (r[0], r[2]))

out = {}
for arg in sys.argv[1:]:
    kind, path = arg.split("=", 1)
    if kind == "parquet":
        arrow = pa.parquet.read_table(path)
        polars = pl.read_parquet(path)
    elif kind == "csv":
        arrow = pa.csv.read_csv(path)
        polars = pl.read_csv(path, try_parse_dates=True)
    elif kind == "dataset":
        arrow = pa.dataset.dataset(path, format="parquet", partitioning="hive").to_table()
        polars = pl.read_parquet(path + "/**/*.parquet", hive_partitioning=True)
    else:
        raise SystemExit("unknown kind " + kind)
    out[arg] = {"pyarrow": from_arrow(arrow), "polars": from_polars(polars)}
print(json.dumps(out))
"#;

#[derive(Deserialize)]
struct ReadBack {
    pyarrow: Vec<Row>,
    polars: Vec<Row>,
}

/// Runs [`READ_BACK`] on the files; fails when python3, pyarrow or polars is missing.
fn read_back(files: &[String]) -> std::collections::HashMap<String, ReadBack> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(READ_BACK)
        .args(files)
        .output()
        .expect("python3 runs (pyarrow and polars must be installed: see .ci/run)");
    assert!(
        out.status.success(),
        "python3 could not read the exports back (are pyarrow and polars installed?): {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = backfill(dir).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every stored candle of the series, read from the database page by page.
async fn stored(db: &Path, symbols: &[&str], range: DateRange) -> Vec<Row> {
    let storage = SqliteStorage::open(db).await.unwrap();
    let mut rows = Vec::new();
    for symbol in symbols {
        let mut pages = SeriesPages::new(SeriesRead::Stored(CandleQuery {
            symbol: Symbol::parse(symbol).unwrap(),
            timeframe: Timeframe::parse("1m").unwrap(),
            adjusted: true,
            range,
            limit: 1_000,
            after: None,
        }));
        while let Some(page) = pages.next(&storage).await.unwrap() {
            rows.extend(page.iter().map(|c| {
                (
                    c.symbol().to_string(),
                    c.timeframe().to_string(),
                    c.ts().timestamp_millis(),
                    c.open(),
                    c.high(),
                    c.low(),
                    c.close(),
                    c.volume(),
                    c.vwap(),
                    c.trades(),
                )
            }));
        }
    }
    rows
}

/// The files under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn exports_read_back_by_pyarrow_and_polars_hold_the_stored_candles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Across a month's end, so that partitions split by month.
    let (from, to) = ("2024-01-30", "2024-02-01");
    run(
        d,
        &[
            "run", "AAPL", "MSFT", "-t", "1m", "--from", from, "--to", to, "--demo",
        ],
    );
    let range = DateRange::new(
        RangeBound::parse(from).unwrap(),
        RangeBound::parse(to).unwrap(),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let both = rt.block_on(stored(
        &d.join("backfill-demo.db"),
        &["AAPL", "MSFT"],
        range,
    ));
    let aapl: Vec<Row> = both.iter().filter(|r| r.0 == "AAPL").cloned().collect();
    assert!(aapl.len() > 1_000 && both.len() > aapl.len());
    let export = |format: &str, out: &str| {
        run(
            d,
            &[
                "export", "AAPL", "MSFT", "-t", "1m", "--from", from, "--to", to, "--demo",
                "--format", format, "--out", out,
            ],
        )
    };

    // Partitions by symbol and month, and one file.
    let printed = export("parquet", "parquet");
    assert!(
        printed.contains(&format!("{} rows written to 4 parquet files", both.len())),
        "{printed}"
    );
    assert_eq!(
        files_under(&d.join("parquet")),
        [
            "symbol=AAPL/month=2024-01/part-0.parquet",
            "symbol=AAPL/month=2024-02/part-0.parquet",
            "symbol=MSFT/month=2024-01/part-0.parquet",
            "symbol=MSFT/month=2024-02/part-0.parquet",
        ]
    );
    let printed = export("csv", "csv");
    assert!(printed.contains("written to 4 csv files"), "{printed}");
    let printed = export("csv", "all.csv");
    assert!(
        printed.contains(&format!("{} rows written to 1 csv file", both.len())),
        "{printed}"
    );
    export("parquet", "all.parquet");

    // The API streams one symbol's range as one file.
    let server = ServeProcess::spawn(d, &[], &["--demo", "--no-worker"]);
    let client = reqwest::Client::new();
    rt.block_on(async {
        for (format, content_type) in [
            ("parquet", "application/vnd.apache.parquet"),
            ("csv", "text/csv; charset=utf-8"),
        ] {
            let resp = client
                .get(server.url(&format!(
                    "/api/v1/candles/AAPL?timeframe=1m&from={from}&to={to}&format={format}"
                )))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-type"], content_type);
            assert_eq!(
                resp.headers()["content-disposition"],
                format!("attachment; filename=\"AAPL_1m.{format}\"").as_str()
            );
            let bytes = resp.bytes().await.unwrap();
            std::fs::write(d.join(format!("api.{format}")), bytes).unwrap();
        }
        let resp = client
            .get(server.url("/api/v1/candles/AAPL?timeframe=1m&format=xlsx"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_query");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("xlsx"),
            "{body}"
        );
    });
    server.terminate();

    let path = |p: &str| d.join(p).display().to_string();
    let mut files: Vec<(String, Vec<Row>)> = vec![
        (format!("dataset={}", path("parquet")), both.clone()),
        (format!("parquet={}", path("all.parquet")), both.clone()),
        (format!("csv={}", path("all.csv")), both.clone()),
        (format!("parquet={}", path("api.parquet")), aapl.clone()),
        (format!("csv={}", path("api.csv")), aapl),
    ];
    // Each partition holds its symbol's bars of its month (UTC).
    for part in files_under(&d.join("parquet")) {
        let (symbol, month) = (&part[7..11], &part[18..25]);
        let rows: Vec<Row> = both
            .iter()
            .filter(|r| {
                let start = chrono::DateTime::from_timestamp_millis(r.2).unwrap();
                r.0 == symbol && start.format("%Y-%m").to_string() == month
            })
            .cloned()
            .collect();
        let csv = part.replace(".parquet", ".csv");
        files.push((format!("csv={}", path(&format!("csv/{csv}"))), rows.clone()));
        files.push((
            format!("parquet={}", path(&format!("parquet/{part}"))),
            rows,
        ));
    }
    let names: Vec<String> = files.iter().map(|(f, _)| f.clone()).collect();
    let read = read_back(&names);
    for (name, want) in &files {
        let got = &read[name];
        assert_eq!(got.pyarrow.len(), want.len(), "{name} (pyarrow)");
        assert!(got.pyarrow == *want, "{name}: pyarrow reads other rows");
        assert_eq!(got.polars.len(), want.len(), "{name} (polars)");
        assert!(got.polars == *want, "{name}: polars reads other rows");
    }
}

#[test]
fn export_names_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = backfill(dir.path())
        .args(["export", "AAPL", "--format", "xlsx", "--out", "x", "--demo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("xlsx"), "{}", stderr(&out));
    let out = backfill(dir.path())
        .args([
            "export", "AAPL", "--format", "parquet", "--out", "x.csv", "--demo",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("x.csv"), "{}", stderr(&out));
}
