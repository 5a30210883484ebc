//! Decoding speed of a realistic whole-market minute file: the simulator's file of 5,000 tickers
//! (about 740,000 rows), inflated only, inflated and parsed into candles in memory, and
//! downloaded from the simulator's bucket and decoded by `FlatFilesClient` end to end, with the
//! peak memory that adds. Run with `cargo bench -p backfill-polygon --bench files`.
//!
//! `FILES_TICKERS=n` sets another universe. `FILES_GZIP=path` decodes the minute file at `path`
//! in memory instead of the simulator's (a real flat file, say), after writing the simulator's
//! there if there is none yet, so that two builds (two inflate backends) can be compared on the
//! same bytes.

use std::io::Read;
use std::time::{Duration, Instant};

use backfill_polygon::{decode_day_file, Dataset, FlatFiles, FlatFilesClient, FlatFilesConfig};
use backfill_polygon_sim::{Dataset as SimDataset, SimConfig, Simulator};
use chrono::NaiveDate;
use futures::StreamExt;

const DAY: NaiveDate = match NaiveDate::from_ymd_opt(2024, 5, 6) {
    Some(day) => day,
    None => panic!("a valid date"),
};

/// The median and best of `runs` timings of `f`.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[0])
}

#[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
fn report(what: &str, rows: usize, bytes: usize, (median, best): (Duration, Duration)) {
    let per_s = |d: Duration| rows as f64 / d.as_secs_f64();
    println!(
        "{what:<44} median {:>8.1} ms {:>6.2} M rows/s {:>6.0} MB/s   (best {:>8.1} ms {:>6.2} M rows/s)",
        median.as_secs_f64() * 1e3,
        per_s(median) / 1e6,
        bytes as f64 / median.as_secs_f64() / 1e6,
        best.as_secs_f64() * 1e3,
        per_s(best) / 1e6,
    );
}

/// This process's resident memory now and at its peak since the last reset, in bytes (Linux).
fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the peak resident memory to the current one (Linux 4.0 and later).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() {
    let tickers: usize = std::env::var("FILES_TICKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let sim = Simulator::new(SimConfig::new().market(tickers));
    let started = Instant::now();
    let file = sim
        .flat_file(SimDataset::MinuteAggs, DAY)
        .expect("a trading day");
    let generated = started.elapsed();
    let gzip = match std::env::var_os("FILES_GZIP") {
        Some(path) => match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(_) => {
                std::fs::write(&path, file.bytes()).expect("FILES_GZIP is writable");
                file.bytes().to_vec()
            }
        },
        None => file.bytes().to_vec(),
    };
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(gzip.as_slice())
        .read_to_end(&mut text)
        .expect("the file inflates");
    let mut rows = 0;
    // The HTTP run reads the simulator's file whatever FILES_GZIP says.
    let http_rows = sim.flat_file_rows(SimDataset::MinuteAggs, DAY).len();
    let sim_text_len = std::io::copy(
        &mut flate2::read::MultiGzDecoder::new(file.bytes()),
        &mut std::io::sink(),
    )
    .expect("the file inflates") as usize;
    decode_day_file(Dataset::MinuteAggs, &gzip, 0, 50_000, |page| {
        rows += page.candles.len();
        assert_eq!(page.dropped, 0);
    })
    .expect("the file decodes");
    #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
    {
        println!(
            "file: {tickers} tickers, {rows} rows, {:.1} MB gzip, {:.1} MB CSV ({:.0} bytes a row); \
             generated in {:.0} ms",
            gzip.len() as f64 / 1e6,
            text.len() as f64 / 1e6,
            text.len() as f64 / rows as f64,
            generated.as_secs_f64() * 1e3,
        );
    }

    report(
        "inflate only (flate2)",
        rows,
        text.len(),
        time(9, || {
            let mut inflate = flate2::read::MultiGzDecoder::new(gzip.as_slice());
            let mut buffer = vec![0u8; 256 * 1024];
            let mut total = 0;
            loop {
                match inflate.read(&mut buffer) {
                    Ok(0) | Err(_) => break total,
                    Ok(n) => total += n,
                }
            }
        }),
    );
    report(
        "inflate + parse into candles, in memory",
        rows,
        text.len(),
        time(9, || {
            let mut candles = 0;
            decode_day_file(Dataset::MinuteAggs, &gzip, 0, 50_000, |page| {
                candles += page.candles.len();
            })
            .map(|()| candles)
        }),
    );
    report(
        "skip every row (inflate + split lines)",
        rows,
        text.len(),
        time(9, || {
            decode_day_file(Dataset::MinuteAggs, &gzip, u64::MAX, 50_000, |_| {})
        }),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let running = sim
            .spawn("127.0.0.1:0")
            .await
            .expect("the simulator starts");
        let config = FlatFilesConfig::new(
            backfill_polygon_sim::DEFAULT_S3_ACCESS_KEY_ID.into(),
            backfill_polygon_sim::DEFAULT_S3_SECRET_ACCESS_KEY.into(),
        )
        .with_endpoint(running.base_url());
        let client = FlatFilesClient::new(config).expect("a valid configuration");
        let day_file = client
            .day_file(Dataset::MinuteAggs, DAY)
            .await
            .expect("the bucket answers")
            .expect("the file exists");
        let mut timings = Vec::new();
        let mut peak_added = 0;
        for _ in 0..7 {
            let before = reset_peak().then(memory).flatten();
            let start = Instant::now();
            let mut pages = client.pages(&day_file, 0).await.expect("the GET succeeds");
            let mut candles = 0;
            while let Some(page) = pages.next().await {
                candles += page.expect("a page").candles.len();
            }
            timings.push(start.elapsed());
            assert_eq!(candles, http_rows);
            if let (Some((rss, _)), Some((_, peak))) = (before, memory()) {
                peak_added = peak_added.max(peak.saturating_sub(rss));
            }
        }
        timings.sort();
        report(
            "http: GET + inflate + parse, pages of 50,000",
            http_rows,
            sim_text_len,
            (timings[3], timings[0]),
        );
        #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
        {
            println!(
                "peak memory added by a read (resident, above the process before it): {:.1} MB",
                peak_added as f64 / 1e6
            );
        }
        let _ = running.shutdown().await;
    });
}
