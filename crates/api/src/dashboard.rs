//! The dashboard: one page and its script, style sheet and icon, compiled into the binary and
//! served at `/` and `/assets/*` (never behind the token: the page holds no data, its API calls
//! carry the token), and `GET /api/v1/info`, which tells the page what this server is.
//!
//! Every dashboard answer carries a strict Content-Security-Policy (scripts, styles and requests
//! only from this origin, nothing inline), `Cache-Control: no-cache` and a strong `ETag`, so a
//! browser revalidates and gets `304 Not Modified` until the binary changes.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The policy every dashboard answer carries: nothing but this origin, no inline script or
/// style, no plugins, no framing, no `<base>` rewriting.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The path of the `info` route.
pub(crate) const INFO_PATH: &str = "/api/v1/info";

/// One compiled-in file.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: u64,
}

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Self {
        Self {
            body,
            content_type,
            etag: fnv1a(body.as_bytes()),
        }
    }
}

const INDEX_HTML: Asset = Asset::new(
    include_str!("../assets/index.html"),
    "text/html; charset=utf-8",
);
const APP_JS: Asset = Asset::new(
    include_str!("../assets/app.js"),
    "text/javascript; charset=utf-8",
);
const STYLE_CSS: Asset = Asset::new(
    include_str!("../assets/style.css"),
    "text/css; charset=utf-8",
);
const FAVICON_SVG: Asset = Asset::new(include_str!("../assets/favicon.svg"), "image/svg+xml");

/// The page and its assets (open routes, outside the OpenAPI document: they are not API).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", file(&INDEX_HTML))
        .route("/assets/app.js", file(&APP_JS))
        .route("/assets/style.css", file(&STYLE_CSS))
        .route("/assets/favicon.svg", file(&FAVICON_SVG))
}

fn file(asset: &'static Asset) -> MethodRouter<AppState> {
    get(move |headers: HeaderMap| async move { serve(asset, &headers) })
}

/// The `info` route (under `/api/v1`, so behind the token when one is set).
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(info))
}

/// What this server is, for the dashboard and other clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "backfill", "version": "0.1.0", "demo": true}))]
pub struct InfoBody {
    /// Always `backfill`.
    pub name: String,
    /// The server's version.
    pub version: String,
    /// `true` when the candles come from the built-in Polygon simulator (`serve --demo`), not
    /// from the market.
    pub demo: bool,
}

/// What this server is.
///
/// Its version, and whether its data is simulated (`backfill serve --demo` fetches from a
/// built-in Polygon simulator into a database of its own).
#[utoipa::path(
    get,
    path = "/api/v1/info",
    tag = "server",
    responses((status = 200, description = "The server's version and whether its data is simulated", body = InfoBody))
)]
pub(crate) async fn info(State(state): State<AppState>) -> Json<InfoBody> {
    Json(InfoBody {
        name: "backfill".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        demo: state.config().demo(),
    })
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.etag);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    (headers, asset.body).into_response()
}

/// FNV-1a, 64 bits: a cheap content hash for the `ETag`s, computed at compile time.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_follow_the_content() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(APP_JS.etag, STYLE_CSS.etag);
    }

    #[test]
    fn if_none_match_answers_304_only_for_the_current_tag() {
        let current = format!("\"{:016x}\"", APP_JS.etag);
        for (given, expected) in [
            (current.clone(), StatusCode::NOT_MODIFIED),
            (format!("W/{current}"), StatusCode::NOT_MODIFIED),
            (format!("\"old\", {current}"), StatusCode::NOT_MODIFIED),
            ("*".to_owned(), StatusCode::NOT_MODIFIED),
            ("\"old\"".to_owned(), StatusCode::OK),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(&given).unwrap(),
            );
            assert_eq!(serve(&APP_JS, &headers).status(), expected, "{given}");
        }
        assert_eq!(serve(&APP_JS, &HeaderMap::new()).status(), StatusCode::OK);
    }
}
