//! An outage of Redis: `on_store_error` answers, and one call per interval probes Redis.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::state::Inner;
use crate::rate_limit::store::{
    Acquire, Admission, OnStoreError, QuotaClass, RateLimitStore, Scope,
};

/// How long Redis is skipped after a failure before it is tried again.
const PROBE_EVERY: Duration = Duration::from_millis(200);

/// What went wrong, for the outage warning: the kind only, as an error's text could
/// carry more than an operator should see in a log.
pub(super) fn why(e: &redis::RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connection_refusal() {
        "connection refused"
    } else if e.is_connection_dropped() {
        "connection dropped"
    } else if e.is_io_error() {
        "I/O error"
    } else {
        "error answer"
    }
}

impl Inner {
    /// Whether a check skips Redis. During an outage, once the probe time has come, one
    /// check claims the probe and asks Redis; the others keep to the fallback, answered at
    /// once, until Redis has answered (or the next probe time if it never does). So an
    /// outage costs one call per [`PROBE_EVERY`] the store timeout, not every call made
    /// while a probe is out.
    pub(super) fn skipping(&self) -> bool {
        if !self.outage.load(Ordering::Relaxed) {
            return false;
        }
        let at = self.probe_at.load(Ordering::Relaxed);
        let now = self.now_ms();
        now < at
            || self
                .probe_at
                .compare_exchange(
                    at,
                    now + PROBE_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
    }

    pub(super) fn failed(&self, why: &str) {
        self.probe_at.store(
            self.now_ms() + PROBE_EVERY.as_millis() as u64,
            Ordering::Relaxed,
        );
        if !self.outage.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                url = %self.url(),
                why,
                policy = ?self.config.on_store_error,
                "rate-limit store unavailable; applying on_store_error until it answers"
            );
        }
    }

    /// A call about one number's (or one WABA's) keys failed: one Redis is down; on a
    /// cluster, only that shard may be.
    pub(super) fn number_failed(&self, why: &str) {
        match self.clustered() {
            true => self.shard_failed(why),
            false => self.failed(why),
        }
    }

    /// On a cluster: one shard failed. Only the calls it holds fall back, so Redis is
    /// not skipped; the warning says so once, until every shard answers again.
    pub(super) fn shard_failed(&self, why: &str) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                url = %self.url(),
                why,
                policy = ?self.config.on_store_error,
                "a rate-limit store shard is unavailable; applying on_store_error to the calls it holds"
            );
        }
    }

    pub(super) fn recovered(&self) {
        let degraded = self.degraded.swap(false, Ordering::Relaxed);
        if self.outage.swap(false, Ordering::Relaxed) || degraded {
            tracing::info!(url = %self.url(), "rate-limit store answers again");
        }
    }

    pub(super) fn on_error(
        &self,
        key: Option<u64>,
        waba: Option<u64>,
        class: QuotaClass,
    ) -> Admission {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        match self.config.on_store_error {
            OnStoreError::Local => match self.fallback.acquire_in(key, waba, class) {
                Acquire::Ready(a) => a,
                Acquire::Pending(_) => Admission::Go,
            },
            OnStoreError::Deny => Admission::Wait {
                wait: PROBE_EVERY,
                scope: Scope::StoreUnavailable,
            },
            OnStoreError::Allow => Admission::Go,
        }
    }
}
