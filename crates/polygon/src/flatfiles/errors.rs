//! `object_store` errors turned into the crate's [`Error`], described without either key.

use std::error::Error as _;

use object_store::client::{HttpError, HttpErrorKind};

use crate::Error;

/// The credentials, to scrub from every message.
#[derive(Clone)]
pub(crate) struct Secrets {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([REDACTED])")
    }
}

impl Secrets {
    /// `text` with both keys replaced.
    pub(crate) fn redact(&self, text: String) -> String {
        let text = crate::error::redact(text, &self.secret_access_key);
        crate::error::redact(text, &self.access_key_id)
    }
}

/// What an `object_store` error means for a request about `what` (such as
/// `GET us_stocks_sip/...`):
/// - 404 is [`Error::NotFound`], 412 (another ETag than `If-Match`) [`Error::FileChanged`];
/// - 401 and 403 are [`Error::CredentialsRejected`], naming the variables to check;
/// - timeouts are [`Error::Timeout`], broken connections and bodies [`Error::Transport`];
/// - 5xx (and 408, 413, 425, 499) are [`Error::Server`], 429 [`Error::RateLimited`];
/// - a 2xx response that is not what S3 sends is [`Error::Decode`];
/// - any other status is [`Error::BadRequest`] (400) or [`Error::UnexpectedStatus`].
pub(crate) fn from_store(error: &object_store::Error, what: &str, secrets: &Secrets) -> Error {
    let text = describe(error);
    let message = secrets.redact(format!("{what}: {text}"));
    match error {
        object_store::Error::NotFound { .. } => return Error::NotFound { message },
        object_store::Error::Precondition { .. } => return Error::FileChanged { message },
        object_store::Error::PermissionDenied { .. } => {
            return Error::CredentialsRejected {
                status: 403,
                message,
            }
        }
        object_store::Error::Unauthenticated { .. } => {
            return Error::CredentialsRejected {
                status: 401,
                message,
            }
        }
        _ => {}
    }
    if let Some(status) = status_in(&text) {
        return from_status(status, message);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(http) = cause.downcast_ref::<HttpError>() {
            return match http.kind() {
                HttpErrorKind::Timeout => Error::Timeout { message },
                _ => Error::Transport { message },
            };
        }
        if let Some(http) = cause.downcast_ref::<reqwest::Error>() {
            return if http.is_timeout() {
                Error::Timeout { message }
            } else {
                Error::Transport { message }
            };
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return if io.kind() == std::io::ErrorKind::TimedOut {
                Error::Timeout { message }
            } else {
                Error::Transport { message }
            };
        }
        source = cause.source();
    }
    Error::Decode { message }
}

/// The error for an HTTP status that `object_store` reported without a variant of its own.
fn from_status(status: u16, message: String) -> Error {
    match status {
        400 => Error::BadRequest { message },
        401 | 403 => Error::CredentialsRejected { status, message },
        404 => Error::NotFound { message },
        412 => Error::FileChanged { message },
        429 => Error::RateLimited {
            retry_after: None,
            message,
        },
        408 | 413 | 425 | 499 | 500..=599 => Error::Server { status, message },
        _ => Error::UnexpectedStatus { status, message },
    }
}

/// The error and its causes in one line, each cause once.
fn describe(error: &object_store::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The status in `object_store`'s "Server returned non-2xx status code: 503 Service
/// Unavailable" (its status-carrying error type is private).
fn status_in(text: &str) -> Option<u16> {
    let marker = "status code: ";
    let at = text.find(marker)? + marker.len();
    let digits = text.get(at..at + 3)?;
    let status: u16 = digits.parse().ok()?;
    (100..=599).contains(&status).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets {
            access_key_id: "AKID-123".to_owned(),
            secret_access_key: "s3cr3t".to_owned(),
        }
    }

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: text.to_owned().into(),
        }
    }

    type Check = fn(&Error) -> bool;

    #[test]
    fn statuses_map_to_their_meaning() {
        let cases: [(&str, Check); 8] = [
            ("Server returned non-2xx status code: 503 Service Unavailable: <Error><Code>SlowDown</Code></Error>", |e| {
                matches!(e, Error::Server { status: 503, .. })
            }),
            ("Server returned non-2xx status code: 500 Internal Server Error: ", |e| {
                matches!(e, Error::Server { status: 500, .. })
            }),
            ("Server returned non-2xx status code: 429 Too Many Requests: ", |e| {
                matches!(e, Error::RateLimited { .. })
            }),
            ("Server returned non-2xx status code: 403 Forbidden: ", |e| {
                matches!(e, Error::CredentialsRejected { status: 403, .. })
            }),
            ("Server returned non-2xx status code: 412 Precondition Failed: ", |e| {
                matches!(e, Error::FileChanged { .. })
            }),
            ("Server returned non-2xx status code: 400 Bad Request: ", |e| {
                matches!(e, Error::BadRequest { .. })
            }),
            ("Server returned non-2xx status code: 416 Range Not Satisfiable: ", |e| {
                matches!(e, Error::UnexpectedStatus { status: 416, .. })
            }),
            ("Content-Range header not present in partial response", |e| {
                matches!(e, Error::Decode { .. })
            }),
        ];
        for (text, check) in cases {
            let error = from_store(&generic(text), "GET k", &secrets());
            assert!(check(&error), "{text}: {error:?}");
        }
    }

    #[test]
    fn typed_errors_map_to_their_meaning() {
        let source = || Box::<dyn std::error::Error + Send + Sync>::from("x");
        let path = || "flatfiles/k".to_owned();
        let check = |error: object_store::Error, expected: fn(&Error) -> bool| {
            let mapped = from_store(&error, "HEAD k", &secrets());
            assert!(expected(&mapped), "{mapped:?}");
            mapped
        };
        check(
            object_store::Error::NotFound {
                path: path(),
                source: source(),
            },
            |e| matches!(e, Error::NotFound { .. }),
        );
        check(
            object_store::Error::Precondition {
                path: path(),
                source: source(),
            },
            |e| matches!(e, Error::FileChanged { .. }) && e.is_transient(),
        );
        let refused = check(
            object_store::Error::PermissionDenied {
                path: path(),
                source: source(),
            },
            |e| matches!(e, Error::CredentialsRejected { status: 403, .. }) && e.is_permanent(),
        );
        let text = refused.to_string();
        assert!(
            text.contains("POLYGON_S3_ACCESS_KEY_ID")
                && text.contains("POLYGON_S3_SECRET_ACCESS_KEY"),
            "{text}"
        );
        check(
            object_store::Error::Unauthenticated {
                path: path(),
                source: source(),
            },
            |e| matches!(e, Error::CredentialsRejected { status: 401, .. }),
        );
        check(
            object_store::Error::Generic {
                store: "S3",
                source: Box::new(HttpError::new(HttpErrorKind::Timeout, generic("slow"))),
            },
            |e| matches!(e, Error::Timeout { .. }),
        );
        check(
            object_store::Error::Generic {
                store: "S3",
                source: Box::new(HttpError::new(
                    HttpErrorKind::Interrupted,
                    std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                )),
            },
            |e| matches!(e, Error::Transport { .. }),
        );
    }

    #[test]
    fn messages_never_show_the_keys() {
        let body = "Server returned non-2xx status code: 403 Forbidden: <Error><Code>\
                    SignatureDoesNotMatch</Code><AWSAccessKeyId>AKID-123</AWSAccessKeyId>\
                    <StringToSign>s3cr3t</StringToSign></Error>";
        let error = from_store(&generic(body), "GET k", &secrets());
        let text = format!("{error} {error:?}");
        assert!(
            !text.contains("AKID-123") && !text.contains("s3cr3t"),
            "{text}"
        );
        assert!(text.contains("SignatureDoesNotMatch"), "{text}");
        assert_eq!(format!("{:?}", secrets()), "Secrets([REDACTED])");
    }
}
