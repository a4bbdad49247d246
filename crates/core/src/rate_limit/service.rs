//! The rate-limit layer and service: one store answer per call, waiting up to `max_wait`.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

use super::cooldowns::Cooldowns;
use super::future::{Learn, ResponseFuture};
use super::store::AnyStore;
use super::store::MemoryStore;
use super::store::{Acquire, RateLimitStore};
use super::{RateLimitKey, RateLimitStats};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::timeout::CarriesDeadline;

/// Applies [`RateLimit`]. See the [module docs](super) for an example.
#[derive(Clone, Debug)]
pub struct RateLimitLayer<St = MemoryStore> {
    store: St,
    max_wait: Duration,
    // `None`: do not learn from answers.
    cooldowns: Option<Arc<Cooldowns>>,
    stats: Arc<RateLimitStats>,
}

impl<St> RateLimitLayer<St> {
    /// A layer over `store` that fails fast (`max_wait` 0).
    pub fn new(store: St) -> Self {
        Self {
            store,
            max_wait: Duration::ZERO,
            cooldowns: Some(Arc::default()),
            stats: Arc::default(),
        }
    }

    /// What every service this layer built did: waits and local refusals.
    pub fn stats(&self) -> &Arc<RateLimitStats> {
        &self.stats
    }

    /// Records refusals, waits and learned cooldowns in `metrics`, and what the store
    /// knows when a reader collects (see [`metrics`](crate::metrics)). Counts start
    /// afresh for the services built after this.
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self
    where
        St: AsStore,
    {
        metrics.observe_store(&self.store.to_any());
        self.stats = Arc::new(RateLimitStats {
            metrics,
            ..RateLimitStats::default()
        });
        self
    }

    /// How long a number cools down after a throttle that gave no hint and whose code
    /// the cooldowns table does not name (default 10 min).
    #[must_use]
    pub fn default_cooldown(mut self, cooldown: Duration) -> Self {
        let mut c = self.cooldowns.as_deref().cloned().unwrap_or_default();
        c.default = cooldown;
        self.cooldowns = Some(Arc::new(c));
        self
    }

    /// The cooldowns by Graph code (see [`Cooldowns`]).
    #[must_use]
    pub fn cooldowns(mut self, cooldowns: Cooldowns) -> Self {
        self.cooldowns = Some(Arc::new(cooldowns));
        self
    }

    /// Whether Meta's answers teach the store (throttles become cooldowns, wrong codes
    /// count towards the guard). On by default.
    #[must_use]
    pub fn learn(mut self, yes: bool) -> Self {
        self.cooldowns = match (yes, self.cooldowns.take()) {
            (false, _) => None,
            (true, Some(c)) => Some(c),
            (true, None) => Some(Arc::default()),
        };
        self
    }

    /// How long a call may wait for its slot before failing with `rate_limited`.
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }
}

impl<S, St: Clone> Layer<S> for RateLimitLayer<St> {
    type Service = RateLimit<S, St>;

    fn layer(&self, inner: S) -> RateLimit<S, St> {
        RateLimit {
            inner,
            store: self.store.clone(),
            max_wait: self.max_wait,
            cooldowns: self.cooldowns.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// Limits calls per number and per app. See the [module docs](super) for an example.
#[derive(Clone, Debug)]
pub struct RateLimit<S, St = MemoryStore> {
    inner: S,
    store: St,
    max_wait: Duration,
    cooldowns: Option<Arc<Cooldowns>>,
    stats: Arc<RateLimitStats>,
}

impl<S, St> RateLimit<S, St> {
    /// A layer over `store`.
    pub fn layer(store: St) -> RateLimitLayer<St> {
        RateLimitLayer::new(store)
    }

    inner_service_accessors!();
}

impl<S, St, R> Service<R> for RateLimit<S, St>
where
    R: RateLimitKey + CarriesDeadline,
    S: Service<R> + Clone,
    S::Error: Into<Error>,
    St: RateLimitStore,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, St, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let key = req.rate_limit_key();
        let class = req.rate_limit_class();
        let waba = req.rate_limit_waba();
        let learn = Learn {
            store: self.store.clone(),
            key,
            class,
            cooldowns: self.cooldowns.clone(),
            waba,
            // Where the layer's metrics live: off (`None`, no clone cost) by default.
            metrics: self.stats.metrics.clone(),
        };
        match self.store.acquire_in(key, waba, class) {
            // The hot path: a slot now, call the instance that was polled ready.
            Acquire::Ready(super::Admission::Go) => {
                ResponseFuture::calling(self.inner.call(req), learn)
            }
            acquire => {
                // The latest the call may still go: never past its deadline, so a call
                // that cannot get its slot in time fails at once, having sent nothing.
                let now = tokio::time::Instant::now();
                let until = match req.deadline() {
                    Some(deadline) => deadline.min(now + self.max_wait),
                    None => now + self.max_wait,
                };
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                let stats = self.stats.clone();
                ResponseFuture::pending(acquire, ready, req, learn, until, stats)
            }
        }
    }
}

/// A store whose state the metrics can read when a reader collects.
pub trait AsStore {
    /// The store as an [`AnyStore`] (a clone sharing its state).
    fn to_any(&self) -> AnyStore;
}

impl AsStore for AnyStore {
    fn to_any(&self) -> AnyStore {
        self.clone()
    }
}

impl AsStore for MemoryStore {
    fn to_any(&self) -> AnyStore {
        self.clone().into()
    }
}

#[cfg(feature = "redis")]
impl AsStore for super::redis::RedisStore {
    fn to_any(&self) -> AnyStore {
        AnyStore::Redis(self.clone())
    }
}
