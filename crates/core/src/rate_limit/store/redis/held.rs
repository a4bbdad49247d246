//! The local over-limit cache: a number known to be in a cooldown, or out of its
//! registration budget or wrong-code allowance, is answered here until the known time,
//! with no round trip (Envoy's local cache and Upstash's ephemeral cache are the models).
//!
//! Only ends Redis itself answered (or a lesson this replica recorded) are kept, and an
//! entry is never extended locally: it expires at the time Redis gave. So the cache never
//! refuses longer than Redis would have at the moment it answered. A cooldown cleared or
//! shortened on another replica (`limits clear`) takes effect here when the cached end
//! passes; `clear` on this store drops its own entries at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

use crate::operation::NumberHasher;
use crate::rate_limit::store::{Admission, QuotaClass, Scope};

/// Sweep expired entries once this many were added since the last sweep (or as many as
/// are held, whichever is more).
const SWEEP_EVERY: usize = 1024;

/// What is known to be refused, and until when.
pub(super) struct Held {
    map: DashMap<(u64, usize), (Instant, Scope), NumberHasher>,
    /// The app's cooldowns by class, this replica's lessons: a held number's answer
    /// waits for the later of its own end and this one, as Redis's would.
    app: Mutex<[Option<Instant>; QuotaClass::ALL.len()]>,
    added: AtomicUsize,
}

impl Held {
    pub(super) fn new() -> Self {
        Self {
            map: DashMap::with_hasher(NumberHasher::default()),
            app: Mutex::new([None; QuotaClass::ALL.len()]),
            added: AtomicUsize::new(0),
        }
    }

    /// The refusal still known for `number`'s `class` calls, if any.
    pub(super) fn check(&self, number: Option<u64>, class: QuotaClass) -> Option<Admission> {
        let number = number?;
        // One shard's read lock (`is_empty` would take every shard's).
        let (until, scope) = *self.map.get(&(number, class.index()))?;
        let now = Instant::now();
        if until <= now {
            self.map
                .remove_if(&(number, class.index()), |_, (u, _)| *u <= now);
            return None;
        }
        let app = self.app.lock().unwrap_or_else(|e| e.into_inner())[class.index()];
        Some(Admission::Wait {
            wait: until.max(app.unwrap_or(until)) - now,
            scope,
        })
    }

    /// Remembers an answer that refuses until a known time: a cooldown, the registration
    /// budget or the wrong-code guard. Quota waits are not kept: other replicas' calls
    /// move them.
    pub(super) fn remember(&self, number: Option<u64>, class: QuotaClass, answer: Admission) {
        let (Some(number), Admission::Wait { wait, scope }) = (number, answer) else {
            return;
        };
        if !matches!(
            scope,
            Scope::Cooldown | Scope::Registration | Scope::WrongCodes
        ) {
            return;
        }
        self.hold(number, class, wait, scope);
    }

    /// Holds `number`'s `class` calls for `wait` (a cooldown this replica just learned).
    pub(super) fn hold(&self, number: u64, class: QuotaClass, wait: Duration, scope: Scope) {
        let until = Instant::now() + wait;
        let mut e = self
            .map
            .entry((number, class.index()))
            .or_insert((until, scope));
        // Never shorter than an end already known: both came from Redis.
        if e.0 < until {
            *e = (until, scope);
        }
        drop(e);
        let added = self.added.fetch_add(1, Ordering::Relaxed) + 1;
        if added >= SWEEP_EVERY.max(self.map.len()) {
            self.added.store(0, Ordering::Relaxed);
            let now = Instant::now();
            self.map.retain(|_, (u, _)| *u > now);
        }
    }

    /// Holds every number's `class` calls for `wait` where a number is held anyway (an
    /// app-wide cooldown this replica learned).
    pub(super) fn hold_app(&self, class: QuotaClass, wait: Duration) {
        let until = Instant::now() + wait;
        let mut app = self.app.lock().unwrap_or_else(|e| e.into_inner());
        let end = &mut app[class.index()];
        *end = Some(end.map_or(until, |e| e.max(until)));
    }

    /// Forgets what is held for `number` (of one class, or all).
    pub(super) fn clear(&self, number: u64, class: Option<QuotaClass>) {
        for c in QuotaClass::ALL {
            if class.is_none_or(|k| k == c) {
                self.map.remove(&(number, c.index()));
            }
        }
    }
}
