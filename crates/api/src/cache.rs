//! A short-lived cache of serialised job status answers, so that many clients polling one job
//! (dashboards, scripts) cost one storage read per job per interval instead of one each, and
//! never wait for storage while a recent answer exists.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use backfill_domain::JobId;
use tokio::time::Instant;

/// Serialised status bodies by job.
///
/// An answer younger than `ttl` is served as is. An older one (up to `max_stale`) is still
/// served at once while a single background read refreshes it (stale-while-revalidate), so a
/// busy database delays the freshness of the answer, not the answer. Without a usable answer,
/// concurrent callers for one job wait for a single read.
#[derive(Debug)]
pub(crate) struct StatusCache {
    ttl: Duration,
    max_stale: Duration,
    entries: Mutex<HashMap<JobId, Arc<Entry>>>,
}

#[derive(Debug, Default)]
struct Entry {
    value: Mutex<Option<(Instant, Bytes)>>,
    /// Held by the caller that reads storage when there is no usable answer.
    loading: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

impl Entry {
    fn value(&self) -> MutexGuard<'_, Option<(Instant, Bytes)>> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self, body: &Bytes) {
        *self.value() = Some((Instant::now(), body.clone()));
    }
}

/// Entries kept before old ones are swept.
const SWEEP_ABOVE: usize = 1024;

impl StatusCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            max_stale: ttl * 10,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The answer for `id`: cached, or produced by `load` (and then cached).
    pub(crate) async fn get_or_load<E, F, Fut>(&self, id: JobId, load: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>> + Send + 'static,
        E: Send + 'static,
    {
        if self.ttl.is_zero() {
            return load().await;
        }
        let entry = self.entry(id);
        let age = entry
            .value()
            .as_ref()
            .map(|(at, body)| (at.elapsed(), body.clone()));
        match age {
            Some((age, body)) if age < self.ttl => return Ok(body),
            Some((age, body)) if age < self.max_stale => {
                if !entry.refreshing.swap(true, Ordering::AcqRel) {
                    let entry = Arc::clone(&entry);
                    let refresh = load();
                    tokio::spawn(async move {
                        if let Ok(fresh) = refresh.await {
                            entry.store(&fresh);
                        }
                        entry.refreshing.store(false, Ordering::Release);
                    });
                }
                return Ok(body);
            }
            _ => {}
        }
        let _loading = entry.loading.lock().await;
        if let Some((at, body)) = entry.value().as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(body.clone());
            }
        }
        let body = load().await?;
        entry.store(&body);
        Ok(body)
    }

    /// Forgets `id`, after a change made through this process (cancel, retry).
    pub(crate) fn invalidate(&self, id: JobId) {
        self.lock().remove(&id);
    }

    fn entry(&self, id: JobId) -> Arc<Entry> {
        let mut entries = self.lock();
        if entries.len() > SWEEP_ABOVE {
            let max_stale = self.max_stale;
            entries.retain(|_, e| {
                e.value()
                    .as_ref()
                    .is_some_and(|(at, _)| at.elapsed() < max_stale)
            });
        }
        Arc::clone(entries.entry(id).or_default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A loader that counts its calls, takes 10 ms and answers the call's number.
    fn loader(
        loads: &Arc<AtomicUsize>,
    ) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<Bytes, ()>> + Send>> {
        let loads = Arc::clone(loads);
        move || {
            Box::pin(async move {
                let n = loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(Bytes::from(n.to_string()))
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_readers_share_one_load() {
        let cache = StatusCache::new(Duration::from_millis(200));
        let loads = Arc::new(AtomicUsize::new(0));
        let id = JobId::new();
        let all =
            futures::future::join_all((0..50).map(|_| cache.get_or_load(id, loader(&loads)))).await;
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(all.iter().all(|b| b.as_ref().unwrap() == "0"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_answer_is_served_at_once_while_one_refresh_runs() {
        let cache = StatusCache::new(Duration::from_millis(200));
        let loads = Arc::new(AtomicUsize::new(0));
        let id = JobId::new();
        assert_eq!(cache.get_or_load(id, loader(&loads)).await.unwrap(), "0");
        tokio::time::advance(Duration::from_millis(250)).await;
        // Stale: answered from the cache without waiting, one refresh started.
        for _ in 0..10 {
            assert_eq!(cache.get_or_load(id, loader(&loads)).await.unwrap(), "0");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert_eq!(cache.get_or_load(id, loader(&loads)).await.unwrap(), "1");
        // Too old to serve: read again before answering.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(cache.get_or_load(id, loader(&loads)).await.unwrap(), "2");
        cache.invalidate(id);
        assert_eq!(cache.get_or_load(id, loader(&loads)).await.unwrap(), "3");
    }

    #[tokio::test]
    async fn a_zero_ttl_always_loads() {
        let cache = StatusCache::new(Duration::ZERO);
        let loads = Arc::new(AtomicUsize::new(0));
        let id = JobId::new();
        for n in 0..3 {
            let got = cache.get_or_load(id, loader(&loads)).await.unwrap();
            assert_eq!(got, n.to_string());
        }
    }
}
