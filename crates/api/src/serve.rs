//! Serving the router on a listener, so that callers need not depend on axum.

use std::future::Future;

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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
