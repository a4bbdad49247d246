//! Every layer's settings in one serde config, so deployments tune without recompiling.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::dedup::DedupConfig;
/// Durations in config files (the crate-wide [`crate::duration`] module).
pub use crate::duration;
use crate::error::Error;
use crate::graph::{BaseUrl, Encoding, DEFAULT_BODY_LIMIT};
use crate::operation::ApiVersion;
pub use crate::rate_limit::{OnStoreError, RateLimitConfig, StoreConfig, StoreKind};
pub use crate::retry::RetryConfig;
use crate::timeout::{AttemptTimeoutLayer, DeadlineLayer};
use crate::transport::TransportConfig;

/// The whole stack's settings, as read from TOML. Every field has a default.
///
/// ```
/// use wa_verify_core::config::StackConfig;
/// let cfg = StackConfig::from_toml(r#"
///     api_version = "v23.0"
///     [timeouts]
///     attempt = "2s"
///     deadline = "10s"
///     [retry]
///     max_attempts = 3
///     [rate_limit]
///     per_number = [{ rate = "1/min", burst = 3 }, { rate = "5/h" }]
///     global = { rate = "80/s" }
///     max_wait = "500ms"
/// "#)?;
/// assert_eq!(cfg.retry.max_attempts, 3);
/// assert_eq!(cfg.rate_limit.per_number.len(), 2);
/// # Ok::<(), wa_verify_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StackConfig {
    /// Where the Graph API lives.
    #[serde(with = "display_fromstr")]
    pub base_url: BaseUrl,
    /// The Graph API version in the path.
    #[serde(with = "display_fromstr")]
    pub api_version: ApiVersion,
    /// The request body encoding.
    #[serde(with = "display_fromstr")]
    pub encoding: Encoding,
    /// The `User-Agent`, when not the default `wa-verify/<version>`.
    pub user_agent: Option<String>,
    /// The largest answer body read.
    pub body_limit: usize,
    /// Attempt timeout and overall deadline.
    pub timeouts: TimeoutConfig,
    /// One code per number: single flight, live-code window, idempotency keys.
    pub dedup: DedupConfig,
    /// The retry policy.
    pub retry: RetryConfig,
    /// Per-number and global quotas.
    pub rate_limit: RateLimitConfig,
    /// The HTTP transport.
    pub transport: TransportConfig,
    /// Tracing.
    pub trace: TraceConfig,
    /// The businesses this deployment serves (`[[tenants]]`): each call uses its tenant's
    /// token; empty: one token for every call.
    pub tenants: Vec<crate::tenant::TenantConfig>,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            base_url: BaseUrl::default(),
            api_version: ApiVersion::default(),
            encoding: Encoding::default(),
            user_agent: None,
            body_limit: DEFAULT_BODY_LIMIT,
            timeouts: TimeoutConfig::default(),
            dedup: DedupConfig::default(),
            retry: RetryConfig::default(),
            rate_limit: RateLimitConfig::default(),
            transport: TransportConfig::default(),
            trace: TraceConfig::default(),
            tenants: Vec::new(),
        }
    }
}

impl StackConfig {
    /// Parses TOML.
    ///
    /// # Errors
    ///
    /// `invalid_input` saying which key is wrong and why.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| {
            // The values' own refusals arrive inside the TOML error as our `Display`;
            // one "invalid input:" in front of the whole is enough.
            let text = e.to_string().replace("invalid input: ", "");
            Error::invalid_input(format!("invalid config: {}", text.trim_end()))
        })
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    ///
    /// `invalid_input` when the file cannot be read or parsed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!("cannot read config {}: {e}", path.display()))
        })?;
        Self::from_toml(&text)
    }
}

/// The two timeouts; `"off"` turns one off. A zero is refused: it would time out before
/// anything is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeoutConfig {
    /// One attempt's limit.
    #[serde(with = "duration::opt_timeout")]
    pub attempt: Option<Duration>,
    /// The whole call's limit, backoff sleeps included.
    #[serde(with = "duration::opt_timeout")]
    pub deadline: Option<Duration>,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            attempt: Some(Duration::from_secs(10)),
            deadline: Some(Duration::from_secs(30)),
        }
    }
}

impl TimeoutConfig {
    /// Refuses a zero timeout set in code (config files cannot hold one).
    ///
    /// # Errors
    ///
    /// `invalid_input` naming the timeout.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, t) in [("attempt", self.attempt), ("deadline", self.deadline)] {
            if t.is_some_and(|t| t.is_zero()) {
                return Err(Error::invalid_input(format!(
                    "timeouts.{name} must be longer than zero; write \"off\" to turn it off"
                )));
            }
        }
        Ok(())
    }

    /// The attempt timeout layer.
    pub fn attempt_layer(&self) -> AttemptTimeoutLayer {
        AttemptTimeoutLayer::new(self.attempt)
    }

    /// The deadline layer. Its timer is the attempt layer's: this one only writes the
    /// deadline on the request (see [`DeadlineLayer::enforced_below`]).
    pub fn deadline_layer(&self) -> DeadlineLayer {
        DeadlineLayer::new(self.deadline).enforced_below()
    }
}

/// Tracing settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TraceConfig {
    /// Open a span per call.
    pub enabled: bool,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

mod display_fromstr {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_is_the_default() {
        assert_eq!(StackConfig::from_toml("").unwrap(), StackConfig::default());
    }

    #[test]
    fn round_trips_through_toml() {
        let mut cfg = StackConfig::from_toml(
            r#"
            base_url = "http://127.0.0.1:8080"
            encoding = "form"
            [timeouts]
            attempt = "off"
            deadline = "1m"
            [rate_limit]
            per_number = [{ rate = "1/min", burst = 3 }]
            "#,
        )
        .unwrap();
        assert_eq!(cfg.timeouts.attempt, None);
        assert_eq!(cfg.encoding, Encoding::Form);
        cfg.retry.max_attempts = 2;
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(StackConfig::from_toml(&text).unwrap(), cfg);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values_with_the_reason() {
        let e = StackConfig::from_toml("[retry]\nmax_atempts = 3").unwrap_err();
        assert!(e.to_string().contains("max_atempts"), "{e}");
        let e = StackConfig::from_toml("base_url = \"http://example.com\"").unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = StackConfig::from_toml("[rate_limit]\nper_number = [{ rate = \"5/week\" }]")
            .unwrap_err();
        assert!(e.to_string().contains("5/min"), "{e}");
        let mut cfg = StackConfig::default();
        cfg.retry.max_attempts = 0;
        assert!(cfg
            .retry
            .policy(None)
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
    }

    #[test]
    fn a_redis_cluster_store_takes_its_nodes_and_says_what_is_missing() {
        for kind in ["redis_cluster", "redis-cluster"] {
            let cfg = StackConfig::from_toml(&format!(
                "[rate_limit.store]\nkind = \"{kind}\"\n\
                 urls = [\"redis://127.0.0.1:7000\", \"redis://:FAKE-pass@127.0.0.1:7001\"]"
            ))
            .unwrap();
            assert_eq!(cfg.rate_limit.store.kind, StoreKind::RedisCluster);
            assert_eq!(cfg.rate_limit.store.urls.len(), 2);
            assert!(!format!("{cfg:?}").contains("FAKE-pass"));
            #[cfg(feature = "redis")]
            assert!(cfg.rate_limit.store().is_ok());
        }
        let cfg = StackConfig::from_toml("[rate_limit.store]\nkind = \"redis_cluster\"").unwrap();
        let e = cfg.rate_limit.store().unwrap_err().to_string();
        #[cfg(feature = "redis")]
        assert!(e.contains("rate_limit.store.urls"), "{e}");
        #[cfg(not(feature = "redis"))]
        assert!(e.contains("`redis` feature"), "{e}");
    }
}
