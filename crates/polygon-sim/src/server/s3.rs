//! The flat-file bucket, path-style on the simulator's server: S3's ListObjectsV2
//! (`GET /{bucket}?list-type=2`), HeadObject and GetObject (`HEAD`/`GET /{bucket}/{key}`, with
//! byte ranges and conditions), every request signed with AWS Signature Version 4.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{aborted, Params, Simulator, Verdict};
use crate::calendar::{date, day_of_date};
use crate::flatfile::{flat_file_key, parse_key, Dataset, FileId, FlatFile};
use crate::sigv4::{self, Credentials};
use crate::{cursor, render, Fault};

/// The most keys a listing page holds, as in S3.
const MAX_KEYS: usize = 1_000;
/// The content type of the flat files.
const GZIP: &str = "application/x-gzip";

/// `GET /{bucket}`: ListObjectsV2.
pub(super) async fn list_objects(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let (request_id, verdict) = sim.admit_s3(&method, &uri, &headers);
    let fault = match verdict {
        Verdict::Reject(response) => return response,
        Verdict::Serve(fault) => fault,
    };
    if let Some(response) = sim.s3_fault_response(&method, &path, &request_id, fault.as_ref()) {
        return response;
    }
    let query = match ListQuery::parse(uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => {
            let response = error_response(&method, 400, "InvalidArgument", &message, &request_id);
            return sim.respond(&path, StatusCode::BAD_REQUEST, &request_id, response);
        }
    };
    let page = sim.list_page(&query);
    let ids: Vec<FileId> = page.contents.iter().map(|(_, id)| *id).collect();
    let metas = {
        let sim = sim.clone();
        tokio::task::spawn_blocking(move || sim.file_metas(&ids)).await
    };
    let Ok(metas) = metas else {
        return sim.s3_internal_error(&method, &path, &request_id);
    };
    let mut xml = String::with_capacity(512 + page.contents.len() * 300);
    xml.push_str(XML_DECLARATION);
    xml.push_str("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    element(&mut xml, "Name", &sim.shared.config.bucket);
    element(&mut xml, "Prefix", &query.prefix);
    if let Some(delimiter) = &query.delimiter {
        element(&mut xml, "Delimiter", delimiter);
    }
    if let Some(token) = &query.token {
        element(&mut xml, "ContinuationToken", token);
    }
    if let Some(start_after) = &query.start_after {
        element(&mut xml, "StartAfter", start_after);
    }
    let key_count = page.contents.len() + page.common_prefixes.len();
    element(&mut xml, "KeyCount", &key_count.to_string());
    element(&mut xml, "MaxKeys", &query.max_keys.to_string());
    element(&mut xml, "IsTruncated", &page.next.is_some().to_string());
    if let Some(next) = &page.next {
        element(
            &mut xml,
            "NextContinuationToken",
            &cursor::encode(next.as_bytes()),
        );
    }
    for ((key, id), meta) in page.contents.iter().zip(&metas) {
        xml.push_str("<Contents>");
        element(&mut xml, "Key", key);
        let modified = sim.last_modified(id.day);
        element(
            &mut xml,
            "LastModified",
            &modified.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        );
        element(&mut xml, "ETag", &meta.etag);
        element(&mut xml, "Size", &meta.size.to_string());
        element(&mut xml, "StorageClass", "STANDARD");
        xml.push_str("</Contents>");
    }
    for prefix in &page.common_prefixes {
        xml.push_str("<CommonPrefixes>");
        element(&mut xml, "Prefix", prefix);
        xml.push_str("</CommonPrefixes>");
    }
    xml.push_str("</ListBucketResult>");
    let body = xml.into_bytes();
    let response = match fault {
        Some(Fault::Slow(delay)) => {
            sim.hold(delay).await;
            typed(body, "application/xml")
        }
        Some(Fault::TruncatedJson) => {
            let half = body.len() / 2;
            typed(body[..half].to_vec(), "application/xml")
        }
        Some(Fault::AbortedBody) => aborted(body, "application/xml"),
        _ => typed(body, "application/xml"),
    };
    sim.respond(
        &path,
        StatusCode::OK,
        &request_id,
        with_amz_id(response, &request_id),
    )
}

/// `GET` and `HEAD /{bucket}/{key}`: GetObject and HeadObject.
pub(super) async fn object(
    State(sim): State<Simulator>,
    method: Method,
    Path(key): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let (request_id, verdict) = sim.admit_s3(&method, &uri, &headers);
    let fault = match verdict {
        Verdict::Reject(response) => return response,
        Verdict::Serve(fault) => fault,
    };
    if let Some(response) = sim.s3_fault_response(&method, &path, &request_id, fault.as_ref()) {
        return response;
    }
    let published =
        parse_key(&key).filter(|(_, d)| sim.is_published(crate::calendar::day_of_date(*d)));
    let Some((dataset, date)) = published else {
        let response = if method == Method::HEAD {
            error_response(&method, 404, "NoSuchKey", "", &request_id)
        } else {
            error_with_key(404, "NoSuchKey", &key, &request_id)
        };
        let response = with_amz_id(response, &request_id);
        return sim.respond(&path, StatusCode::NOT_FOUND, &request_id, response);
    };
    let id = sim.file_id(dataset, day_of_date(date));
    let response = if method == Method::HEAD {
        let metas = {
            let sim = sim.clone();
            tokio::task::spawn_blocking(move || sim.file_metas(&[id])).await
        };
        let Some(meta) = metas.ok().and_then(|m| m.into_iter().next()) else {
            return sim.s3_internal_error(&method, &path, &request_id);
        };
        let modified = sim.last_modified(id.day);
        if let Some(status) = precondition(&headers, &meta.etag, modified) {
            return sim.s3_precondition(&method, &path, &request_id, status);
        }
        let mut response = Response::new(Body::empty());
        object_headers(&mut response, &meta.etag, modified, meta.size);
        response
    } else {
        let file = {
            let sim = sim.clone();
            tokio::task::spawn_blocking(move || sim.file(id)).await
        };
        let Ok(file) = file else {
            return sim.s3_internal_error(&method, &path, &request_id);
        };
        if let Some(status) = precondition(&headers, file.etag(), file.last_modified()) {
            return sim.s3_precondition(&method, &path, &request_id, status);
        }
        sim.object_body(&file, &headers, fault.as_ref())
    };
    if let Some(Fault::Slow(delay)) = fault {
        sim.hold(delay).await;
    }
    let status = response.status();
    sim.respond(
        &path,
        status,
        &request_id,
        with_amz_id(response, &request_id),
    )
}

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

    /// A GET's 200 or 206 response (as a fault may break it), or a 416 for a range past the end.
    fn object_body(
        &self,
        file: &Arc<FlatFile>,
        headers: &HeaderMap,
        fault: Option<&Fault>,
    ) -> Response {
        let size = file.bytes().len() as u64;
        let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            None => None,
            Some(value) => match ByteRange::parse(value, size) {
                ByteRange::Satisfiable(start, end) => Some((start, end)),
                ByteRange::Ignored => None,
                ByteRange::Unsatisfiable => {
                    let mut response = error_xml(
                        416,
                        "InvalidRange",
                        "The requested range is not satisfiable",
                        None,
                        "",
                    );
                    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                        response.headers_mut().insert(header::CONTENT_RANGE, value);
                    }
                    return response;
                }
            },
        };
        let all = file.shared_bytes();
        let (status, body) = match range {
            Some((start, end)) => (
                StatusCode::PARTIAL_CONTENT,
                all.slice(start as usize..=end as usize),
            ),
            None => (StatusCode::OK, all),
        };
        let length = body.len() as u64;
        let (mut response, served) = match fault {
            Some(Fault::TruncatedJson) => {
                let half = body.slice(..body.len() / 2);
                let served = half.len() as u64;
                let mut response = Response::new(Body::from(half));
                object_headers(&mut response, file.etag(), file.last_modified(), served);
                (response, served)
            }
            Some(Fault::AbortedBody) => {
                let served = length / 2;
                let mut response = aborted(body.to_vec(), GZIP);
                object_headers(&mut response, file.etag(), file.last_modified(), length);
                (response, served)
            }
            _ => {
                let mut response = Response::new(Body::from(Bytes::clone(&body)));
                object_headers(&mut response, file.etag(), file.last_modified(), length);
                (response, length)
            }
        };
        if let Some((start, end)) = range {
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
        }
        *response.status_mut() = status;
        self.lock().stats.s3_bytes_served += served;
        response
    }

    /// One page of a listing: the keys (or common prefixes) after the query's start, at most
    /// `max-keys` of them, found lazily from the calendar rather than from a list of all files.
    fn list_page(&self, query: &ListQuery) -> ListPage {
        let mut page = ListPage::default();
        if query.max_keys == 0 {
            return page;
        }
        let mut count = 0;
        let mut last = String::new();
        for (key, id) in self.keys_after(&query.after, &query.prefix) {
            let rest = &key[query.prefix.len()..];
            let group = query
                .delimiter
                .as_deref()
                .filter(|d| !d.is_empty())
                .and_then(|d| {
                    rest.find(d)
                        .map(|at| &key[..query.prefix.len() + at + d.len()])
                });
            if let Some(group) = group {
                if page.common_prefixes.last().map(String::as_str) == Some(group) {
                    continue;
                }
                if count == query.max_keys {
                    page.next = Some(last);
                    break;
                }
                page.common_prefixes.push(group.to_owned());
                // Every key of the group sorts before the group followed by DEL.
                last = format!("{group}\u{7f}");
            } else {
                if count == query.max_keys {
                    page.next = Some(last);
                    break;
                }
                last.clone_from(&key);
                page.contents.push((key, id));
            }
            count += 1;
        }
        page
    }

    /// Every published key that sorts after `after` and starts with `prefix`, in order.
    fn keys_after<'a>(
        &'a self,
        after: &'a str,
        prefix: &'a str,
    ) -> impl Iterator<Item = (String, FileId)> + 'a {
        let (first, last) = self.published_days();
        Dataset::ALL.into_iter().flat_map(move |dataset| {
            let key = move |day: i64| flat_file_key(dataset, date(day));
            // Keys grow with the day, so the first day past both bounds is found by bisection.
            let (mut lo, mut hi) = (first, last.max(first - 1) + 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let k = key(mid);
                if k.as_str() > after && k.as_str() >= prefix {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            (lo..=last)
                .filter(|day| self.shared.generator.is_trading_day(*day))
                .map(move |day| (key(day), self.file_id(dataset, day)))
                .take_while(move |(k, _)| k.starts_with(prefix))
        })
    }
}

/// A validated ListObjectsV2 query.
#[derive(Debug)]
struct ListQuery {
    prefix: String,
    delimiter: Option<String>,
    max_keys: usize,
    token: Option<String>,
    start_after: Option<String>,
    /// Keys must sort after this: the later of the token's position and `start-after`.
    after: String,
}

impl ListQuery {
    fn parse(query: &str) -> Result<Self, String> {
        let params = Params::parse(query);
        let max_keys = match params.get("max-keys") {
            None => MAX_KEYS,
            Some(n) => n
                .parse::<usize>()
                .map_err(|_| "Provided max-keys not an integer or within integer range".to_owned())?
                .min(MAX_KEYS),
        };
        let token = params.get("continuation-token").map(str::to_owned);
        let from_token = match &token {
            None => String::new(),
            Some(t) => cursor::decode(t)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| "The continuation token provided is incorrect".to_owned())?,
        };
        let start_after = params.get("start-after").map(str::to_owned);
        let after = from_token.max(start_after.clone().unwrap_or_default());
        Ok(Self {
            prefix: params.get("prefix").unwrap_or("").to_owned(),
            delimiter: params.get("delimiter").map(str::to_owned),
            max_keys,
            token,
            start_after,
            after,
        })
    }
}

#[derive(Debug, Default)]
struct ListPage {
    contents: Vec<(String, FileId)>,
    common_prefixes: Vec<String>,
    /// Where the next page starts, when this one is truncated.
    next: Option<String>,
}

/// What a `Range` header asks of an object of some size.
#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    /// Bytes `start..=end`, clamped to the object.
    Satisfiable(u64, u64),
    /// A header that is not one byte range (S3 then serves the whole object).
    Ignored,
    /// A range that starts past the end.
    Unsatisfiable,
}

impl ByteRange {
    fn parse(value: &str, size: u64) -> Self {
        let Some(spec) = value.trim().strip_prefix("bytes=") else {
            return Self::Ignored;
        };
        if spec.contains(',') {
            return Self::Ignored;
        }
        let Some((start, end)) = spec.trim().split_once('-') else {
            return Self::Ignored;
        };
        let number = |s: &str| s.trim().parse::<u64>().ok();
        match (start.trim().is_empty(), number(start), number(end)) {
            // `bytes=-n`: the last n bytes.
            (true, _, Some(0)) => Self::Unsatisfiable,
            (true, _, Some(n)) if size > 0 => Self::Satisfiable(size.saturating_sub(n), size - 1),
            (false, Some(s), _) if s >= size => Self::Unsatisfiable,
            (false, Some(s), None) if end.trim().is_empty() => Self::Satisfiable(s, size - 1),
            (false, Some(s), Some(e)) if e >= s => Self::Satisfiable(s, e.min(size - 1)),
            _ => Self::Ignored,
        }
    }
}

/// The status that a request's conditions (`If-Match`, `If-Unmodified-Since`, `If-None-Match`,
/// `If-Modified-Since`, in RFC 9110's order) call for instead of the object, if any.
fn precondition(headers: &HeaderMap, etag: &str, modified: DateTime<Utc>) -> Option<StatusCode> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let matches = |list: &str| {
        list.split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
    };
    let date = |s: &str| DateTime::parse_from_rfc2822(s).ok().map(|d| d.to_utc());
    let modified = DateTime::from_timestamp(modified.timestamp(), 0).unwrap_or(modified);
    if let Some(list) = text(header::IF_MATCH) {
        if !matches(list) {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    } else if let Some(since) = text(header::IF_UNMODIFIED_SINCE).and_then(date) {
        if modified > since {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    if let Some(list) = text(header::IF_NONE_MATCH) {
        if matches(list) {
            return Some(StatusCode::NOT_MODIFIED);
        }
    } else if let Some(since) = text(header::IF_MODIFIED_SINCE).and_then(date) {
        if modified <= since {
            return Some(StatusCode::NOT_MODIFIED);
        }
    }
    None
}

fn object_headers(response: &mut Response, etag: &str, modified: DateTime<Utc>, length: u64) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(GZIP));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    let http_date = modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(value) = HeaderValue::from_str(&http_date) {
        headers.insert(header::LAST_MODIFIED, value);
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
    fn ranges_are_parsed_like_s3() {
        use ByteRange::*;
        assert_eq!(ByteRange::parse("bytes=0-9", 100), Satisfiable(0, 9));
        assert_eq!(ByteRange::parse("bytes=90-200", 100), Satisfiable(90, 99));
        assert_eq!(ByteRange::parse("bytes=10-", 100), Satisfiable(10, 99));
        assert_eq!(ByteRange::parse("bytes=-10", 100), Satisfiable(90, 99));
        assert_eq!(ByteRange::parse("bytes=-500", 100), Satisfiable(0, 99));
        assert_eq!(ByteRange::parse("bytes=100-", 100), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=-0", 100), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=5-2", 100), Ignored);
        assert_eq!(ByteRange::parse("bytes=0-1,5-6", 100), Ignored);
        assert_eq!(ByteRange::parse("items=0-1", 100), Ignored);
    }

    #[test]
    fn conditions_follow_rfc_order() {
        let modified = DateTime::parse_from_rfc3339("2024-05-07T10:00:00Z")
            .unwrap()
            .to_utc();
        let check = |pairs: &[(header::HeaderName, &str)]| {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                headers.insert(k.clone(), HeaderValue::from_str(v).unwrap());
            }
            precondition(&headers, "\"abc\"", modified)
        };
        assert_eq!(check(&[]), None);
        assert_eq!(check(&[(header::IF_MATCH, "\"abc\"")]), None);
        assert_eq!(
            check(&[(header::IF_MATCH, "\"old\"")]),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(
            check(&[(header::IF_NONE_MATCH, "\"abc\"")]),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(
            check(&[(header::IF_MODIFIED_SINCE, "Tue, 07 May 2024 10:00:00 GMT")]),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(
            check(&[(header::IF_UNMODIFIED_SINCE, "Mon, 06 May 2024 10:00:00 GMT")]),
            Some(StatusCode::PRECONDITION_FAILED)
        );
    }

    #[test]
    fn xml_text_is_escaped() {
        let mut xml = String::new();
        element(&mut xml, "Prefix", "a<b>&\"c\"");
        assert_eq!(xml, "<Prefix>a&lt;b&gt;&amp;&quot;c&quot;</Prefix>");
    }
}
