//! GetObject and HeadObject: a file's bytes, whole or in a range, under its conditions.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::{error_response, error_with_key, error_xml, with_amz_id, GZIP};
use crate::calendar::day_of_date;
use crate::flatfile::{parse_key, FlatFile};
use crate::server::{aborted, Simulator, Verdict};
use crate::Fault;

/// `GET` and `HEAD /{bucket}/{key}`: GetObject and HeadObject.
pub(in crate::server) async fn object(
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
}
