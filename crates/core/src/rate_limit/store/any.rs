//! [`AnyStore`]: the store chosen by configuration, so one stack type serves both.

use std::future::{Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::rate_limit::store::MemoryStore;
use crate::rate_limit::store::{Acquire, Admission, Lesson, QuotaClass, RateLimitStore, Scope};

/// The in-process store or, with the `redis` feature, the Redis store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// In this process only.
    Memory(MemoryStore),
    /// Shared by every replica through Redis.
    #[cfg(feature = "redis")]
    Redis(super::redis::RedisStore),
}

impl AnyStore {
    /// The in-process store: itself, or the Redis store's fallback.
    pub fn memory(&self) -> &MemoryStore {
        match self {
            AnyStore::Memory(m) => m,
            #[cfg(feature = "redis")]
            AnyStore::Redis(r) => r.fallback(),
        }
    }

    /// What the metrics read of the store, without keeping it alive.
    #[cfg(feature = "metrics")]
    pub(crate) fn observer(&self) -> super::StoreObserver {
        match self {
            AnyStore::Memory(m) => m.observer(),
            #[cfg(feature = "redis")]
            AnyStore::Redis(r) => r.observer(),
        }
    }

    /// What the store counted of its decisions (the Redis store keeps them with its
    /// fallback's, in this process).
    pub fn tallies(&self) -> &super::StoreTallies {
        self.memory().tallies()
    }

    /// What the store holds for `number` (see [`MemoryStore::inspect`]).
    ///
    /// # Errors
    ///
    /// `transport` when Redis does not answer.
    pub async fn inspect(&self, number: u64) -> Result<super::NumberLimits, crate::Error> {
        match self {
            AnyStore::Memory(m) => Ok(m.inspect(number)),
            #[cfg(feature = "redis")]
            AnyStore::Redis(r) => r.inspect(number).await,
        }
    }

    /// Removes `number`'s cooldowns (see [`MemoryStore::clear`]); returns how many were in
    /// force.
    ///
    /// # Errors
    ///
    /// `transport` when Redis does not answer.
    pub async fn clear(
        &self,
        number: u64,
        kind: Option<super::QuotaClass>,
    ) -> Result<usize, crate::Error> {
        match self {
            AnyStore::Memory(m) => Ok(m.clear(number, kind)),
            #[cfg(feature = "redis")]
            AnyStore::Redis(r) => r.clear(number, kind).await,
        }
    }

    /// Checks answered by the Redis store's `on_store_error` instead of Redis (always 0
    /// in memory).
    pub fn fallback_answers(&self) -> u64 {
        match self {
            AnyStore::Memory(_) => 0,
            #[cfg(feature = "redis")]
            AnyStore::Redis(r) => r.fallback_answers(),
        }
    }
}

impl From<MemoryStore> for AnyStore {
    fn from(m: MemoryStore) -> Self {
        AnyStore::Memory(m)
    }
}

/// The future of [`AnyStore`]: ready at once in memory, a round trip with Redis.
pub enum AnyFuture {
    /// The in-process answer.
    Ready(Ready<Admission>),
    /// A Redis round trip.
    #[cfg(feature = "redis")]
    Redis(super::redis::RedisFuture),
}

impl std::fmt::Debug for AnyFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnyFuture")
    }
}

impl Future for AnyFuture {
    type Output = Admission;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Admission> {
        match self.get_mut() {
            AnyFuture::Ready(r) => Pin::new(r).poll(cx),
            #[cfg(feature = "redis")]
            AnyFuture::Redis(f) => Pin::new(f).poll(cx),
        }
    }
}

/// The future of recording a lesson in [`AnyStore`]: done at once in memory, a bounded
/// round trip with Redis.
pub enum AnyLearnFuture {
    /// Recorded in memory already.
    Ready(Ready<()>),
    /// On its way to Redis.
    #[cfg(feature = "redis")]
    Redis(super::redis::LearnFuture),
}

impl std::fmt::Debug for AnyLearnFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnyLearnFuture")
    }
}

impl Future for AnyLearnFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            AnyLearnFuture::Ready(r) => Pin::new(r).poll(cx),
            #[cfg(feature = "redis")]
            AnyLearnFuture::Redis(f) => Pin::new(f).poll(cx),
        }
    }
}

impl RateLimitStore for AnyStore {
    type Future = AnyFuture;
    type LearnFuture = AnyLearnFuture;

    fn acquire(&self, key: Option<u64>, class: QuotaClass) -> Acquire<AnyFuture> {
        self.acquire_in(key, None, class)
    }

    fn acquire_in(
        &self,
        key: Option<u64>,
        waba: Option<u64>,
        class: QuotaClass,
    ) -> Acquire<AnyFuture> {
        match self {
            AnyStore::Memory(m) => match m.acquire_in(key, waba, class) {
                Acquire::Ready(a) => Acquire::Ready(a),
                Acquire::Pending(f) => Acquire::Pending(AnyFuture::Ready(f)),
            },
            #[cfg(feature = "redis")]
            AnyStore::Redis(r) => match r.acquire_in(key, waba, class) {
                Acquire::Ready(a) => Acquire::Ready(a),
                Acquire::Pending(f) => Acquire::Pending(AnyFuture::Redis(f)),
            },
        }
    }

    fn refusal_message(&self, scope: Scope) -> String {
        self.memory().limits().refusal_message(scope)
    }

    fn learn(&self, key: Option<u64>, class: QuotaClass, lesson: Lesson) -> AnyLearnFuture {
        match self {
            AnyStore::Memory(m) => AnyLearnFuture::Ready(m.learn(key, class, lesson)),
            #[cfg(feature = "redis")]
            AnyStore::Redis(r) => AnyLearnFuture::Redis(r.learn(key, class, lesson)),
        }
    }
}
