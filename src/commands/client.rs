//! The HTTP client of the commands that talk to a running `backfill serve` (`jobs`,
//! `schedules`, `universes`): one request, its error answer turned into an error naming the
//! code and message.

use std::io::Write;

use anyhow::{bail, Context};
use backfill_api::ErrorBody;
use secrecy::ExposeSecret;

use crate::cli::ServerArgs;

/// Sends `method path` (with a JSON `body`, if any) and returns the body of a successful
/// answer; an error answer becomes an error naming its code and message.
pub(crate) async fn call(
    server: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<Vec<u8>> {
    let base = server.server.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .user_agent(concat!("backfill/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(token) = &server.api_token {
        request = request.bearer_auth(token.expose_secret());
    }
    if let Some(body) = body {
        request = request.json(&body);
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
    Ok(body.to_vec())
}

/// The answer as pretty-printed JSON.
pub(crate) fn json(out: &mut impl Write, body: &[u8]) -> anyhow::Result<()> {
    let value: serde_json::Value = serde_json::from_slice(body).context("decoding the answer")?;
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)?;
    Ok(())
}
