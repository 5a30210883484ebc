//! ListObjectsV2: the keys of the published files, found lazily from the calendar.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use super::{element, error_response, typed, with_amz_id, MAX_KEYS, XML_DECLARATION};
use crate::calendar::date;
use crate::flatfile::{flat_file_key, Dataset, FileId, Meta};
use crate::server::{aborted, Params, Simulator, Verdict};
use crate::{cursor, Fault};

/// `GET /{bucket}`: ListObjectsV2.
pub(in crate::server) async fn list_objects(
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
    let body = sim.list_xml(&query, &page, &metas);
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

impl Simulator {
    /// The ListBucketResult XML of a page, given the size and ETag of each of its files.
    fn list_xml(&self, query: &ListQuery, page: &ListPage, metas: &[Meta]) -> Vec<u8> {
        let mut xml = String::with_capacity(512 + page.contents.len() * 300);
        xml.push_str(XML_DECLARATION);
        xml.push_str("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
        element(&mut xml, "Name", &self.shared.config.bucket);
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
        for ((key, id), meta) in page.contents.iter().zip(metas) {
            xml.push_str("<Contents>");
            element(&mut xml, "Key", key);
            let modified = self.last_modified(id.day);
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
        xml.into_bytes()
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
