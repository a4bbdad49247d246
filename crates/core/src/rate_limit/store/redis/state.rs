//! What every clone of a [`RedisStore`](super::RedisStore) shares: the connection, the
//! scripts, the limits as the script takes them, the fallback and the outage state.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use crate::rate_limit::limits::Limits;
use crate::rate_limit::store::{MemoryStore, StoreConfig};

pub(super) struct Inner {
    pub(super) client: redis::Client,
    pub(super) conn_config: ConnectionManagerConfig,
    /// Made on first use, inside a runtime: the manager starts its driver task there,
    /// so it is made again when the batcher is (its runtime has gone).
    pub(super) conn: Mutex<Option<ConnectionManager>>,
    pub(super) acquire: Script,
    pub(super) cooldown: Script,
    pub(super) wrong_code: Script,
    pub(super) config: StoreConfig,
    pub(super) limits: Limits,
    /// Per-number quotas (request_code's, then verify_code's) and the global one, as the
    /// script takes them: (interval µs, tolerance µs, scope).
    pub(super) quotas: Vec<(i64, i64, i64)>,
    /// The indexes in `quotas` of each class's per-number quotas.
    pub(super) per_class: [Vec<usize>; 4],
    pub(super) fallback: MemoryStore,
    /// Checks answered by `on_store_error` instead of Redis.
    pub(super) fallbacks: AtomicU64,
    pub(super) outage: AtomicBool,
    /// During an outage, Redis is skipped until this instant (ms since `epoch`).
    pub(super) probe_at: AtomicU64,
    /// On tokio's clock, so a paused clock drives the probes in tests.
    pub(super) epoch: tokio::time::Instant,
}

/// Microseconds, as the script counts: saturating, never wrapping.
pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Inner {
    /// Where Redis is, for logs: its `Display` hides every secret.
    pub(super) fn url(&self) -> &dyn std::fmt::Display {
        match &self.config.url {
            Some(url) => url,
            None => &"(no url)",
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The shared connection. Only called inside a runtime (from the batch and lesson
    /// tasks).
    pub(super) fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = conn.as_ref() {
            return Ok(c.clone());
        }
        let made = self
            .client
            .get_connection_manager_lazy(self.conn_config.clone())?;
        Ok(conn.insert(made).clone())
    }

    /// Runs an `EVALSHA`, loading the script first if Redis has lost it.
    pub(super) async fn eval(&self, cmd: &redis::Cmd) -> redis::RedisResult<Vec<i64>> {
        let mut conn = self.conn()?;
        match cmd.query_async(&mut conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.acquire.load_async(&mut conn).await?;
                cmd.query_async(&mut conn).await
            }
            answer => answer,
        }
    }
}
