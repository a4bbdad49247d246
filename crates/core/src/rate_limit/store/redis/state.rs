//! What every clone of a [`RedisStore`](super::RedisStore) shares: the connection, the
//! scripts, the limits as the script takes them, the fallback and the outage state.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};

use crate::error::Error;
use crate::rate_limit::limits::Limits;
use crate::rate_limit::store::{MemoryStore, RedisUrl, StoreConfig, StoreKind};

/// How to reach Redis: one server, or a cluster.
pub(super) enum Client {
    Single(redis::Client, ConnectionManagerConfig),
    Cluster(ClusterClient, ClusterConfig),
}

/// A connection to one Redis or to a cluster; cheap to clone, multiplexed. The cluster
/// connection follows MOVED and ASK redirects itself; every command it is given must keep
/// its keys in one hash slot.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

pub(super) struct Inner {
    pub(super) client: Client,
    /// Made on first use, inside a runtime: the connection starts its driver task there,
    /// so it is made again when the batcher is (its runtime has gone).
    pub(super) conn: Mutex<Option<Conn>>,
    pub(super) acquire: Script,
    /// Cluster only: gives back what one shard took for a call another shard refused.
    pub(super) give_back: Script,
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
    /// On a cluster: some shard failed lately (the calls it holds fall back).
    pub(super) degraded: AtomicBool,
    /// During an outage, Redis is skipped until this instant (ms since `epoch`).
    pub(super) probe_at: AtomicU64,
    /// On tokio's clock, so a paused clock drives the probes in tests.
    pub(super) epoch: tokio::time::Instant,
}

/// The client `config` asks for: one Redis (`url`), or a cluster (`urls`, and `url`).
pub(super) fn client(config: &StoreConfig) -> Result<Client, Error> {
    // Connecting may take a few store timeouts (at least 40 ms); each answer only one.
    let connect = config.timeout.max(Duration::from_millis(10)) * 4;
    if config.kind == StoreKind::RedisCluster {
        let nodes: Vec<&RedisUrl> = config.urls.iter().chain(&config.url).collect();
        if nodes.is_empty() {
            return Err(Error::invalid_input(
                "rate_limit.store.kind = \"redis_cluster\" needs rate_limit.store.urls \
                 ([\"redis://host:port\", ...], any of the cluster's primaries)",
            ));
        }
        let client =
            redis::cluster::ClusterClientBuilder::new(nodes.iter().map(|u| u.expose_secret()))
                .connection_timeout(connect)
                .response_timeout(config.timeout)
                // Retries are how the cluster client follows MOVED and ASK: a few, quick. The
                // store timeout bounds them all, and past it `on_store_error` answers.
                .retries(3)
                .min_retry_wait(1)
                .max_retry_wait(
                    u64::try_from(config.timeout.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                )
                .build()
                .map_err(|_| {
                    let shown: Vec<String> = nodes.iter().map(|u| u.to_string()).collect();
                    Error::invalid_input(format!(
                        "cannot use Redis Cluster URLs {}",
                        shown.join(", ")
                    ))
                })?;
        let conn = ClusterConfig::new()
            .set_connection_timeout(connect)
            .set_response_timeout(config.timeout);
        return Ok(Client::Cluster(client, conn));
    }
    let url = config.url.as_ref().ok_or_else(|| {
        Error::invalid_input(
            "rate_limit.store.kind = \"redis\" needs rate_limit.store.url (redis://host:port)",
        )
    })?;
    let client = redis::Client::open(url.expose_secret())
        .map_err(|_| Error::invalid_input(format!("cannot use Redis URL {url}")))?;
    let conn = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(config.timeout))
        // No retries inside: a failed check falls back at once, and the outage probe
        // is the retry.
        .set_number_of_retries(0);
    Ok(Client::Single(client, conn))
}

/// Microseconds, as the script counts: saturating, never wrapping.
pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Inner {
    /// Where Redis is, for logs: its `Display` hides every secret.
    pub(super) fn url(&self) -> &dyn std::fmt::Display {
        match (&self.config.url, self.config.urls.first()) {
            (Some(url), _) | (None, Some(url)) => url,
            (None, None) => &"(no url)",
        }
    }

    /// Whether the store runs on a Redis Cluster (a call's keys span shards).
    pub(super) fn clustered(&self) -> bool {
        matches!(self.client, Client::Cluster(..))
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The shared connection. Only called inside a runtime (from the batch and lesson
    /// tasks).
    pub(super) fn conn(&self) -> redis::RedisResult<Conn> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = conn.as_ref() {
            return Ok(c.clone());
        }
        let made = match &self.client {
            Client::Single(client, config) => {
                Conn::Single(client.get_connection_manager_lazy(config.clone())?)
            }
            Client::Cluster(client, config) => {
                Conn::Cluster(client.get_pending_async_connection_with_config(config.clone()))
            }
        };
        Ok(conn.insert(made).clone())
    }

    /// Runs an `EVALSHA`, loading the script first if Redis has lost it.
    pub(super) async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<T> {
        let mut conn = self.conn()?;
        match cmd.query_async(&mut conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                // On a cluster, SCRIPT LOAD goes to every primary.
                script.load_async(&mut conn).await?;
                cmd.query_async(&mut conn).await
            }
            answer => answer,
        }
    }
}
