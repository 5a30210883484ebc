//! The Flat Files client against the simulator's S3 bucket: exact content, pages, skipping,
//! missing days and revised files.

use backfill_domain::{Candle, DateRange, Symbol, Timeframe};
use backfill_polygon::{Dataset, DayFile, Error, FilePage, FlatFiles, FlatFilesClient};
use backfill_polygon_sim::{Dataset as SimDataset, SimConfig};
use chrono::NaiveDate;
use futures::StreamExt;

use crate::helpers::{
    files_client, files_config, read_file, start_files, FILE_DAY, ONE_DAY, S3_KEY_ID, S3_SECRET,
};

fn sim_dataset(dataset: Dataset) -> SimDataset {
    match dataset {
        Dataset::MinuteAggs => SimDataset::MinuteAggs,
        Dataset::DayAggs => SimDataset::DayAggs,
    }
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// Checks a file read whole against the simulator, row for row and ticker by ticker.
async fn check_exact_file(dataset: Dataset, tickers: usize, page_rows: usize) {
    let sim = start_files(SimConfig::new().market(tickers)).await;
    let client = FlatFilesClient::new(files_config(&sim, page_rows)).unwrap();
    let file = client.day_file(dataset, FILE_DAY).await.unwrap().unwrap();
    let served = {
        let sim = sim.simulator().clone();
        let dataset = sim_dataset(dataset);
        tokio::task::spawn_blocking(move || sim.flat_file(dataset, FILE_DAY))
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(file.key, served.key());
    assert_eq!(file.etag, served.etag());
    assert_eq!(file.size, served.bytes().len() as u64);
    assert_eq!((file.dataset, file.day), (dataset, FILE_DAY));

    let (candles, pages) = read_file(&client, &file, 0).await.unwrap();
    let expected = sim.flat_file_rows(sim_dataset(dataset), FILE_DAY);
    assert!(expected.len() > page_rows, "several pages");
    assert_same(&candles, &expected);
    // Ticker by ticker, the file holds what the aggregates endpoint serves (unadjusted, no vwap).
    let range = DateRange::from_millis(ONE_DAY.0, ONE_DAY.1).unwrap();
    let timeframe = dataset.timeframe();
    let mut tickers_seen = 0;
    for ticker in sim.market_tickers() {
        let symbol = Symbol::parse(ticker).unwrap();
        let rest: Vec<Candle> = sim
            .expected_candles(&symbol, timeframe, &range, false)
            .into_iter()
            .map(without_vwap)
            .collect();
        let from_file: Vec<Candle> = candles
            .iter()
            .filter(|c| c.symbol() == &symbol)
            .cloned()
            .collect();
        assert_same(&from_file, &rest);
        tickers_seen += usize::from(!rest.is_empty());
    }
    assert!(tickers_seen > tickers / 2, "most tickers traded");
    assert!(candles.iter().all(|c| c.timeframe() == timeframe));

    check_pages(&pages, page_rows, expected.len() as u64, file.size);
    assert_eq!(pages.iter().map(|p| p.requests).sum::<u32>(), 1);
    let stats = client.stats();
    assert_eq!((stats.heads, stats.gets, stats.retries), (1, 1, 0));
    assert_eq!(stats.bytes, file.size);
    assert_eq!((stats.files, stats.candles), (1, expected.len() as u64));
    assert_eq!(sim.stats().s3_bytes_served, file.size);
}

/// What every read of a whole file promises: pages of at most `page_rows` candles, all full but
/// the last, rows counted up to the file's rows, offsets growing to the file's end, and every
/// byte downloaded counted once.
fn check_pages(pages: &[FilePage], page_rows: usize, rows: u64, size: u64) {
    let last = pages.last().expect("at least one page");
    for page in &pages[..pages.len() - 1] {
        assert_eq!(page.candles.len(), page_rows, "only the last page is short");
    }
    assert!(last.candles.len() <= page_rows);
    assert_eq!(last.rows_done, rows);
    assert!(pages.windows(2).all(|w| w[0].rows_done < w[1].rows_done));
    assert!(pages.windows(2).all(|w| w[0].offset <= w[1].offset));
    assert_eq!(last.offset, size);
    assert_eq!(pages.iter().map(|p| p.bytes).sum::<u64>(), size);
    assert!(pages.iter().all(|p| p.dropped == 0));
}

fn without_vwap(candle: Candle) -> Candle {
    let mut values = *candle.values();
    values.vwap = None;
    Candle::new(
        candle.symbol().clone(),
        candle.timeframe(),
        candle.ts(),
        values,
    )
    .unwrap()
}

fn assert_same(actual: &[Candle], expected: &[Candle]) {
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "candle {i} differs");
    }
    assert_eq!(actual.len(), expected.len(), "candle counts differ");
}

#[tokio::test]
async fn a_minute_file_holds_exactly_the_simulators_candles() {
    check_exact_file(Dataset::MinuteAggs, 40, 1_000).await;
}

#[tokio::test]
async fn a_day_file_holds_exactly_the_simulators_candles() {
    check_exact_file(Dataset::DayAggs, 300, 64).await;
}

#[tokio::test]
async fn pages_hold_at_most_page_rows_candles() {
    let sim = start_files(SimConfig::new().market(30)).await;
    let rows = sim.flat_file_rows(SimDataset::MinuteAggs, FILE_DAY).len();
    for page_rows in [1, 777, rows, rows + 1, 50_000] {
        let client = FlatFilesClient::new(files_config(&sim, page_rows)).unwrap();
        let file = client
            .day_file(Dataset::MinuteAggs, FILE_DAY)
            .await
            .unwrap()
            .unwrap();
        let (candles, pages) = read_file(&client, &file, 0).await.unwrap();
        assert_eq!(candles.len(), rows);
        assert_eq!(pages.len(), rows.div_ceil(page_rows), "{page_rows}");
        check_pages(&pages, page_rows, rows as u64, file.size);
    }
}

#[tokio::test]
async fn skip_rows_resumes_exactly_after_the_rows_already_read() {
    let sim = start_files(SimConfig::new().market(25)).await;
    let client = files_client(&sim, 500);
    let file = client
        .day_file(Dataset::MinuteAggs, FILE_DAY)
        .await
        .unwrap()
        .unwrap();
    let (all, pages) = read_file(&client, &file, 0).await.unwrap();
    let total = all.len() as u64;
    // Resuming after any page gives exactly the rest, with rows counted from the file's start.
    let after_pages: Vec<u64> = pages.iter().map(|p| p.rows_done).take(3).collect();
    for skip in [0, 1, 499, total - 1, total, total + 10]
        .into_iter()
        .chain(after_pages)
    {
        let (rest, pages) = read_file(&client, &file, skip).await.unwrap();
        let from = skip.min(total) as usize;
        assert_same(&rest, &all[from..]);
        assert_eq!(pages.last().unwrap().rows_done, total, "skip {skip}");
        assert!(pages.iter().all(|p| p.candles.len() <= 500));
        if skip < total {
            assert_eq!(pages[0].rows_done, (skip + 500).min(total), "skip {skip}");
        } else {
            assert_eq!(
                pages.len(),
                1,
                "one empty page ends a file read past its end"
            );
            assert!(pages[0].candles.is_empty());
        }
    }
}

#[tokio::test]
async fn days_without_a_file_are_none() {
    let holiday = date("2024-05-08");
    let sim = start_files(
        SimConfig::new()
            .market(5)
            .holiday(holiday)
            .flat_files_from(date("2024-01-02"))
            .published_through(date("2024-05-09")),
    )
    .await;
    let client = files_client(&sim, 100);
    for (day, why) in [
        ("2024-05-04", "a Saturday"),
        ("2024-05-05", "a Sunday"),
        ("2024-05-08", "a holiday"),
        ("2024-05-10", "not published yet"),
        ("2023-12-29", "before the first file"),
    ] {
        for dataset in [Dataset::MinuteAggs, Dataset::DayAggs] {
            let file = client.day_file(dataset, date(day)).await;
            assert_eq!(file, Ok(None), "{day}: {why}");
        }
    }
    assert!(client
        .day_file(Dataset::DayAggs, date("2024-05-09"))
        .await
        .unwrap()
        .is_some());
    let stats = client.stats();
    assert_eq!((stats.heads, stats.retries), (11, 0), "one HEAD each");
    assert_eq!(sim.stats().with_status(404), 10);
}

#[tokio::test]
async fn a_revised_day_has_a_new_etag_and_the_old_etag_fails_cleanly() {
    let sim = start_files(SimConfig::new().market(20)).await;
    let client = files_client(&sim, 1_000);
    let old = client
        .day_file(Dataset::MinuteAggs, FILE_DAY)
        .await
        .unwrap()
        .unwrap();
    let before = sim.flat_file_rows(SimDataset::MinuteAggs, FILE_DAY);
    sim.revise_day(FILE_DAY);
    let new = client
        .day_file(Dataset::MinuteAggs, FILE_DAY)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(old.etag, new.etag);

    // The old version cannot be read any more: a typed error, not a mix of versions.
    let err = client
        .pages(&old, 0)
        .await
        .err()
        .expect("the old ETag fails");
    assert!(matches!(err, Error::FileChanged { .. }), "{err}");
    assert!(err.is_transient(), "looking the file up again helps");
    assert!(err.to_string().contains(&old.key), "{err}");
    assert_eq!(sim.stats().with_status(412), 1);
    assert_eq!(client.stats().retries, 0, "a changed file is not retried");

    let (candles, _) = read_file(&client, &new, 0).await.unwrap();
    let after = sim.flat_file_rows(SimDataset::MinuteAggs, FILE_DAY);
    assert_ne!(before, after);
    assert_same(&candles, &after);
}

#[tokio::test]
async fn wrong_credentials_are_a_permanent_error_naming_the_variables() {
    let sim = start_files(SimConfig::new().market(5)).await;
    let wrong_secret = backfill_polygon::FlatFilesConfig {
        secret_access_key: "not-the-secret".into(),
        ..files_config(&sim, 100)
    };
    let wrong_id = backfill_polygon::FlatFilesConfig {
        access_key_id: "not-the-key-id".into(),
        ..files_config(&sim, 100)
    };
    for config in [wrong_secret, wrong_id] {
        let client = FlatFilesClient::new(config).unwrap();
        let err = client
            .day_file(Dataset::MinuteAggs, FILE_DAY)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::CredentialsRejected { status: 403, .. }),
            "{err:?}"
        );
        assert!(err.is_permanent());
        let text = err.to_string();
        assert!(text.contains("POLYGON_S3_ACCESS_KEY_ID"), "{text}");
        assert!(text.contains("POLYGON_S3_SECRET_ACCESS_KEY"), "{text}");
        assert_eq!(
            client.stats().retries,
            0,
            "refused credentials are not retried"
        );
        // A GET is refused alike (with the ETag of the real file).
        let file = DayFile {
            dataset: Dataset::MinuteAggs,
            day: FILE_DAY,
            key: Dataset::MinuteAggs.key(FILE_DAY),
            etag: "\"whatever\"".to_owned(),
            size: 1,
        };
        let err = client.pages(&file, 0).await.err().unwrap();
        assert!(matches!(err, Error::CredentialsRejected { .. }), "{err:?}");
    }
    assert_eq!(sim.stats().with_status(403), 4);
    assert_eq!(sim.stats().total(), 4);
    let _ = (S3_KEY_ID, S3_SECRET);
}

#[tokio::test]
async fn candles_are_one_minute_or_one_day_bars_with_raw_prices() {
    let sim = start_files(SimConfig::new().market(10)).await;
    let client = files_client(&sim, 10_000);
    let file = client
        .day_file(Dataset::DayAggs, FILE_DAY)
        .await
        .unwrap()
        .unwrap();
    let mut pages = client.pages(&file, 0).await.unwrap();
    let page = pages.next().await.unwrap().unwrap();
    assert!(pages.next().await.is_none());
    let day = Timeframe::parse("1d").unwrap();
    for candle in &page.candles {
        assert_eq!(candle.timeframe(), day);
        assert_eq!(candle.vwap(), None);
        assert!(candle.trades().is_some());
        assert_eq!(
            candle.ts().timestamp_millis(),
            ONE_DAY.0,
            "New York midnight"
        );
    }
}
