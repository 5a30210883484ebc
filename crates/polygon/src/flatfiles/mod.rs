//! [`FlatFilesClient`]: Polygon (Massive) Flat Files over S3, with `object_store`.
//!
//! A day's file is looked up with a HEAD (its ETag and size), then downloaded with one streamed
//! GET that sends `If-Match: <etag>`, so a file replaced in between fails with
//! [`Error::FileChanged`] instead of mixing two versions. The bytes go through a bounded channel
//! to a blocking thread that inflates, splits and parses them into pages (see `decode`). A
//! download cut short is resumed by a GET of the bytes after the last one received (`Range`,
//! still with `If-Match`), so the inflater goes on as if nothing happened; `object_store`'s own
//! retries are off, so that every request is counted and the budget is this client's.

mod config;
mod decode;
mod errors;
mod rows;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::NaiveDate;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::instrument::WithSubscriber;
use tracing::Instrument;

use crate::backoff;
use crate::{Dataset, DayFile, Error, FilePages, FlatFiles, FlatFilesStats, Result};
pub use config::FlatFilesConfig;
use decode::{Chunk, InMemory, Plan};
use errors::{from_store, Secrets};

/// The Flat Files client. Cheap to clone: clones share the connection pool and the counters.
#[derive(Clone)]
pub struct FlatFilesClient {
    inner: Arc<Inner>,
}

struct Inner {
    store: AmazonS3,
    config: FlatFilesConfig,
    secrets: Secrets,
    counters: Arc<Counters>,
}

impl fmt::Debug for FlatFilesClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the store: its Debug output shows the credentials.
        f.debug_struct("FlatFilesClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl FlatFilesClient {
    /// A client of the bucket `config` names.
    ///
    /// # Errors
    /// [`Error::Config`] for an endpoint that is not an `http(s)://` URL without credentials,
    /// query or fragment, an empty key, or `page_rows` 0.
    pub fn new(config: FlatFilesConfig) -> Result<Self> {
        let endpoint = validate_endpoint(&config.endpoint)?;
        let secrets = Secrets {
            access_key_id: config.access_key_id.expose_secret().to_owned(),
            secret_access_key: config.secret_access_key.expose_secret().to_owned(),
        };
        if secrets.access_key_id.trim().is_empty() || secrets.secret_access_key.trim().is_empty() {
            return Err(Error::Config {
                message: "the flat files access key id or secret access key is empty".to_owned(),
            });
        }
        if config.page_rows == 0 {
            return Err(Error::Config {
                message: "page_rows must be at least 1".to_owned(),
            });
        }
        let options = ClientOptions::new()
            .with_allow_http(endpoint.starts_with("http://"))
            .with_connect_timeout(config.connect_timeout)
            // Per phase instead (`request_timeout`, `read_timeout`): a whole file may take minutes.
            .with_timeout_disabled()
            .with_user_agent(object_store::HeaderValue::from_static(concat!(
                "backfill-polygon/",
                env!("CARGO_PKG_VERSION")
            )));
        let store = AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&secrets.access_key_id)
            .with_secret_access_key(&secrets.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            // This client retries (and counts) every request itself.
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| Error::Config {
                message: secrets.redact(format!("could not build the s3 client: {e}")),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                config,
                secrets,
                counters: Arc::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FlatFilesConfig {
        &self.inner.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FlatFilesStats {
        self.inner.counters.snapshot()
    }
}

#[async_trait]
impl FlatFiles for FlatFilesClient {
    #[tracing::instrument(skip_all, fields(dataset = dataset.prefix(), %day))]
    async fn day_file(&self, dataset: Dataset, day: NaiveDate) -> Result<Option<DayFile>> {
        let key = dataset.key(day);
        let inner = &self.inner;
        let path = path_of(&key)?;
        let (path, key_ref) = (&path, &key);
        let head = retrying(inner, &format!("HEAD {key}"), move || async move {
            let key = key_ref;
            inner.counters.add(&inner.counters.heads, 1);
            tracing::debug!(key, "flat files HEAD");
            let head = tokio::time::timeout(inner.config.request_timeout, inner.store.head(path));
            match head.await {
                Ok(result) => result.map_err(|e| inner.error(&e, &format!("HEAD {key}"))),
                Err(_) => Err(inner.timeout(&format!(
                    "HEAD {key}: no response within {:?}",
                    inner.config.request_timeout
                ))),
            }
        })
        .await;
        let meta = match head {
            Ok(meta) => meta,
            Err(Error::NotFound { .. }) => {
                tracing::debug!(key, "no flat file");
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let etag = meta.e_tag.ok_or_else(|| Error::Decode {
            message: format!("HEAD {key}: the bucket sent no ETag"),
        })?;
        Ok(Some(DayFile {
            dataset,
            day,
            key,
            etag,
            size: meta.size,
        }))
    }

    #[tracing::instrument(skip_all, fields(key = %file.key, skip_rows))]
    async fn pages(&self, file: &DayFile, skip_rows: u64) -> Result<FilePages> {
        // The first GET here, so that a refusal or a changed file is this call's error.
        let opened = open_with_retries(&self.inner, file, 0, "GET").await?;
        let (chunks, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let plan = Plan {
            key: file.key.clone(),
            dataset: file.dataset,
            skip_rows,
            page_rows: self.inner.config.page_rows,
        };
        let pages = decode::spawn(plan, receiver, Arc::clone(&self.inner.counters));
        let download = download(Arc::clone(&self.inner), file.clone(), opened, chunks);
        tokio::spawn(
            download
                .instrument(tracing::Span::current())
                .with_current_subscriber(),
        );
        Ok(pages)
    }
}

/// Decodes a whole gzipped day file of `dataset` held in memory, as [`FlatFiles::pages`] does a
/// download: `on_page` receives pages of at most `page_rows` candles (`bytes` counts the whole
/// file on the first page, `requests` is 0). For tests and benchmarks.
///
/// # Errors
/// [`Error::Decode`] when the bytes are not gzip or have no usable header line;
/// [`Error::Config`] when `page_rows` is 0.
pub fn decode_day_file(
    dataset: Dataset,
    gzip: &[u8],
    skip_rows: u64,
    page_rows: usize,
    mut on_page: impl FnMut(crate::FilePage),
) -> Result<()> {
    if page_rows == 0 {
        return Err(Error::Config {
            message: "page_rows must be at least 1".to_owned(),
        });
    }
    let plan = Plan {
        key: "the file".to_owned(),
        dataset,
        skip_rows,
        page_rows,
    };
    decode::decode(&plan, InMemory::new(gzip), &Counters::default(), |page| {
        on_page(page);
        true
    })
}

/// Chunks of a download (tens of kilobytes each) buffered ahead of the decoder.
const CHUNKS_IN_FLIGHT: usize = 32;

/// An open GET: its body from `from` on, the size of the whole file it says, and the GETs it
/// took (retries included).
struct Opened {
    body: BoxStream<'static, object_store::Result<Bytes>>,
    size: u64,
    requests: u32,
}

/// Downloads the rest of `file` into `chunks`, resuming after failures within the budget.
/// Stops early when the decoder has gone (the channel closed).
async fn download(inner: Arc<Inner>, file: DayFile, opened: Opened, chunks: mpsc::Sender<Chunk>) {
    let Opened {
        mut body,
        size,
        mut requests,
    } = opened;
    // A body shorter than the file (a response cut short yet well framed) is resumed too.
    let size = size.max(file.size);
    let mut received: u64 = 0;
    let mut budget = Budget::default();
    loop {
        let next = tokio::time::timeout(inner.config.read_timeout, body.next()).await;
        let error = match next {
            Ok(Some(Ok(bytes))) => {
                budget.reset();
                received += bytes.len() as u64;
                inner
                    .counters
                    .add(&inner.counters.bytes, bytes.len() as u64);
                let chunk = Chunk::Data {
                    bytes,
                    requests: std::mem::take(&mut requests),
                };
                if chunks.send(chunk).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(None) if received >= size => return,
            Ok(None) => inner.transport(&format!(
                "GET {}: the body ended after {received} of {size} bytes",
                file.key
            )),
            // Every byte is there: whatever broke after them does not matter.
            Ok(Some(Err(_))) if received >= size => return,
            Ok(Some(Err(error))) => inner.error(&error, &format!("GET {}", file.key)),
            Err(_) => inner.timeout(&format!(
                "GET {}: no bytes for {:?} after {received} of {size}",
                file.key, inner.config.read_timeout
            )),
        };
        tracing::warn!(key = %file.key, received, size, error = %error, "a flat file download broke, resuming");
        // Until bytes arrive again, every failure (of a resuming GET or of its body) belongs to
        // the same run.
        let mut attempts = 0u32;
        let resumed = retry_after(
            &inner,
            &mut budget,
            error,
            &format!("GET {}", file.key),
            || {
                attempts += 1;
                open(&inner, &file, received, "resume")
            },
        )
        .await;
        requests += attempts;
        match resumed {
            Ok(opened) => body = opened.body,
            Err(error) => {
                let _ = chunks.send(Chunk::Failed(error)).await;
                return;
            }
        }
    }
}

/// Opens a GET of `file` from byte `from`, retrying transient failures.
async fn open_with_retries(inner: &Inner, file: &DayFile, from: u64, what: &str) -> Result<Opened> {
    let mut attempts = 0u32;
    let opened = retrying(inner, &format!("GET {}", file.key), || {
        attempts += 1;
        open(inner, file, from, what)
    })
    .await?;
    Ok(Opened {
        requests: attempts,
        ..opened
    })
}

/// One GET of `file` from byte `from`, conditional on its ETag.
async fn open(inner: &Inner, file: &DayFile, from: u64, what: &str) -> Result<Opened> {
    let path = path_of(&file.key)?;
    let counters = &inner.counters;
    counters.add(&counters.gets, 1);
    if from > 0 {
        counters.add(&counters.resumes, 1);
    }
    tracing::debug!(key = %file.key, from, what, "flat files GET");
    let options = GetOptions {
        if_match: Some(file.etag.clone()),
        range: (from > 0).then_some(GetRange::Offset(from)),
        ..GetOptions::default()
    };
    let label = format!("GET {}", file.key);
    let get = tokio::time::timeout(
        inner.config.request_timeout,
        inner.store.get_opts(&path, options),
    );
    let result = match get.await {
        Ok(Ok(result)) => result,
        Ok(Err(error)) => {
            return Err(match inner.error(&error, &label) {
                Error::NotFound { message } => Error::FileChanged {
                    message: format!("{message} (the file is gone)"),
                },
                other => other,
            })
        }
        Err(_) => {
            return Err(inner.timeout(&format!(
                "{label}: no response within {:?}",
                inner.config.request_timeout
            )))
        }
    };
    if result
        .meta
        .e_tag
        .as_deref()
        .is_some_and(|etag| etag != file.etag)
    {
        return Err(Error::FileChanged {
            message: format!(
                "{label}: the bucket sent ETag {} instead of {}",
                result.meta.e_tag.as_deref().unwrap_or_default(),
                file.etag
            ),
        });
    }
    Ok(Opened {
        size: result.meta.size,
        body: result.into_stream(),
        requests: 1,
    })
}

/// The retries left to a run of failures: it starts at the first failure and ends when a
/// request succeeds (or, for a download, when bytes arrive again).
#[derive(Debug, Default)]
struct Budget {
    retries: u32,
    started: Option<Instant>,
}

impl Budget {
    /// Progress was made: the next failure starts a new run.
    fn reset(&mut self) {
        *self = Self::default();
    }

    /// The wait before retrying after `error`, or `None` when it is permanent, a changed file,
    /// or the run is out of retries or time.
    fn next(&mut self, config: &FlatFilesConfig, error: &Error) -> Option<Duration> {
        // A changed file stays changed: the caller must look it up again.
        if error.is_permanent() || matches!(error, Error::FileChanged { .. }) {
            return None;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        self.retries += 1;
        let delay = backoff::jittered(backoff::cap(
            config.initial_backoff,
            config.max_backoff,
            self.retries,
        ));
        let in_time = started.elapsed() + delay <= config.max_retry_elapsed;
        (self.retries <= config.max_retries && in_time).then_some(delay)
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or the retry budget runs out.
async fn retrying<T, F, Fut>(inner: &Inner, what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    match attempt().await {
        Ok(value) => Ok(value),
        Err(error) => retry_after(inner, &mut Budget::default(), error, what, attempt).await,
    }
}

/// Retries `attempt` after the failure `error` within `budget`.
async fn retry_after<T, F, Fut>(
    inner: &Inner,
    budget: &mut Budget,
    mut error: Error,
    what: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    loop {
        let Some(delay) = budget.next(&inner.config, &error) else {
            tracing::warn!(what, retries = budget.retries.saturating_sub(1), error = %error, "giving up on flat files request");
            return Err(error);
        };
        let retries = budget.retries;
        tracing::warn!(
            what,
            retries,
            delay_ms = delay.as_millis() as u64,
            error = %error,
            "flat files request failed, retrying"
        );
        let counters = &inner.counters;
        counters.add(&counters.retries, 1);
        counters.add(&counters.backoff_wait_ns, delay.as_nanos() as u64);
        tokio::time::sleep(delay).await;
        error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
    }
}

impl Inner {
    /// Maps an `object_store` error and counts it.
    fn error(&self, error: &object_store::Error, what: &str) -> Error {
        let error = from_store(error, what, &self.secrets);
        match &error {
            Error::Timeout { .. } => self.counters.add(&self.counters.timeouts, 1),
            Error::Transport { .. } => self.counters.add(&self.counters.transport_errors, 1),
            _ => {}
        }
        error
    }

    fn timeout(&self, message: &str) -> Error {
        self.counters.add(&self.counters.timeouts, 1);
        Error::Timeout {
            message: self.secrets.redact(message.to_owned()),
        }
    }

    fn transport(&self, message: &str) -> Error {
        self.counters.add(&self.counters.transport_errors, 1);
        Error::Transport {
            message: self.secrets.redact(message.to_owned()),
        }
    }
}

fn path_of(key: &str) -> Result<Path> {
    Path::parse(key).map_err(|e| Error::BadRequest {
        message: format!("{key} is not a valid object key: {e}"),
    })
}

/// The endpoint without a trailing slash, when it is a usable `http(s)://` URL.
fn validate_endpoint(endpoint: &str) -> Result<String> {
    let invalid = |reason: &str| Error::Config {
        message: format!("the flat files endpoint {reason}"),
    };
    let url = url::Url::parse(endpoint).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must start with http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err(invalid("must have no path, query or fragment"));
    }
    Ok(endpoint.trim_end_matches('/').to_owned())
}

/// The client's counters, shared with the download tasks and decoding threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    heads: AtomicU64,
    gets: AtomicU64,
    resumes: AtomicU64,
    bytes: AtomicU64,
    retries: AtomicU64,
    timeouts: AtomicU64,
    transport_errors: AtomicU64,
    backoff_wait_ns: AtomicU64,
    files: AtomicU64,
    pages: AtomicU64,
    candles: AtomicU64,
    rows_dropped: AtomicU64,
}

impl Counters {
    fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a page handed out.
    pub(crate) fn page(&self, candles: u64, dropped: u64) {
        self.add(&self.pages, 1);
        self.add(&self.candles, candles);
        self.add(&self.rows_dropped, dropped);
    }

    /// Counts a file read to its end.
    pub(crate) fn file_done(&self) {
        self.add(&self.files, 1);
    }

    fn snapshot(&self) -> FlatFilesStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FlatFilesStats {
            requests: get(&self.heads) + get(&self.gets),
            heads: get(&self.heads),
            gets: get(&self.gets),
            resumes: get(&self.resumes),
            bytes: get(&self.bytes),
            retries: get(&self.retries),
            timeouts: get(&self.timeouts),
            transport_errors: get(&self.transport_errors),
            backoff_wait: Duration::from_nanos(get(&self.backoff_wait_ns)),
            files: get(&self.files),
            pages: get(&self.pages),
            candles: get(&self.candles),
            rows_dropped: get(&self.rows_dropped),
        }
    }
}

#[cfg(test)]
mod tests;
