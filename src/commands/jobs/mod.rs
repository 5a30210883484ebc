//! `backfill jobs`: a client of a running `backfill serve`. This module sends the request and
//! checks the answer; `render` prints it for people.

mod render;

use anyhow::{bail, Context};
use backfill_api::ErrorBody;
use secrecy::ExposeSecret;

use crate::cli::{JobsAction, JobsArgs};

pub(crate) async fn run(args: JobsArgs) -> anyhow::Result<()> {
    let body = request(&args).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        render::json(&mut out, &body)
    } else {
        render::text(&mut out, &args.action, &body)
    }
}

/// The method and path of the API call an action makes.
fn endpoint(action: &JobsAction) -> (reqwest::Method, String) {
    match action {
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
    }
}

/// Sends the action's request and returns the body of a successful answer; an error answer
/// becomes an error naming its code and message.
async fn request(args: &JobsArgs) -> anyhow::Result<Vec<u8>> {
    let base = args.server.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .user_agent(concat!("backfill/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let (method, path) = endpoint(&args.action);
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
    Ok(body.to_vec())
}
