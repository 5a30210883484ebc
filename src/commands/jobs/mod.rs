//! `backfill jobs`: a client of a running `backfill serve`. This module sends the request and
//! checks the answer; `render` prints it for people.

mod render;

use crate::cli::{JobsAction, JobsArgs};
use crate::commands::client;

pub(crate) async fn run(args: JobsArgs) -> anyhow::Result<()> {
    let (method, path) = endpoint(&args.action);
    let body = client::call(&args.server, method, &path, None).await?;
    let mut out = std::io::stdout().lock();
    if args.server.json {
        client::json(&mut out, &body)
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
