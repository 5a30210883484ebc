//! AWS Signature Version 4 as S3 checks it for header-signed requests: the canonical request,
//! the string to sign, the signing key derived from the secret, date, region and service, and a
//! constant-time comparison of the HMAC-SHA256 signature.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>

use axum::http::{header, HeaderMap, Uri};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The SHA-256 of an empty body, hex.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// How far a request's `x-amz-date` may be from the server's clock, as S3 allows.
const MAX_SKEW: TimeDelta = TimeDelta::minutes(15);

/// The credentials a request must be signed with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Credentials<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
}

/// Why a request was refused, with the S3 error it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No `Authorization` header, or no `x-amz-date`.
    Missing(&'static str),
    /// An `Authorization` header that is not a SigV4 header S3 understands.
    Malformed(String),
    /// A key id other than the configured one.
    UnknownKey,
    /// A signature that does not match the request and the secret.
    SignatureMismatch,
    /// An `x-amz-date` more than 15 minutes away from now.
    Skewed,
    /// No `x-amz-content-sha256`, which S3 requires.
    MissingContentSha,
    /// An `x-amz-content-sha256` that is not the hash of the (empty) body.
    ContentShaMismatch,
}

impl AuthError {
    /// The HTTP status S3 answers with.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::MissingContentSha | Self::ContentShaMismatch => 400,
            Self::Missing(_) | Self::UnknownKey | Self::SignatureMismatch | Self::Skewed => 403,
        }
    }

    /// S3's error code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Missing(_) => "AccessDenied",
            Self::Malformed(_) => "AuthorizationHeaderMalformed",
            Self::UnknownKey => "InvalidAccessKeyId",
            Self::SignatureMismatch => "SignatureDoesNotMatch",
            Self::Skewed => "RequestTimeTooSkewed",
            Self::MissingContentSha => "InvalidRequest",
            Self::ContentShaMismatch => "XAmzContentSHA256Mismatch",
        }
    }

    /// S3's message.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Missing(text) => (*text).to_owned(),
            Self::Malformed(text) => format!("The authorization header is malformed; {text}"),
            Self::UnknownKey => {
                "The AWS Access Key Id you provided does not exist in our records.".to_owned()
            }
            Self::SignatureMismatch => "The request signature we calculated does not match the \
                signature you provided. Check your key and signing method."
                .to_owned(),
            Self::Skewed => {
                "The difference between the request time and the current time is too large."
                    .to_owned()
            }
            Self::MissingContentSha => {
                "Missing required header for this request: x-amz-content-sha256".to_owned()
            }
            Self::ContentShaMismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_owned()
            }
        }
    }
}

/// Checks the SigV4 `Authorization` header of a body-less request (GET, HEAD) against
/// `credentials`, with `now` as the server's clock.
pub(crate) fn verify(
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    credentials: Credentials<'_>,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing("Access Denied"))?
        .to_str()
        .map_err(|_| AuthError::Malformed("it is not ASCII".to_owned()))?;
    let auth = Authorization::parse(authorization)?;
    if auth.access_key_id != credentials.access_key_id {
        return Err(AuthError::UnknownKey);
    }
    let amz_date = header_str(headers, "x-amz-date").ok_or(AuthError::Missing(
        "AWS authentication requires a valid Date or x-amz-date header",
    ))?;
    let signed_at = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| AuthError::Missing("AWS authentication requires a valid x-amz-date header"))?
        .and_utc();
    if signed_at.format("%Y%m%d").to_string() != auth.date {
        return Err(AuthError::Malformed(format!(
            "the credential date {} is not the date of x-amz-date {amz_date}",
            auth.date
        )));
    }
    if (now - signed_at).abs() > MAX_SKEW {
        return Err(AuthError::Skewed);
    }
    let payload =
        header_str(headers, "x-amz-content-sha256").ok_or(AuthError::MissingContentSha)?;
    let unsigned = payload == "UNSIGNED-PAYLOAD" || payload.starts_with("STREAMING-");
    if !unsigned && !payload.eq_ignore_ascii_case(EMPTY_SHA256) {
        return Err(AuthError::ContentShaMismatch);
    }
    if !auth.signed_headers.split(';').any(|h| h == "host") {
        return Err(AuthError::Malformed(
            "the host header must be signed".to_owned(),
        ));
    }

    let canonical = canonical_request(method, uri, headers, auth.signed_headers, payload)
        .ok_or(AuthError::SignatureMismatch)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(
        credentials.secret_access_key,
        auth.date,
        auth.region,
        auth.service,
    );
    let given = unhex(auth.signature).ok_or(AuthError::SignatureMismatch)?;
    let mut mac = hmac(&key);
    mac.update(string_to_sign.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| AuthError::SignatureMismatch)
}

/// The parts of `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/s3/aws4_request,
/// SignedHeaders=a;b, Signature=hex`.
#[derive(Debug)]
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(value: &'a str) -> Result<Self, AuthError> {
        let rest = value
            .strip_prefix(ALGORITHM)
            .filter(|r| r.starts_with(' '))
            .ok_or_else(|| AuthError::Malformed(format!("the algorithm must be {ALGORITHM}")))?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (name, value) = part.trim().split_once('=').ok_or_else(|| {
                AuthError::Malformed(format!("{:?} is not name=value", part.trim()))
            })?;
            match name {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
        let missing = |name: &str| AuthError::Malformed(format!("{name} is missing"));
        let credential = credential.ok_or_else(|| missing("Credential"))?;
        let mut scope = credential.split('/');
        let mut next = || scope.next().filter(|s| !s.is_empty());
        let (Some(access_key_id), Some(date), Some(region), Some(service), Some("aws4_request")) =
            (next(), next(), next(), next(), next())
        else {
            return Err(AuthError::Malformed(format!(
                "the credential {credential:?} is not KEY/DATE/REGION/SERVICE/aws4_request"
            )));
        };
        if service != "s3" {
            return Err(AuthError::Malformed(format!(
                "the service must be s3, not {service:?}"
            )));
        }
        Ok(Self {
            access_key_id,
            date,
            region,
            service,
            signed_headers: signed_headers.ok_or_else(|| missing("SignedHeaders"))?,
            signature: signature.ok_or_else(|| missing("Signature"))?,
        })
    }
}

/// The canonical request, or `None` when a signed header is absent.
fn canonical_request(
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &str,
    payload: &str,
) -> Option<String> {
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let values: Vec<String> = if name == "host" {
            let host = header_str(headers, "host")
                .map(str::to_owned)
                .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))?;
            vec![host]
        } else {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().map(collapse_spaces))
                .collect::<Result<_, _>>()
                .ok()?
        };
        if values.is_empty() {
            return None;
        }
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    // S3 signs the path as sent (already URI-encoded), without normalising it.
    let path = if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    };
    Some(format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{payload}",
        canonical_query(uri.query().unwrap_or(""))
    ))
}

/// The query's parameters, decoded, re-encoded strictly (`A-Za-z0-9-_.~` kept) and sorted.
pub(crate) fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (strict_encode(&decode(k)), strict_encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-decodes a query component, `+` being a space (as form encoding and `url` decode it).
fn decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Percent-encodes every byte but the unreserved ones (RFC 3986), upper-case hex.
pub(crate) fn strict_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Trims a header value and collapses runs of spaces, as the canonical headers require.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"))
}

fn hmac_bytes(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac(key);
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_bytes(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac_bytes(&k_date, region);
    let k_service = hmac_bytes(&k_region, service);
    hmac_bytes(&k_service, "aws4_request")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    // The examples of AWS's "Signature Calculations for the Authorization Header" page.
    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const CREDENTIALS: Credentials<'static> = Credentials {
        access_key_id: KEY_ID,
        secret_access_key: SECRET,
    };

    fn aws_example(extra: &[(&'static str, &str)], signed: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            HeaderValue::from_static("examplebucket.s3.amazonaws.com"),
        );
        headers.insert("x-amz-date", HeaderValue::from_static("20130524T000000Z"));
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static(EMPTY_SHA256),
        );
        for (k, v) in extra {
            headers.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={KEY_ID}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={signature}"
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        headers
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn accepts_awss_documented_get_object_and_list_examples() {
        let now = at("2013-05-24T00:05:00Z");
        let get = aws_example(
            &[("range", "bytes=0-9")],
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        );
        let uri: Uri = "/test.txt".parse().unwrap();
        assert_eq!(verify("GET", &uri, &get, CREDENTIALS, now), Ok(()));
        let list = aws_example(
            &[],
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        );
        let uri: Uri = "/?prefix=J&max-keys=2".parse().unwrap();
        assert_eq!(verify("GET", &uri, &list, CREDENTIALS, now), Ok(()));
        // Anything signed that changes breaks the signature.
        let uri: Uri = "/?prefix=K&max-keys=2".parse().unwrap();
        assert_eq!(
            verify("GET", &uri, &list, CREDENTIALS, now),
            Err(AuthError::SignatureMismatch)
        );
        let uri: Uri = "/test.txt".parse().unwrap();
        let mut ranged = get.clone();
        ranged.insert("range", HeaderValue::from_static("bytes=0-10"));
        assert_eq!(
            verify("GET", &uri, &ranged, CREDENTIALS, now),
            Err(AuthError::SignatureMismatch)
        );
        assert_eq!(
            verify("HEAD", &uri, &get, CREDENTIALS, now),
            Err(AuthError::SignatureMismatch)
        );
    }

    #[test]
    fn refuses_wrong_secrets_keys_dates_and_missing_headers() {
        let now = at("2013-05-24T00:05:00Z");
        let uri: Uri = "/test.txt".parse().unwrap();
        let get = aws_example(
            &[("range", "bytes=0-9")],
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        );
        let wrong_secret = Credentials {
            secret_access_key: "not-the-secret",
            ..CREDENTIALS
        };
        let err = verify("GET", &uri, &get, wrong_secret, now).unwrap_err();
        assert_eq!((err.status(), err.code()), (403, "SignatureDoesNotMatch"));
        let other_key = Credentials {
            access_key_id: "AKIDOTHER",
            ..CREDENTIALS
        };
        let err = verify("GET", &uri, &get, other_key, now).unwrap_err();
        assert_eq!((err.status(), err.code()), (403, "InvalidAccessKeyId"));
        let err = verify("GET", &uri, &get, CREDENTIALS, at("2013-05-24T00:20:01Z")).unwrap_err();
        assert_eq!(err.code(), "RequestTimeTooSkewed");

        let mut missing = get.clone();
        missing.remove(header::AUTHORIZATION);
        let err = verify("GET", &uri, &missing, CREDENTIALS, now).unwrap_err();
        assert_eq!((err.status(), err.code()), (403, "AccessDenied"));
        let mut no_date = get.clone();
        no_date.remove("x-amz-date");
        assert_eq!(
            verify("GET", &uri, &no_date, CREDENTIALS, now)
                .unwrap_err()
                .code(),
            "AccessDenied"
        );
        let mut no_sha = get.clone();
        no_sha.remove("x-amz-content-sha256");
        assert_eq!(
            verify("GET", &uri, &no_sha, CREDENTIALS, now)
                .unwrap_err()
                .status(),
            400
        );
        let mut basic = get;
        basic.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        let err = verify("GET", &uri, &basic, CREDENTIALS, now).unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (400, "AuthorizationHeaderMalformed")
        );
    }

    #[test]
    fn canonical_queries_are_decoded_encoded_strictly_and_sorted() {
        assert_eq!(
            canonical_query("prefix=us_stocks_sip%2Fday&list-type=2&max-keys=10"),
            "list-type=2&max-keys=10&prefix=us_stocks_sip%2Fday"
        );
        assert_eq!(canonical_query("a=b+c&acl"), "a=b%20c&acl=");
        assert_eq!(canonical_query(""), "");
    }
}
