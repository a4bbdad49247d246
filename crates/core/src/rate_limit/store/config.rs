//! `[rate_limit.store]`: which store keeps the limiter's state, how to reach Redis, and
//! what to do when it fails.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::redis_url::RedisUrl;

/// What the store does when Redis fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// Fall back to an in-process store with `quota / replicas` (the default).
    #[default]
    Local,
    /// Fail closed: refuse every call while Redis is down.
    Deny,
    /// Fail open: let every call through while Redis is down. Risky: nothing limits.
    Allow,
}

/// Which store keeps the rate-limit state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In this process (governor): zero setup, per replica.
    #[default]
    Memory,
    /// In Redis, shared by every replica (the `redis` feature).
    Redis,
    /// In a Redis Cluster (the `redis` feature): a number's keys share a hash tag, the
    /// app's and each WABA's keys live on their own shards.
    #[serde(alias = "redis-cluster")]
    RedisCluster,
}

/// `[rate_limit.store]`: where the limiter's state lives and what to do when it fails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `memory`, `redis` or `redis_cluster`.
    pub kind: StoreKind,
    /// The Redis URL (`redis://[:password@]host:port[/db]`); its password is never shown.
    pub url: Option<RedisUrl>,
    /// `redis_cluster`: the nodes to learn the cluster from (any of its primaries; one is
    /// enough, more survive one being down at start). `url` counts as one more.
    pub urls: Vec<RedisUrl>,
    /// Prepended to every Redis key.
    pub key_prefix: String,
    /// The longest a Redis check (or lesson) may take before `on_store_error` applies;
    /// longer than zero.
    #[serde(with = "crate::duration::timeout")]
    pub timeout: Duration,
    /// What to do when Redis fails: `local`, `deny` or `allow`.
    pub on_store_error: OnStoreError,
    /// How many replicas share the quotas (the local fallback holds `1/replicas`).
    pub replicas: u32,
    /// Overrides `rate_limit.max_cooldown` when set.
    #[serde(with = "crate::duration::opt_duration")]
    pub max_cooldown: Option<Duration>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            url: None,
            urls: Vec::new(),
            key_prefix: "wa-verify:".to_owned(),
            timeout: Duration::from_millis(50),
            on_store_error: OnStoreError::Local,
            replicas: 1,
            max_cooldown: None,
        }
    }
}
