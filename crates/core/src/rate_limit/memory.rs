//! The in-process store: governor's GCRA per number and for the app, plus cooldowns, the
//! wrong-code guard and the registration budget, all in this process's memory.

use std::collections::VecDeque;
use std::fmt;
use std::future::Ready;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::RateLimiter;

use super::quota::Quota;
use super::store::{Acquire, Admission, Lesson, QuotaClass, RateLimitStore, Scope};

/// How long Meta blocks registration after 133016.
pub(crate) const REGISTRATION_BLOCK: Duration = Duration::from_secs(72 * 3600);

/// A limit of at most `max` events in a moving `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimit {
    /// The most events in any window.
    pub max: u32,
    /// The window.
    pub window: Duration,
}

/// Every limit a store enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// GCRA quotas every number must satisfy at once (request_code and verify_code).
    pub per_number: Vec<Quota>,
    /// The app-level GCRA quota over every call.
    pub global: Option<Quota>,
    /// register/deregister calls per number in a moving window (Meta: 10 per 72 hours).
    pub registration: Option<WindowLimit>,
    /// Wrong codes per number before verify_code pauses until the window passes.
    pub wrong_codes: Option<WindowLimit>,
    /// The longest cooldown recorded, whatever Meta's hint says (registration cooldowns
    /// are never shorter than Meta's 72-hour block).
    pub max_cooldown: Duration,
}

impl Default for Limits {
    /// No quotas; Meta's registration budget (10 per 72 h); 5 wrong codes per 10 minutes;
    /// cooldowns capped at 24 hours.
    fn default() -> Self {
        Self {
            per_number: Vec::new(),
            global: None,
            registration: Some(WindowLimit {
                max: 10,
                window: Duration::from_secs(72 * 3600),
            }),
            wrong_codes: Some(WindowLimit {
                max: 5,
                window: Duration::from_secs(600),
            }),
            max_cooldown: Duration::from_secs(24 * 3600),
        }
    }
}

impl Limits {
    /// The longest cooldown recorded for a class of calls: `max_cooldown`, except that
    /// Meta's 72-hour registration block (133016) is never cut short.
    pub fn cooldown_cap(&self, class: QuotaClass) -> Duration {
        match class {
            QuotaClass::Registration => self.max_cooldown.max(REGISTRATION_BLOCK),
            _ => self.max_cooldown,
        }
    }

    /// Only these GCRA quotas, nothing else.
    pub fn quotas(per_number: &[Quota], global: Option<Quota>) -> Self {
        Self {
            per_number: per_number.to_vec(),
            global,
            ..Self::default()
        }
    }
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

/// The in-process store (the default): zero setup, no allocation on its hot path once a
/// number is tracked. Idle numbers are forgotten every `evict_every` calls, so memory
/// stays bounded with millions of numbers.
///
/// Its limits hold in this process only; replicas each enforce their own.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    limits: Limits,
    per_number: Vec<Keyed>,
    global: Option<Direct>,
    clock: TokioClock,
    evict_every: u64,
    calls: AtomicU64,
    /// Cooldown ends (ns on `clock`) by (class, number); `active` skips the lookup when empty.
    cooldowns: DashMap<(usize, u64), u64, KeyHasherPair>,
    cooldowns_active: AtomicUsize,
    /// Until when the whole app cools down, per class (0: not).
    app_cooldown: [AtomicU64; 4],
    /// Wrong codes in the current window: (count, window end).
    wrong: DashMap<u64, (u32, u64), KeyHasher>,
    /// Times of the recent register/deregister calls per number.
    registrations: DashMap<u64, VecDeque<u64>, KeyHasher>,
}

/// Hashes `(class, number)` keys.
#[derive(Clone, Copy, Debug, Default)]
struct KeyHasherPair;

impl BuildHasher for KeyHasherPair {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("limits", &self.inner.limits)
            .field("tracked_numbers", &self.tracked_numbers())
            .finish()
    }
}

impl MemoryStore {
    /// A store enforcing every quota in `per_number` for each number, and `global` for all
    /// (plus the default registration budget and wrong-code guard).
    pub fn new(per_number: &[Quota], global: Option<Quota>) -> Self {
        Self::with_eviction(per_number, global, 1 << 16)
    }

    /// Like [`new`](Self::new), forgetting idle numbers every `evict_every` calls (0: never).
    pub fn with_eviction(per_number: &[Quota], global: Option<Quota>, evict_every: u64) -> Self {
        Self::with_limits(Limits::quotas(per_number, global), evict_every)
    }

    /// A store enforcing `limits`, forgetting idle numbers every `evict_every` calls.
    pub fn with_limits(limits: Limits, evict_every: u64) -> Self {
        let clock = TokioClock::default();
        Self {
            inner: Arc::new(Inner {
                per_number: limits
                    .per_number
                    .iter()
                    .map(|q| {
                        RateLimiter::new(
                            q.to_governor(),
                            DashMapStateStore::with_hasher(KeyHasher(0)),
                            clock.clone(),
                        )
                    })
                    .collect(),
                global: limits
                    .global
                    .map(|q| RateLimiter::direct_with_clock(q.to_governor(), clock.clone())),
                limits,
                clock,
                evict_every,
                calls: AtomicU64::new(0),
                cooldowns: DashMap::with_hasher(KeyHasherPair),
                cooldowns_active: AtomicUsize::new(0),
                app_cooldown: Default::default(),
                wrong: DashMap::with_hasher(KeyHasher(0)),
                registrations: DashMap::with_hasher(KeyHasher(0)),
            }),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
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

    /// The cooldown left for a class of calls to a number, if any.
    pub fn cooldown(&self, key: u64, class: QuotaClass) -> Option<Duration> {
        let now = self.now();
        let until = self
            .inner
            .cooldowns
            .get(&(class.index(), key))
            .map(|u| *u)?;
        (until > now).then(|| Duration::from_nanos(until - now))
    }

    /// Forgets numbers whose state no longer matters, and returns the memory.
    pub fn evict(&self) {
        let i = &*self.inner;
        for limiter in &i.per_number {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = self.now();
        i.cooldowns.retain(|_, until| *until > now);
        i.cooldowns_active
            .store(i.cooldowns.len(), Ordering::Relaxed);
        i.wrong.retain(|_, (_, end)| *end > now);
        if let Some(limit) = i.limits.registration {
            let window = limit.window.as_nanos() as u64;
            i.registrations
                .retain(|_, times| times.back().is_some_and(|t| t + window > now));
        }
        i.cooldowns.shrink_to_fit();
        i.wrong.shrink_to_fit();
        i.registrations.shrink_to_fit();
    }

    fn now(&self) -> u64 {
        self.inner.clock.now().as_u64()
    }

    fn wait(now: u64, until: u64, scope: Scope) -> Admission {
        Admission::Wait {
            wait: Duration::from_nanos(until.saturating_sub(now)),
            scope,
        }
    }

    /// Every limit except the GCRA quotas, which spend a slot and so come last.
    fn blocked(&self, key: Option<u64>, class: QuotaClass, now: u64) -> Option<Admission> {
        let i = &*self.inner;
        let app = i.app_cooldown[class.index()].load(Ordering::Relaxed);
        if app > now {
            return Some(Self::wait(now, app, Scope::Cooldown));
        }
        let key = key?;
        if i.cooldowns_active.load(Ordering::Relaxed) > 0 {
            if let Some(until) = i.cooldowns.get(&(class.index(), key)).map(|u| *u) {
                if until > now {
                    return Some(Self::wait(now, until, Scope::Cooldown));
                }
            }
        }
        if class == QuotaClass::VerifyCode {
            if let Some(limit) = i.limits.wrong_codes {
                if let Some((count, end)) = i.wrong.get(&key).map(|w| *w) {
                    if count >= limit.max && end > now {
                        return Some(Self::wait(now, end, Scope::WrongCodes));
                    }
                }
            }
        }
        None
    }

    fn check(&self, key: Option<u64>, class: QuotaClass) -> Admission {
        let i = &*self.inner;
        let now = self.now();
        if let Some(refusal) = self.blocked(key, class, now) {
            return refusal;
        }
        if let Some(key) = key {
            if class == QuotaClass::Registration {
                if let Some(limit) = i.limits.registration {
                    let window = limit.window.as_nanos() as u64;
                    let mut times = i.registrations.entry(key).or_default();
                    while times.front().is_some_and(|t| t + window <= now) {
                        times.pop_front();
                    }
                    if times.len() >= limit.max as usize {
                        let oldest = times.front().copied().unwrap_or(now);
                        return Self::wait(now, oldest + window, Scope::Registration);
                    }
                    times.push_back(now);
                }
            }
            if class.per_number_quotas() {
                // Refusals here, the common case under load, spend nothing. With several
                // quotas, one refused after another allowed spends the earlier one's slot;
                // the Redis store checks them all atomically instead.
                for limiter in &i.per_number {
                    if let Err(not_until) = limiter.check_key(&key) {
                        return Admission::Wait {
                            wait: not_until.wait_time_from(i.clock.now()),
                            scope: Scope::Number,
                        };
                    }
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

    fn acquire(&self, key: Option<u64>, class: QuotaClass) -> Acquire<Ready<Admission>> {
        let i = &*self.inner;
        if i.evict_every > 0
            && i.calls.fetch_add(1, Ordering::Relaxed) % i.evict_every == i.evict_every - 1
        {
            self.evict();
        }
        Acquire::Ready(self.check(key, class))
    }

    fn learn(&self, key: Option<u64>, class: QuotaClass, lesson: Lesson) {
        let i = &*self.inner;
        let now = self.now();
        match lesson {
            Lesson::Throttled { wait, app_wide } => {
                let until = now + wait.min(i.limits.cooldown_cap(class)).as_nanos() as u64;
                match (app_wide, key) {
                    (true, _) | (false, None) => {
                        i.app_cooldown[class.index()].fetch_max(until, Ordering::Relaxed);
                    }
                    (false, Some(key)) => {
                        let mut entry = i.cooldowns.entry((class.index(), key)).or_insert(0);
                        *entry = (*entry).max(until);
                        drop(entry);
                        i.cooldowns_active
                            .store(i.cooldowns.len(), Ordering::Relaxed);
                    }
                }
            }
            Lesson::WrongCode => {
                let (Some(key), Some(limit)) = (key, i.limits.wrong_codes) else {
                    return;
                };
                let mut w = i.wrong.entry(key).or_insert((0, 0));
                if w.1 <= now {
                    *w = (0, now + limit.window.as_nanos() as u64);
                }
                w.0 += 1;
            }
        }
    }
}
