//! Where the dedup state lives: in this process, or in the Redis the rate limiter uses.

use std::fmt;
use std::sync::Arc;

use super::begin::{BoxFuture, Key, SendCode};
use super::config::{check_key, DedupConfig};
use super::memory::{MemoryDedup, MemoryLead};
use super::outcome::AsOutcome;
use crate::operation::{DedupRole, Progress};

/// The lead of one sending call: [`finish`](Lead::finish) it with the outcome. Dropped
/// unfinished (the call was cancelled), it finishes with what its progress allows.
pub(crate) enum Lead {
    Memory(MemoryLead),
    /// Boxed: every future that carries a lead is moved a few times per call, and the
    /// memory lead, on the fast path, is half the size.
    #[cfg(feature = "redis")]
    Redis(Box<super::redis::RedisLead>),
}

impl Lead {
    /// Lets a lead that is dropped unfinished tell whether its request may have been sent.
    pub(crate) fn watch(&mut self, progress: Arc<Progress>) {
        match self {
            Lead::Memory(l) => l.watch(progress),
            #[cfg(feature = "redis")]
            Lead::Redis(l) => l.watch(progress),
        }
    }

    /// Records the outcome, and hands it to any follower. Memory: done at once; Redis: the
    /// returned future writes it. The lead is left spent (dropping it does nothing more),
    /// and finished in place: the future that holds it returns its inner answer as it
    /// came, without moving the lead or the answer out first.
    pub(crate) fn finish(&mut self, result: &dyn AsOutcome) -> Option<BoxFuture<()>> {
        match self {
            Lead::Memory(l) => {
                l.finish(result);
                None
            }
            #[cfg(feature = "redis")]
            Lead::Redis(l) => l.finish(result.outcome()),
        }
    }
}

/// What a sending call learns, with this store's lead.
pub(crate) type Begin = super::begin::Begin<Lead>;

/// A begin answered at once (memory) or after a round trip (Redis).
pub(crate) enum BeginFuture {
    Ready(Begin),
    #[cfg(feature = "redis")]
    Pending(BoxFuture<Begin>),
}

/// The dedup state: in this process, or shared by every replica through Redis.
#[derive(Clone)]
pub struct DedupStore(Arc<Shared>);

/// One allocation for the state and the settings: a clone of the store (one per call in
/// tower's `oneshot`) is one reference count, not one per part.
struct Shared {
    inner: Inner,
    config: DedupConfig,
}

#[derive(Clone)]
enum Inner {
    Memory(MemoryDedup),
    /// With this process's own state for when Redis cannot be used.
    #[cfg(feature = "redis")]
    Redis(super::redis::RedisDedup, MemoryDedup),
}

impl fmt::Debug for DedupStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0.inner {
            Inner::Memory(_) => "memory",
            #[cfg(feature = "redis")]
            Inner::Redis(..) => "redis",
        };
        f.debug_struct("DedupStore")
            .field("store", &kind)
            .field("config", &self.0.config)
            .finish()
    }
}

impl DedupStore {
    /// A store in this process only.
    pub fn memory(config: DedupConfig) -> Self {
        Self(Arc::new(Shared {
            inner: Inner::Memory(MemoryDedup::new(&config)),
            config,
        }))
    }

    /// A store in the Redis the rate limiter's `store` uses: every replica shares it.
    /// While Redis cannot be used, `on_store_error` decides: `deny` refuses, the others
    /// use this process's own state.
    #[cfg(feature = "redis")]
    pub fn redis(store: &crate::rate_limit::redis::RedisStore, config: DedupConfig) -> Self {
        Self(Arc::new(Shared {
            inner: Inner::Redis(
                super::redis::RedisDedup::new(store, &config),
                MemoryDedup::new(&config),
            ),
            config,
        }))
    }

    /// The store beside the rate limiter's `store`: in Redis when the limiter's state is,
    /// so every replica shares one send; else in this process.
    pub fn beside(store: &crate::rate_limit::AnyStore, config: DedupConfig) -> Self {
        match store {
            #[cfg(feature = "redis")]
            crate::rate_limit::AnyStore::Redis(r) => Self::redis(r, config),
            _ => Self::memory(config),
        }
    }

    /// The settings.
    pub fn config(&self) -> &DedupConfig {
        &self.0.config
    }

    /// Decides what a sending call does: lead, answer at once, follow, or be refused.
    pub(crate) fn begin(&self, key: Key, role: DedupRole<'_>) -> BeginFuture {
        let send = match role {
            DedupRole::SendCode {
                method,
                resend,
                idempotency_key,
            } => {
                if let Some(k) = idempotency_key {
                    if let Err(e) = check_key(k) {
                        return BeginFuture::Ready(Begin::Refuse(e));
                    }
                }
                Some(SendCode {
                    method,
                    resend,
                    idempotency_key: idempotency_key.map(str::to_owned),
                })
            }
            _ => None,
        };
        match &self.0.inner {
            Inner::Memory(m) => BeginFuture::Ready(m.begin(key, send, Lead::Memory)),
            #[cfg(feature = "redis")]
            Inner::Redis(r, fallback) => {
                let (r, fallback) = (r.clone(), fallback.clone());
                BeginFuture::Pending(Box::pin(async move {
                    match r.begin(&key, send.as_ref()).await {
                        Ok(b) => b.map_lead(|l| Lead::Redis(Box::new(l))),
                        Err(super::redis::Unavailable::Deny) => Begin::Refuse(crate::Error::rate_limited_locally(
                            "the dedup store (Redis) is unavailable and rate_limit.store.on_store_error = \"deny\"; nothing was sent",
                            std::time::Duration::from_millis(200),
                        )),
                        Err(super::redis::Unavailable::Local) => {
                            fallback.begin(key, send, Lead::Memory)
                        }
                    }
                }))
            }
        }
    }

    /// A `verify_code` for the number succeeded: its live code is used up.
    pub(crate) fn verified(&self, key: &Key) -> Option<BoxFuture<()>> {
        match &self.0.inner {
            Inner::Memory(m) => {
                m.verified(key);
                None
            }
            #[cfg(feature = "redis")]
            Inner::Redis(r, fallback) => {
                fallback.verified(key);
                Some(r.verified(key))
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Every future of a sending call carries a lead and is moved a few times per call:
    /// the Redis lead (twice the size) stays boxed, so the fast path moves the memory one.
    #[test]
    fn a_lead_is_no_bigger_than_the_memory_lead() {
        let (lead, memory) = (
            std::mem::size_of::<Lead>(),
            std::mem::size_of::<MemoryLead>(),
        );
        assert!(lead <= memory + 8, "Lead {lead} bytes, MemoryLead {memory}");
    }
}
