use std::num::NonZeroU32;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Everything [`PolygonClient`](crate::PolygonClient) needs, passed in explicitly (this crate
/// never reads the environment). `Debug` shows the key as `[REDACTED]`.
///
/// Build it with [`PolygonConfig::new`] and change fields as needed:
///
/// ```
/// # use backfill_polygon::PolygonConfig;
/// # use std::num::NonZeroU32;
/// let config = PolygonConfig {
///     requests_per_minute: NonZeroU32::new(5), // a free key
///     ..PolygonConfig::new("my-key".into())
/// };
/// assert!(!format!("{config:?}").contains("my-key"));
/// ```
#[derive(Debug, Clone)]
pub struct PolygonConfig {
    /// Where the API lives, without a trailing path: `https://api.massive.com` by default
    /// (`https://api.polygon.io` works the same).
    pub base_url: String,
    /// The API key, sent as `Authorization: Bearer`.
    pub api_key: SecretString,
    /// At most this many requests in any 60 s (in any `rate_window`), across every task using
    /// the client (5 for a free key). `None` (the default) means no client-side limit.
    pub requests_per_minute: Option<NonZeroU32>,
    /// The window `requests_per_minute` applies to (default 60 s, as Polygon counts; tests
    /// against the simulator shorten it).
    pub rate_window: Duration,
    /// Retries after the first attempt for transient failures (default 5).
    pub max_retries: u32,
    /// The first backoff cap; each retry doubles it (default 500 ms). The wait is drawn uniformly
    /// below the cap ("full jitter").
    pub initial_backoff: Duration,
    /// The largest backoff cap (default 30 s).
    pub max_backoff: Duration,
    /// Retrying stops when the next wait would end later than this after the first attempt
    /// (default 5 min).
    pub max_retry_elapsed: Duration,
    /// The wait after a 429 without `Retry-After` (default 60 s). During it the client sends
    /// nothing.
    pub rate_limit_cooldown: Duration,
    /// The TCP and TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// The timeout of a whole request, body included (default 60 s; a 50,000-bar page is a few MB).
    pub request_timeout: Duration,
}

impl PolygonConfig {
    /// The default base URL.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.massive.com";

    /// The defaults documented on each field, with this key.
    pub fn new(api_key: SecretString) -> Self {
        Self {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            api_key,
            requests_per_minute: None,
            rate_window: Duration::from_secs(60),
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_elapsed: Duration::from_secs(300),
            rate_limit_cooldown: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }

    /// A name for the key that can be stored and shown: the first 128 bits of a SHA-256 of the
    /// key, in hex. The same key always gives the same id (processes sharing a key share its
    /// quota through it), and the key cannot be recovered from it.
    pub fn key_id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"backfill request quota\0")
            .chain_update(self.api_key.expose_secret().as_bytes())
            .finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The same configuration against another base URL (the simulator, a proxy).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_id_names_the_key_without_showing_it() {
        let config = |key: &str| PolygonConfig::new(key.into());
        let id = config("secret-key-123").key_id();
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert!(!id.contains("secret"), "{id}");
        assert_eq!(config("secret-key-123").key_id(), id);
        assert_ne!(config("secret-key-124").key_id(), id);
    }
}
