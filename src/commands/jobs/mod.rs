//! `backfill jobs`: a client of a running `backfill serve`.

use std::io::Write;

use anyhow::{bail, Context};
use backfill_api::{ErrorBody, JobStatusBody, RecentJobsBody};
use secrecy::ExposeSecret;

use crate::cli::{JobsAction, JobsArgs};

pub(crate) async fn run(args: JobsArgs) -> anyhow::Result<()> {
    let base = args.server.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .user_agent(concat!("backfill/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let (method, path) = match &args.action {
        JobsAction::List { limit, status } => {
            let mut path = format!("/api/v1/backfill/recent?limit={limit}");
            if let Some(status) = status {
                path.push_str(&format!("&status={status}"));
            }
            (reqwest::Method::GET, path)
        }
        JobsAction::Status { id } => (
            reqwest::Method::GET,
            format!("/api/v1/backfill/status/{id}"),
        ),
        JobsAction::Cancel { id } => (
            reqwest::Method::POST,
            format!("/api/v1/backfill/{id}/cancel"),
        ),
        JobsAction::Retry { id } => (
            reqwest::Method::POST,
            format!("/api/v1/backfill/{id}/retry"),
        ),
    };
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(token) = &args.api_token {
        request = request.bearer_auth(token.expose_secret());
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the backfill server at {base}"))?;
    let status = response.status();
    let body = response.bytes().await.context("reading the answer")?;
    if !status.is_success() {
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(err) => bail!(
                "{} ({status}): {}",
                err.error.code.as_str(),
                err.error.message
            ),
            Err(_) => bail!("the server answered {status}"),
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let value: serde_json::Value =
            serde_json::from_slice(&body).context("decoding the answer")?;
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(());
    }
    match &args.action {
        JobsAction::List { .. } => {
            let recent: RecentJobsBody =
                serde_json::from_slice(&body).context("decoding the answer")?;
            writeln!(
                out,
                "{:<36}  {:<21}  {:>6}  {:>8}  {:>12}  symbols",
                "job", "status", "tf", "percent", "candles"
            )?;
            for j in recent.jobs {
                let symbols: Vec<&str> = j
                    .job
                    .spec
                    .symbols()
                    .iter()
                    .map(backfill_domain::Symbol::as_str)
                    .collect();
                let mut symbols = symbols.join(",");
                if symbols.len() > 40 {
                    symbols.truncate(37);
                    symbols.push_str("...");
                }
                writeln!(
                    out,
                    "{:<36}  {:<21}  {:>6}  {:>7.1}%  {:>12}  {symbols}",
                    j.job.id.to_string(),
                    j.job.status.as_str(),
                    j.job.spec.timeframe().to_string(),
                    j.progress.percent,
                    j.progress.candles_stored,
                )?;
            }
        }
        _ => {
            let s: JobStatusBody = serde_json::from_slice(&body).context("decoding the answer")?;
            let p = &s.progress;
            writeln!(out, "job       {}", s.job.id)?;
            writeln!(out, "status    {}", s.job.status)?;
            writeln!(
                out,
                "spec      {} {} {} adjusted={} mode={}",
                s.job.spec.timeframe(),
                s.job.spec.range(),
                s.job.spec.symbols().len(),
                s.job.spec.adjusted(),
                match s.job.spec.mode() {
                    backfill_domain::BackfillMode::Missing => "missing",
                    backfill_domain::BackfillMode::Full => "full",
                }
            )?;
            writeln!(
                out,
                "progress  {:.1}%  {}/{} symbols done, {} failed, {} candles",
                p.percent, p.symbols_done, p.symbols_total, p.symbols_failed, p.candles_stored
            )?;
            if let Some(error) = &s.job.error {
                writeln!(out, "error     {error}")?;
            }
            for t in &s.tasks {
                writeln!(
                    out,
                    "  {:<24} {:<10} {:>10} candles  attempts {}{}",
                    t.symbol.as_str(),
                    t.status.as_str(),
                    t.candles_stored,
                    t.attempts,
                    t.last_error
                        .as_deref()
                        .map(|e| format!("  {e}"))
                        .unwrap_or_default()
                )?;
            }
        }
    }
    Ok(())
}
