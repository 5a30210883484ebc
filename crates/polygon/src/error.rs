use std::time::Duration;

/// Everything that can go wrong while fetching aggregates or Flat Files. Messages are meant for
/// people (the worker stores them as a task's last error) and never contain the API key or the
/// S3 keys.
///
/// [`Error::is_permanent`] tells whether retrying later can help: the client has already retried
/// transient failures within its budget before returning one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// HTTP 400, or an `ERROR` body on a 2xx: the request itself is wrong.
    #[error("polygon rejected the request (http 400): {message}")]
    BadRequest { message: String },
    /// HTTP 401: the key is missing, unknown or revoked.
    #[error("polygon rejected the api key (http 401): {message}")]
    Unauthorized { message: String },
    /// HTTP 403 or a `NOT_AUTHORIZED` body: the plan does not cover this data.
    #[error("not entitled to this data (http {status}): {message}")]
    NotEntitled { status: u16, message: String },
    /// HTTP 404.
    #[error("polygon has no such resource (http 404): {message}")]
    NotFound { message: String },
    /// HTTP 429, still rate limited when the retry budget ran out.
    #[error("rate limited by polygon (http 429{}): {message}", retry_after_text(*.retry_after))]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// HTTP 5xx, 499, 408, 413 or 425, still failing when the retry budget ran out.
    #[error("polygon server error (http {status}): {message}")]
    Server { status: u16, message: String },
    /// Any other status (3xx, other 4xx).
    #[error("unexpected http status {status} from polygon: {message}")]
    UnexpectedStatus { status: u16, message: String },
    /// The connect or request timeout expired.
    #[error("request to polygon timed out: {message}")]
    Timeout { message: String },
    /// The connection failed or broke (refused, reset, body cut short).
    #[error("could not reach polygon: {message}")]
    Transport { message: String },
    /// A 2xx body that is not a valid aggregates response (truncated or inconsistent JSON).
    #[error("could not decode polygon's response: {message}")]
    Decode { message: String },
    /// `next_url` repeats itself or does not advance.
    #[error("polygon's pagination does not advance: {message}")]
    CursorLoop { message: String },
    /// A [`PageCursor`](crate::PageCursor) used with another request than the one it came from.
    #[error("invalid page cursor: {message}")]
    InvalidCursor { message: String },
    /// The request quota could not be read (the database that shares it between processes is
    /// unreachable, say), so no request was sent.
    #[error("the request quota is unavailable: {message}")]
    Quota { message: String },
    /// The client configuration cannot work (bad base URL, key unusable in a header).
    #[error("invalid polygon client configuration: {message}")]
    Config { message: String },
    /// The Flat Files bucket refused the S3 credentials (HTTP 401 or 403): the keys are wrong or
    /// revoked, or the plan does not include Flat Files.
    #[error(
        "the flat files bucket refused the s3 credentials (http {status}); check \
         POLYGON_S3_ACCESS_KEY_ID and POLYGON_S3_SECRET_ACCESS_KEY, and that the plan includes \
         flat files: {message}"
    )]
    CredentialsRejected { status: u16, message: String },
    /// A flat file was replaced (another ETag) or removed after it was looked up. Reading it
    /// again cannot help, but looking it up again can: the rows read of the old content do not
    /// apply to the new one, which must be read from its start.
    #[error("the flat file changed since it was looked up: {message}")]
    FileChanged { message: String },
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `message` field of any variant (every variant has one).
macro_rules! message_of {
    ($error:expr) => {
        match $error {
            Self::BadRequest { message }
            | Self::Unauthorized { message }
            | Self::NotEntitled { message, .. }
            | Self::NotFound { message }
            | Self::RateLimited { message, .. }
            | Self::Server { message, .. }
            | Self::UnexpectedStatus { message, .. }
            | Self::Timeout { message }
            | Self::Transport { message }
            | Self::Decode { message }
            | Self::CursorLoop { message }
            | Self::InvalidCursor { message }
            | Self::Quota { message }
            | Self::Config { message }
            | Self::CredentialsRejected { message, .. }
            | Self::FileChanged { message } => message,
        }
    };
}

impl Error {
    /// True when retrying later cannot help without a change (key, plan, request, code).
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    /// True for failures that may pass with time: rate limits, server errors, timeouts, broken
    /// connections and broken bodies, an unavailable request quota, and a flat file that changed
    /// while it was read (looking it up again gives the new content).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Timeout { .. }
                | Self::Transport { .. }
                | Self::Decode { .. }
                | Self::Quota { .. }
                | Self::FileChanged { .. }
        )
    }

    /// How long Polygon asked to wait, for a rate limit with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status behind the error, when there was a response.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::BadRequest { .. } => Some(400),
            Self::Unauthorized { .. } => Some(401),
            Self::NotFound { .. } => Some(404),
            Self::RateLimited { .. } => Some(429),
            Self::NotEntitled { status, .. }
            | Self::Server { status, .. }
            | Self::UnexpectedStatus { status, .. }
            | Self::CredentialsRejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The detail of the error: Polygon's own text when it sent one.
    pub fn message(&self) -> &str {
        message_of!(self)
    }

    /// The same error with every occurrence of `secret` replaced.
    pub(crate) fn redact(mut self, secret: &str) -> Self {
        let message = message_of!(&mut self);
        *message = redact(std::mem::take(message), secret);
        self
    }
}

fn retry_after_text(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {}s", d.as_secs_f64()),
        None => String::new(),
    }
}

/// Replaces every occurrence of `secret` in `text`.
pub(crate) fn redact(text: String, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) {
        text
    } else {
        text.replace(secret, "[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_permanent_and_transient() {
        let m = || "x".to_owned();
        for e in [
            Error::BadRequest { message: m() },
            Error::Unauthorized { message: m() },
            Error::NotEntitled {
                status: 403,
                message: m(),
            },
            Error::NotFound { message: m() },
            Error::UnexpectedStatus {
                status: 405,
                message: m(),
            },
            Error::CursorLoop { message: m() },
            Error::InvalidCursor { message: m() },
            Error::Config { message: m() },
            Error::CredentialsRejected {
                status: 403,
                message: m(),
            },
        ] {
            assert!(e.is_permanent(), "{e}");
        }
        for e in [
            Error::RateLimited {
                retry_after: None,
                message: m(),
            },
            Error::Server {
                status: 503,
                message: m(),
            },
            Error::Timeout { message: m() },
            Error::Transport { message: m() },
            Error::Decode { message: m() },
            Error::Quota { message: m() },
            Error::FileChanged { message: m() },
        ] {
            assert!(e.is_transient(), "{e}");
        }
    }

    #[test]
    fn messages_are_readable_and_redactable() {
        let e = Error::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
            message: "slow down, key abc123".to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "rate limited by polygon (http 429, retry after 60s): slow down, key abc123"
        );
        let e = e.redact("abc123");
        assert!(!e.to_string().contains("abc123"), "{e}");
        assert_eq!(e.message(), "slow down, key [redacted]");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(e.http_status(), Some(429));
    }
}
