//! The flat-file bucket, path-style on the simulator's server: S3's ListObjectsV2
//! (`GET /{bucket}?list-type=2`), HeadObject and GetObject (`HEAD`/`GET /{bucket}/{key}`, with
//! byte ranges and conditions), every request signed with AWS Signature Version 4.

use std::fmt::Write as _;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use tokio::time::Instant;

use super::{Simulator, Verdict};
use crate::sigv4::{self, Credentials};
use crate::{render, Fault};

mod list;
mod object;

pub(super) use list::list_objects;
pub(super) use object::object;

/// The most keys a listing page holds, as in S3.
const MAX_KEYS: usize = 1_000;
/// The content type of the flat files.
const GZIP: &str = "application/x-gzip";

impl Simulator {
    /// Records the arrival, checks the SigV4 signature and picks a fault, as
    /// [`Simulator::admit`] does for the REST endpoints (the REST rate limit does not apply).
    fn admit_s3(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> (String, Verdict) {
        let config = &self.shared.config;
        let mut state = self.lock();
        let (n, request_id) = self.arrive(&mut state, Instant::now());
        let credentials = Credentials {
            access_key_id: &config.s3_access_key_id,
            secret_access_key: &config.s3_secret_access_key,
        };
        if let Err(e) = sigv4::verify(method.as_str(), uri, headers, credentials, Utc::now()) {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
            let response = error_response(method, e.status(), e.code(), &e.message(), &request_id);
            let response = with_amz_id(response, &request_id);
            let response = self.record(&mut state, uri.path(), status, &request_id, response);
            return (request_id, Verdict::Reject(response));
        }
        let fault = self.pick_fault(&mut state, uri.path(), n);
        (request_id, Verdict::Serve(fault))
    }

    /// The whole response for a fault that replaces the answer, in S3's dialect: a status with
    /// S3's error for it, nginx's 504 page, or `503 SlowDown` for a rate limit.
    fn s3_fault_response(
        &self,
        method: &Method,
        path: &str,
        request_id: &str,
        fault: Option<&Fault>,
    ) -> Option<Response> {
        let (status, response) = match fault? {
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let (code, message) = match status.as_u16() {
                    400 => ("InvalidRequest", "Invalid Request"),
                    403 => ("AccessDenied", "Access Denied"),
                    404 => ("NoSuchKey", "The specified key does not exist."),
                    500 => (
                        "InternalError",
                        "We encountered an internal error. Please try again.",
                    ),
                    503 => ("SlowDown", "Please reduce your request rate."),
                    _ => ("ServiceUnavailable", "Service is unable to handle request."),
                };
                let response = error_response(method, status.as_u16(), code, message, request_id);
                (status, response)
            }
            Fault::GatewayTimeoutHtml => (
                StatusCode::GATEWAY_TIMEOUT,
                ([(header::CONTENT_TYPE, "text/html")], render::HTML_504).into_response(),
            ),
            Fault::RateLimited { retry_after } => {
                let mut response = error_response(
                    method,
                    503,
                    "SlowDown",
                    "Please reduce your request rate.",
                    request_id,
                );
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
                }
                (StatusCode::SERVICE_UNAVAILABLE, response)
            }
            _ => return None,
        };
        Some(self.respond(path, status, request_id, with_amz_id(response, request_id)))
    }

    fn s3_internal_error(&self, method: &Method, path: &str, request_id: &str) -> Response {
        let response = error_response(
            method,
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
            request_id,
        );
        self.respond(
            path,
            StatusCode::INTERNAL_SERVER_ERROR,
            request_id,
            with_amz_id(response, request_id),
        )
    }

    fn s3_precondition(
        &self,
        method: &Method,
        path: &str,
        request_id: &str,
        status: StatusCode,
    ) -> Response {
        let response = if status == StatusCode::NOT_MODIFIED {
            Response::new(Body::empty())
        } else {
            error_response(
                method,
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                request_id,
            )
        };
        self.respond(path, status, request_id, with_amz_id(response, request_id))
    }
}

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// S3's XML error for a request (without a body for HEAD, as S3 sends none).
fn error_response(
    method: &Method,
    status: u16,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response {
    let mut response = error_xml(status, code, message, None, request_id);
    if *method == Method::HEAD {
        *response.body_mut() = Body::empty();
        response.headers_mut().remove(header::CONTENT_LENGTH);
    }
    response
}

fn error_with_key(status: u16, code: &str, key: &str, request_id: &str) -> Response {
    error_xml(
        status,
        code,
        "The specified key does not exist.",
        Some(key),
        request_id,
    )
}

/// `<Error><Code>…</Code><Message>…</Message>[<Key>…</Key>]<RequestId>…</RequestId></Error>`.
pub(super) fn error_xml(
    status: u16,
    code: &str,
    message: &str,
    key: Option<&str>,
    request_id: &str,
) -> Response {
    let mut xml = String::from(XML_DECLARATION);
    xml.push_str("<Error>");
    element(&mut xml, "Code", code);
    element(&mut xml, "Message", message);
    if let Some(key) = key {
        element(&mut xml, "Key", key);
    }
    element(&mut xml, "RequestId", request_id);
    xml.push_str("</Error>");
    let mut response = typed(xml.into_bytes(), "application/xml");
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    response
}

fn typed(body: Vec<u8>, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn with_amz_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amz-request-id", value);
    }
    response
}

/// Appends `<name>text</name>`, escaping the text.
fn element(xml: &mut String, name: &str, text: &str) {
    let _ = write!(xml, "<{name}>");
    for c in text.chars() {
        match c {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '"' => xml.push_str("&quot;"),
            '\'' => xml.push_str("&apos;"),
            c => xml.push(c),
        }
    }
    let _ = write!(xml, "</{name}>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped() {
        let mut xml = String::new();
        element(&mut xml, "Prefix", "a<b>&\"c\"");
        assert_eq!(xml, "<Prefix>a&lt;b&gt;&amp;&quot;c&quot;</Prefix>");
    }
}
