//! The one place that turns errors into HTTP: the stable error codes, their statuses, the JSON
//! error shape, and the mapping of storage errors, domain errors and extractor rejections.

use std::error::Error as StdError;
use std::fmt;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

/// A mistake in the API's configuration, found when it is built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CORS origin that is not `*` or a valid `scheme://host[:port]` header value.
    #[error("invalid cors origin {0:?}: expected * or scheme://host[:port]")]
    InvalidCorsOrigin(String),
    /// An API token that is empty or holds characters an `Authorization` header cannot carry.
    #[error("invalid api token: {0}")]
    InvalidToken(&'static str),
}

/// The result type of the API's configuration.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The stable, snake_case code of every error the API answers. Clients match on these; the
/// message is for people and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON (syntax error, truncated, empty).
    InvalidJson,
    /// The JSON does not match the request schema: an unknown or missing field, a wrong type.
    InvalidBody,
    /// A request body without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// A request body over the limit (1 MiB by default).
    PayloadTooLarge,
    /// The query string does not parse (a wrong type, an unknown status, a missing parameter).
    InvalidQuery,
    /// A path parameter that cannot be read at all.
    InvalidPath,
    /// A job id that is not a UUID.
    InvalidJobId,
    /// A ticker that is empty, too long or holds characters other than letters, digits and `.:-_`.
    InvalidSymbol,
    /// A timeframe that does not parse or is out of bounds.
    InvalidTimeframe,
    /// A bad date or timestamp, a reversed range, or a range ending after tomorrow.
    InvalidRange,
    /// A job with no symbols or more than 1,000 (20,000 for a bulk source), or a bulk job over
    /// a range without a weekday.
    InvalidJob,
    /// An unknown source, or one that cannot serve the job (its timeframe, adjustment or
    /// universe); the message names the fix.
    InvalidSource,
    /// A source this server is not configured for (Flat Files without S3 credentials); the
    /// message names the fix.
    SourceUnavailable,
    /// A schedule or universe that breaks a rule: a bad trigger, name, timeframe list or
    /// look-back.
    InvalidSchedule,
    /// A schedule names a universe that does not exist.
    UnknownUniverse,
    /// The reference tickers refused a universe refresh (a bad type or date) or listed nothing.
    ReferenceRejected,
    /// A `limit` outside its bounds.
    InvalidLimit,
    /// A `cursor` that is not one this API handed out.
    InvalidCursor,
    /// An `Idempotency-Key` header that is empty, longer than 255 bytes or not printable ASCII.
    InvalidIdempotencyKey,
    /// Input that storage refused.
    InvalidInput,
    /// A missing or wrong bearer token.
    Unauthorized,
    /// The job (or other resource) does not exist.
    NotFound,
    /// No route has this path.
    RouteNotFound,
    /// `/metrics` was asked for, but this process exports no metrics.
    MetricsDisabled,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The job's state does not allow the request (cancel an ended job, retry a running one).
    Conflict,
    /// The `Idempotency-Key` was already used for a different request.
    IdempotencyKeyConflict,
    /// The database does not answer the readiness probe.
    NotReady,
    /// The database is temporarily unreachable; retrying later may help.
    StorageUnavailable,
    /// Polygon's reference data could not be read (after retries); try again later.
    UpstreamUnavailable,
    /// Anything else that went wrong on the server. The cause is logged, never sent.
    InternalError,
}

impl ErrorCode {
    /// Every code, in the order of the table in docs/API.md.
    pub const ALL: &'static [ErrorCode] = &[
        Self::InvalidJson,
        Self::InvalidBody,
        Self::UnsupportedMediaType,
        Self::PayloadTooLarge,
        Self::InvalidQuery,
        Self::InvalidPath,
        Self::InvalidJobId,
        Self::InvalidSymbol,
        Self::InvalidTimeframe,
        Self::InvalidRange,
        Self::InvalidJob,
        Self::InvalidSource,
        Self::SourceUnavailable,
        Self::InvalidSchedule,
        Self::UnknownUniverse,
        Self::ReferenceRejected,
        Self::InvalidLimit,
        Self::InvalidCursor,
        Self::InvalidIdempotencyKey,
        Self::InvalidInput,
        Self::Unauthorized,
        Self::NotFound,
        Self::RouteNotFound,
        Self::MetricsDisabled,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::IdempotencyKeyConflict,
        Self::NotReady,
        Self::StorageUnavailable,
        Self::UpstreamUnavailable,
        Self::InternalError,
    ];

    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidBody => "invalid_body",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidPath => "invalid_path",
            Self::InvalidJobId => "invalid_job_id",
            Self::InvalidSymbol => "invalid_symbol",
            Self::InvalidTimeframe => "invalid_timeframe",
            Self::InvalidRange => "invalid_range",
            Self::InvalidJob => "invalid_job",
            Self::InvalidSource => "invalid_source",
            Self::SourceUnavailable => "source_unavailable",
            Self::InvalidSchedule => "invalid_schedule",
            Self::UnknownUniverse => "unknown_universe",
            Self::ReferenceRejected => "reference_rejected",
            Self::InvalidLimit => "invalid_limit",
            Self::InvalidCursor => "invalid_cursor",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::InvalidInput => "invalid_input",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MetricsDisabled => "metrics_disabled",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::IdempotencyKeyConflict => "idempotency_key_conflict",
            Self::NotReady => "not_ready",
            Self::StorageUnavailable => "storage_unavailable",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::InternalError => "internal_error",
        }
    }

    /// The HTTP status every error with this code answers. This is the only place that
    /// chooses an error status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidJson
            | Self::InvalidBody
            | Self::InvalidQuery
            | Self::InvalidPath
            | Self::InvalidJobId
            | Self::InvalidSymbol
            | Self::InvalidTimeframe
            | Self::InvalidRange
            | Self::InvalidJob
            | Self::InvalidSource
            | Self::SourceUnavailable
            | Self::InvalidSchedule
            | Self::UnknownUniverse
            | Self::ReferenceRejected
            | Self::InvalidLimit
            | Self::InvalidCursor
            | Self::InvalidIdempotencyKey
            | Self::InvalidInput => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound | Self::RouteNotFound | Self::MetricsDisabled => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict | Self::IdempotencyKeyConflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotReady | Self::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message sent for server errors, whose real cause is only logged.
    fn generic_message(self) -> &'static str {
        match self {
            Self::NotReady => "the database does not answer",
            Self::StorageUnavailable => "the database is temporarily unavailable, try again later",
            Self::UpstreamUnavailable => {
                "Polygon's reference data could not be read, try again later"
            }
            _ => "internal server error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every error answer: `{"error": {"code": "...", "message": "...", "details": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_symbol", "message": "invalid symbol \"A B\": must not contain whitespace", "details": {"symbols": [{"index": 0, "input": "A B", "reason": "must not contain whitespace"}]}}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code to match on.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Structured facts about the error, when there are any (such as which symbols are bad).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// An error answered by a handler. Its [`ErrorCode`] decides the status; server errors log
/// their cause chain and answer a generic message.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Option<Value>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl ApiError {
    /// An error with a code and a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            source: None,
        }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Keeps the underlying error for the log.
    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// A storage error met while creating a job: a conflict there means the idempotency key was
    /// used for another request.
    pub(crate) fn from_create(err: backfill_storage::Error) -> Self {
        match err {
            backfill_storage::Error::Conflict(message) => {
                Self::new(ErrorCode::IdempotencyKeyConflict, message)
            }
            other => other.into(),
        }
    }

    /// The body to send, logging the cause of a server error (which is never sent).
    pub(crate) fn into_body(self) -> ErrorBody {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(
                code = %self.code,
                message = %self.message,
                cause = %CauseChain(self.source.as_deref()),
                "request failed"
            );
            self.code.generic_message().to_owned()
        } else {
            tracing::debug!(code = %self.code, message = %self.message, "request rejected");
            self.message
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message,
                details: if status.is_server_error() {
                    None
                } else {
                    self.details
                },
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code;
        let mut response = (status, Json(self.into_body())).into_response();
        if code == ErrorCode::Unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"backfill\""),
            );
        }
        response
    }
}

/// Prints an error and its sources, outermost first: `a: b: c`.
struct CauseChain<'a>(Option<&'a (dyn StdError + Send + Sync)>);

impl fmt::Display for CauseChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(first) = self.0 else {
            return f.write_str("no cause recorded");
        };
        write!(f, "{first}")?;
        let mut next = first.source();
        while let Some(err) = next {
            write!(f, ": {err}")?;
            next = err.source();
        }
        Ok(())
    }
}

impl From<backfill_storage::Error> for ApiError {
    fn from(err: backfill_storage::Error) -> Self {
        use backfill_storage::Error as E;
        match err {
            E::NotFound { what } => Self::new(ErrorCode::NotFound, format!("{what} not found")),
            E::Conflict(message) => Self::new(ErrorCode::Conflict, message),
            E::InvalidInput(message) => Self::new(ErrorCode::InvalidInput, message),
            err if err.is_transient() => {
                Self::new(ErrorCode::StorageUnavailable, "storage is unavailable").with_source(err)
            }
            err => Self::new(ErrorCode::InternalError, "storage failed").with_source(err),
        }
    }
}

impl From<backfill_export::Error> for ApiError {
    fn from(err: backfill_export::Error) -> Self {
        Self::new(ErrorCode::InternalError, "the export could not be written").with_source(err)
    }
}

impl From<backfill_domain::Error> for ApiError {
    fn from(err: backfill_domain::Error) -> Self {
        use backfill_domain::Error as E;
        let message = err.to_string();
        match err {
            E::InvalidSymbol { input, reason } => Self::new(ErrorCode::InvalidSymbol, message)
                .with_details(json!({ "input": input, "reason": reason })),
            E::InvalidTimeframe { input, reason } => {
                Self::new(ErrorCode::InvalidTimeframe, message)
                    .with_details(json!({ "input": input, "reason": reason }))
            }
            E::InvalidRange(_) => Self::new(ErrorCode::InvalidRange, message),
            E::InvalidJob(_) => Self::new(ErrorCode::InvalidJob, message),
            E::InvalidSource(_) => Self::new(ErrorCode::InvalidSource, message),
            E::SourceUnavailable(_) => Self::new(ErrorCode::SourceUnavailable, message),
            E::InvalidSchedule(_) => Self::new(ErrorCode::InvalidSchedule, message),
            E::IllegalTransition { .. } => Self::new(ErrorCode::Conflict, message),
            err @ E::InvalidCandle(_) => {
                Self::new(ErrorCode::InternalError, "invalid stored candle").with_source(err)
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let detail = rejection_detail(&rejection, rejection.body_text());
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than the limit",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                ErrorCode::UnsupportedMediaType,
                "expected a request with `Content-Type: application/json`",
            ),
            _ => match rejection {
                JsonRejection::JsonSyntaxError(_) => Self::new(
                    ErrorCode::InvalidJson,
                    format!("the body is not valid JSON: {detail}"),
                ),
                _ => Self::new(
                    ErrorCode::InvalidBody,
                    format!("the body does not match the request schema: {detail}"),
                ),
            },
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let detail = rejection_detail(&rejection, rejection.body_text());
        Self::new(
            ErrorCode::InvalidQuery,
            format!("invalid query string: {detail}"),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        let detail = rejection_detail(&rejection, rejection.body_text());
        Self::new(ErrorCode::InvalidPath, format!("invalid path: {detail}"))
    }
}

/// The innermost message of a rejection (serde's, with the field path), without axum's
/// capitalised preamble.
fn rejection_detail(rejection: &dyn StdError, fallback: String) -> String {
    let mut current = rejection.source();
    let mut message = None;
    while let Some(err) = current {
        message = Some(err.to_string());
        current = err.source();
    }
    message.unwrap_or(fallback)
}

/// Answers requests that match no route.
pub(crate) async fn route_not_found() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, "no route matches this path")
}

/// Answers requests whose path matches a route but whose method does not.
pub(crate) async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("method {method} is not allowed on this path"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_match_serde() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
            assert!(code
                .as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn only_server_codes_are_5xx() {
        let server: Vec<_> = ErrorCode::ALL
            .iter()
            .filter(|c| c.status().is_server_error())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            server,
            [
                "not_ready",
                "storage_unavailable",
                "upstream_unavailable",
                "internal_error"
            ]
        );
    }

    #[test]
    fn server_errors_hide_their_cause() {
        let err = ApiError::from(backfill_storage::Error::InvalidData(
            "secret column value".into(),
        ));
        assert_eq!(err.code(), ErrorCode::InternalError);
        let body = err.into_body();
        assert_eq!(body.error.message, "internal server error");
        assert!(body.error.details.is_none());
    }

    #[test]
    fn cause_chain_prints_every_source() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("inner"));
        let chain = CauseChain(Some(&err)).to_string();
        assert_eq!(chain, "outer: inner");
    }
}
