//! Where rate-limit state lives: in this process (governor) or, later, shared by replicas.

use std::fmt;
use std::future::{Future, Ready};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::RateLimiter;

use super::quota::Quota;

/// The answer of a store for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Send now: a slot of every quota was taken.
    Go,
    /// Not before `wait` has passed; nothing was taken.
    Wait {
        /// How long until a slot of the binding quota frees up.
        wait: Duration,
        /// Which quota binds.
        scope: Scope,
    },
}

/// Which limit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// A per-number quota.
    Number,
    /// The global (app-level) quota.
    Global,
}

impl Scope {
    /// `number` or `global`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Number => "number",
            Scope::Global => "global",
        }
    }
}

/// An answer now, or a future one (for stores across the network).
#[derive(Debug)]
pub enum Acquire<F> {
    /// Known at once.
    Ready(Admission),
    /// Known when `F` resolves.
    Pending(F),
}

/// The state behind the rate-limit layer: checks every quota for a call at once.
pub trait RateLimitStore: Clone + Send + Sync + 'static {
    /// The future of an answer that is not known at once.
    type Future: Future<Output = Admission> + Send + 'static;

    /// Takes a slot of the per-number quotas for `key` (none when `None`) and of the
    /// global quota, or says how long to wait.
    fn acquire(&self, key: Option<u64>) -> Acquire<Self::Future>;
}

// ===== clock =====

/// governor's clock on tokio's time, so tokio's paused clock drives the limiter in tests.
#[derive(Clone, Debug)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.start.elapsed())
    }
}

// ===== hasher =====

/// A fast hasher for numeric keys: phone number ids are already well spread, so a
/// multiply-rotate is enough and much cheaper than SipHash on the hot path.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(26);
    }
}

impl BuildHasher for KeyHasher {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

// ===== MemoryStore =====

type Keyed = RateLimiter<u64, DashMapStateStore<u64, KeyHasher>, TokioClock, NoOpMiddleware<Nanos>>;
type Direct = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// The in-process store: governor's keyed GCRA per number and a direct one for the app.
///
/// No allocation on the hot path once a number is tracked. Idle numbers are forgotten
/// every `evict_every` calls, so memory stays bounded with millions of numbers.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    per_number: Vec<Keyed>,
    global: Option<Direct>,
    clock: TokioClock,
    evict_every: u64,
    calls: AtomicU64,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("per_number_quotas", &self.inner.per_number.len())
            .field("global", &self.inner.global.is_some())
            .field("tracked_numbers", &self.tracked_numbers())
            .finish()
    }
}

impl MemoryStore {
    /// A store enforcing every quota in `per_number` for each number, and `global` for all.
    pub fn new(per_number: &[Quota], global: Option<Quota>) -> Self {
        Self::with_eviction(per_number, global, 1 << 16)
    }

    /// Like [`new`](Self::new), forgetting idle numbers every `evict_every` calls (0: never).
    pub fn with_eviction(per_number: &[Quota], global: Option<Quota>, evict_every: u64) -> Self {
        let clock = TokioClock::default();
        Self {
            inner: Arc::new(Inner {
                per_number: per_number
                    .iter()
                    .map(|q| {
                        RateLimiter::new(
                            q.to_governor(),
                            DashMapStateStore::with_hasher(KeyHasher(0)),
                            clock.clone(),
                        )
                    })
                    .collect(),
                global: global
                    .map(|q| RateLimiter::direct_with_clock(q.to_governor(), clock.clone())),
                clock,
                evict_every,
                calls: AtomicU64::new(0),
            }),
        }
    }

    /// How many numbers are tracked now (the most over the per-number quotas).
    pub fn tracked_numbers(&self) -> usize {
        self.inner
            .per_number
            .iter()
            .map(Keyed::len)
            .max()
            .unwrap_or(0)
    }

    /// Forgets numbers whose state is back to a full quota, and returns the memory.
    pub fn evict(&self) {
        for limiter in &self.inner.per_number {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn check(&self, key: Option<u64>) -> Admission {
        let i = &*self.inner;
        if let Some(key) = key {
            // Per-number first: refusals here (the common case under load) spend nothing.
            for limiter in &i.per_number {
                if let Err(not_until) = limiter.check_key(&key) {
                    return Admission::Wait {
                        wait: not_until.wait_time_from(i.clock.now()),
                        scope: Scope::Number,
                    };
                }
            }
        }
        if let Some(global) = &i.global {
            if let Err(not_until) = global.check() {
                return Admission::Wait {
                    wait: not_until.wait_time_from(i.clock.now()),
                    scope: Scope::Global,
                };
            }
        }
        Admission::Go
    }
}

impl RateLimitStore for MemoryStore {
    type Future = Ready<Admission>;

    fn acquire(&self, key: Option<u64>) -> Acquire<Ready<Admission>> {
        let i = &*self.inner;
        if i.evict_every > 0
            && i.calls.fetch_add(1, Ordering::Relaxed) % i.evict_every == i.evict_every - 1
        {
            self.evict();
        }
        Acquire::Ready(self.check(key))
    }
}
