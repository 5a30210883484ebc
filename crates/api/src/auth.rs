//! Bearer-token authentication for the `/api/v1` routes.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Lets a request through when no token is configured or when it carries
/// `Authorization: Bearer <token>` with the right token (compared in constant time); answers
/// 401 `unauthorized` with `WWW-Authenticate: Bearer` otherwise.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.config().api_token() else {
        return next.run(request).await;
    };
    match bearer_token(request.headers()) {
        Some(given) if bool::from(given.ct_eq(expected.expose_secret().as_bytes())) => {
            next.run(request).await
        }
        Some(_) => {
            tracing::warn!("rejected a request with a wrong api token");
            ApiError::new(ErrorCode::Unauthorized, "the bearer token is not valid").into_response()
        }
        None => ApiError::new(
            ErrorCode::Unauthorized,
            "this route requires an `Authorization: Bearer <token>` header",
        )
        .into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn parses_bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        for (value, expected) in [
            ("Bearer abc", Some(&b"abc"[..])),
            ("bearer  abc ", Some(&b"abc"[..])),
            ("BEARER abc", Some(&b"abc"[..])),
            ("Basic abc", None),
            ("Bearer ", None),
            ("Bearer", None),
            ("Bearerabc", None),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer_token(&headers), expected, "{value:?}");
        }
    }
}
