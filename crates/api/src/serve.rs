//! Serving the router on a listener, so that callers need not depend on axum.

use std::future::Future;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;

use crate::{router, AppState};

/// Serves the API on `listener` until `shutdown` resolves, then stops accepting connections and
/// waits for the open ones to finish (callers bound that wait: progress streams end only with
/// their jobs).
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Nagle's algorithm would hold the tail of a response until the client acknowledges the
    // previous segment, which it may delay by up to 40 ms: a latency cliff for small answers.
    let listener = listener.tap_io(|stream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
