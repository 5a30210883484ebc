//! The Flat Files client under the simulator's faults: cut downloads are resumed with exact
//! results, transient failures are retried within the budget, and a download out of retries
//! can be resumed later with `skip_rows`.

use std::time::Duration;

use backfill_polygon::{Dataset, DayFile, Error, FlatFiles, FlatFilesClient, FlatFilesConfig};
use backfill_polygon_sim::{Dataset as SimDataset, Fault, SimConfig};
use futures::StreamExt;

use crate::helpers::{files_client, files_config, read_file, start_files, FILE_DAY};

/// Faults for the bucket's objects only.
const OBJECTS: &str = "/flatfiles/";

async fn minute_file(client: &FlatFilesClient) -> DayFile {
    client
        .day_file(Dataset::MinuteAggs, FILE_DAY)
        .await
        .unwrap()
        .expect("the file exists")
}

/// Reads the minute file with `faults` served to its GETs and checks the result is exact.
async fn resumed_and_exact(faults: Vec<Fault>, skip_rows: u64) -> FlatFilesClient {
    let sim = start_files(SimConfig::new().market(40)).await;
    let client = files_client(&sim, 1_000);
    let file = minute_file(&client).await;
    let expected = sim.flat_file_rows(SimDataset::MinuteAggs, FILE_DAY);
    sim.reset_stats();
    sim.inject_on(OBJECTS, faults.clone());
    let (candles, pages) = read_file(&client, &file, skip_rows)
        .await
        .unwrap_or_else(|e| panic!("{faults:?}: {e}"));
    assert_eq!(candles, expected[skip_rows as usize..], "{faults:?}");
    assert_eq!(pages.last().unwrap().rows_done, expected.len() as u64);
    // Every GET is counted once on the pages, every byte once: no byte was downloaded twice.
    let gets = 1 + faults.len() as u64;
    let requests: u32 = pages.iter().map(|p| p.requests).sum();
    assert_eq!(u64::from(requests), gets, "{faults:?}");
    assert_eq!(sim.stats().total(), gets);
    assert_eq!(pages.iter().map(|p| p.bytes).sum::<u64>(), file.size);
    assert_eq!(sim.stats().s3_bytes_served, file.size);
    let stats = client.stats();
    assert_eq!(stats.gets, gets);
    assert_eq!(stats.retries, faults.len() as u64);
    assert_eq!(stats.bytes, file.size);
    client
}

#[tokio::test]
async fn a_download_cut_mid_body_is_resumed_with_exact_results() {
    let client = resumed_and_exact(vec![Fault::AbortedBody], 0).await;
    let stats = client.stats();
    assert_eq!((stats.resumes, stats.transport_errors), (1, 1));
}

#[tokio::test]
async fn a_cut_download_after_skipped_rows_is_resumed_with_exact_results() {
    resumed_and_exact(vec![Fault::AbortedBody], 1_234).await;
}

#[tokio::test]
async fn a_body_that_ends_early_is_resumed_with_exact_results() {
    // A response that is well framed but shorter than the file.
    let client = resumed_and_exact(vec![Fault::TruncatedJson], 0).await;
    assert_eq!(client.stats().resumes, 1);
}

#[tokio::test]
async fn several_failures_in_a_row_are_survived_with_exact_results() {
    let faults = vec![
        Fault::AbortedBody,
        Fault::Status(503),
        Fault::RateLimited { retry_after: None },
        Fault::Status(500),
        Fault::AbortedBody,
        Fault::TruncatedJson,
        Fault::AbortedBody,
    ];
    resumed_and_exact(faults, 0).await;
}

#[tokio::test]
async fn a_download_out_of_retries_fails_transiently_and_resumes_later_with_skip_rows() {
    let sim = start_files(SimConfig::new().market(40)).await;
    let client = FlatFilesClient::new(FlatFilesConfig {
        max_retries: 2,
        ..files_config(&sim, 1_000)
    })
    .unwrap();
    let file = minute_file(&client).await;
    let expected = sim.flat_file_rows(SimDataset::MinuteAggs, FILE_DAY);
    sim.reset_stats();
    sim.inject_on(
        OBJECTS,
        [
            Fault::AbortedBody,
            Fault::Status(503),
            Fault::Status(503),
            Fault::Status(503),
        ],
    );
    let mut stream = client.pages(&file, 0).await.unwrap();
    let mut candles = Vec::new();
    let mut rows_done = 0;
    let error = loop {
        match stream.next().await.expect("the stream ends with the error") {
            Ok(page) => {
                rows_done = page.rows_done;
                candles.extend(page.candles);
            }
            Err(error) => break error,
        }
    };
    assert!(stream.next().await.is_none(), "nothing after the error");
    assert!(
        matches!(error, Error::Server { status: 503, .. }),
        "{error}"
    );
    assert!(error.is_transient());
    assert_eq!(sim.stats().total(), 3, "one GET, then two retries");
    assert_eq!(candles, expected[..candles.len()], "what came is exact");
    assert_eq!(rows_done, candles.len() as u64);
    assert!(rows_done < expected.len() as u64);

    // Later, the rest of the file after the rows already stored.
    let (rest, _) = read_file(&client, &file, rows_done).await.unwrap();
    candles.extend(rest);
    assert_eq!(candles, expected);
}

#[tokio::test]
async fn server_errors_and_slow_answers_to_a_head_are_retried() {
    let sim = start_files(SimConfig::new().market(5)).await;
    let client = FlatFilesClient::new(FlatFilesConfig {
        request_timeout: Duration::from_millis(300),
        ..files_config(&sim, 100)
    })
    .unwrap();
    sim.inject_on(
        OBJECTS,
        [
            Fault::Status(500),
            Fault::RateLimited { retry_after: None },
            Fault::Slow(Duration::from_secs(60)),
        ],
    );
    let file = client.day_file(Dataset::DayAggs, FILE_DAY).await.unwrap();
    assert!(file.is_some());
    let stats = client.stats();
    assert_eq!((stats.heads, stats.retries, stats.timeouts), (4, 3, 1));
}

#[tokio::test]
async fn retries_of_a_head_stop_at_the_attempt_budget() {
    let sim = start_files(SimConfig::new().market(5)).await;
    let client = FlatFilesClient::new(FlatFilesConfig {
        max_retries: 3,
        ..files_config(&sim, 100)
    })
    .unwrap();
    sim.inject_on(OBJECTS, std::iter::repeat_n(Fault::Status(502), 10));
    let err = client
        .day_file(Dataset::DayAggs, FILE_DAY)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Server { status: 502, .. }), "{err}");
    assert!(err.is_transient());
    assert_eq!(sim.stats().total(), 4, "one attempt and three retries");
}

#[tokio::test]
async fn a_missing_file_is_not_retried() {
    let sim = start_files(SimConfig::new().market(5)).await;
    let client = files_client(&sim, 100);
    sim.inject_on(OBJECTS, [Fault::Status(404)]);
    let file = client.day_file(Dataset::DayAggs, FILE_DAY).await;
    assert_eq!(file, Ok(None));
    assert_eq!(sim.stats().total(), 1);
}
