//! The in-process store: governor's GCRA per number and for the app, plus cooldowns, the
//! wrong-code guard and the registration budget, all in this process's memory.
//!
//! # Every slot or none
//!
//! A call is admitted only when every limit it falls under allows it, and then takes a
//! slot of each; a refused call takes nothing, as in the Redis script. governor cannot ask
//! "would this pass?" without taking the slot (governor#15), so the store keeps each
//! number's GCRA states itself, in one record locked for the whole check, and lends them
//! to governor's GCRA one at a time: governor decides and proposes the next state, and the
//! store keeps the proposals only when every limit allowed. The app's quota is one state
//! shared by every number, lent the same way and committed with a compare-and-swap.

use std::collections::VecDeque;
use std::fmt;
use std::future::{ready, Ready};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::Clock;
use governor::RateLimiter;

mod cooldown;
mod gcra;
mod inspect;
mod learn;
mod numbers;
mod waba;

use self::cooldown::Cooldown;
use self::gcra::{decide, near_ns, Gcra, LentState, TokioClock};
use self::numbers::Numbers;
use self::waba::{Decision, Wabas};
use crate::operation::NumberHasher;
use crate::rate_limit::limits::{LimitMode, Limits, MAX_QUOTAS};
use crate::rate_limit::quota::Quota;
use crate::rate_limit::store::{
    Acquire, Admission, Lesson, QuotaClass, RateLimitStore, Scope, StoreTallies,
};

// ===== MemoryStore =====

/// The in-process store (the default): zero setup, no allocation on its hot path once a
/// number is tracked. Idle numbers are forgotten every `evict_every` calls, so memory
/// stays bounded with millions of numbers. A call takes a slot of every limit or of none:
/// each number's GCRA states are locked for the whole check and lent to governor's GCRA
/// one at a time (governor cannot ask "would this pass?" without taking the slot), and
/// its proposals are kept only when every limit allowed.
///
/// Its limits hold in this process only; replicas each enforce their own.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    limits: Limits,
    /// The request_code quotas, then the verify_code ones (a record's states in order).
    quotas: Vec<Gcra>,
    /// Where each class's quotas start in `quotas`, and how many.
    request_code: (usize, usize),
    verify_code: (usize, usize),
    global: Option<Gcra>,
    global_tat: AtomicU64,
    clock: TokioClock,
    evict_every: u64,
    calls: AtomicU64,
    /// How much later than the store's clock the quotas' own clocks started (ns): governor
    /// counts each quota's states from its limiter's creation.
    skew: u64,
    numbers: Numbers,
    /// Cooldowns, wrong codes and registrations of the numbers that have any; locked after
    /// `numbers` when both are (never the other way round).
    extras: DashMap<u64, Extra, NumberHasher>,
    /// Whether `extras` ever held anything: until then checks skip the lookup. It is never
    /// reset, so a lesson recorded while an eviction runs cannot be skipped.
    extras_held: AtomicBool,
    /// Until when the whole app cools down, per class (0: not).
    app_cooldown: [AtomicU64; 4],
    /// Each WhatsApp Business Account's quotas and cooldowns; locked after `extras`.
    wabas: Wabas,
    /// How far ahead of now each quota's state is when the quota is 80% used (ns), in
    /// `quotas`' order, then the global quota's.
    near: Vec<u64>,
    global_near: u64,
    tallies: StoreTallies,
}

/// What few numbers hold: cooldowns, wrong codes, registrations. Kept apart, so the
/// common record stays small and a check looks here only while anything is held.
#[derive(Default)]
struct Extra {
    /// Cooldowns per class (by `QuotaClass::index`).
    cooldowns: [Cooldown; 4],
    /// Wrong codes in the current window: (count, window end).
    wrong: (u32, u64),
    /// Times of the recent register/deregister calls.
    registrations: VecDeque<u64>,
}

impl Extra {
    /// Whether nothing it holds matters any more at `now`.
    fn is_idle(&self, now: u64, registration_window: u64) -> bool {
        // A cooldown is kept one length past its end: a throttle that comes again in
        // that time doubles the next one.
        self.cooldowns
            .iter()
            .all(|c| c.until.saturating_add(c.len) <= now)
            && self.wrong.1 <= now
            && self
                .registrations
                .back()
                .is_none_or(|&t| t.saturating_add(registration_window) <= now)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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
    /// A store enforcing every quota in `per_number` for each number's `request_code`
    /// calls, and `global` for all (plus the default registration budget and wrong-code
    /// guard).
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
        let gcra = |q: &Quota| RateLimiter::new(q.to_governor(), LentState, clock.clone());
        let quotas: Vec<Gcra> = limits
            .per_number
            .iter()
            .chain(&limits.verify_per_number)
            .map(gcra)
            .collect();
        let skew = clock.now().as_u64();
        let numbers = Numbers::new(quotas.len());
        let limits_per_waba = limits.per_waba.clone();
        let near = limits
            .per_number
            .iter()
            .chain(&limits.verify_per_number)
            .map(near_ns)
            .collect();
        let global_near = limits.global.as_ref().map_or(u64::MAX, near_ns);
        let clock_for_wabas = clock.clone();
        Self {
            inner: Arc::new(Inner {
                request_code: (0, limits.per_number.len()),
                verify_code: (limits.per_number.len(), limits.verify_per_number.len()),
                quotas,
                global: limits.global.as_ref().map(gcra),
                global_tat: AtomicU64::new(0),
                skew,
                limits,
                clock,
                evict_every,
                calls: AtomicU64::new(0),
                numbers,
                extras: DashMap::with_hasher(NumberHasher::default()),
                extras_held: AtomicBool::new(false),
                app_cooldown: Default::default(),
                wabas: Wabas::new(&limits_per_waba, &clock_for_wabas),
                near,
                global_near,
                tallies: StoreTallies::default(),
            }),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// How many numbers are tracked now (with quota state, or a cooldown, wrong codes or
    /// registrations).
    pub fn tracked_numbers(&self) -> usize {
        let i = &*self.inner;
        let only_extra = i
            .extras
            .iter()
            .filter(|e| !i.numbers.contains(*e.key()))
            .count();
        i.numbers.len() + only_extra
    }

    /// Forgets numbers whose state no longer matters, and returns the memory.
    pub fn evict(&self) {
        let i = &*self.inner;
        let now = self.now();
        let window = i.limits.registration.map_or(0, |r| nanos(r.window()));
        i.numbers.evict(now, i.skew);
        i.extras.retain(|_, e| !e.is_idle(now, window));
        i.extras.shrink_to_fit();
    }

    fn now(&self) -> u64 {
        self.inner.clock.now().as_u64()
    }

    fn check(&self, key: Option<u64>, waba: Option<u64>, class: QuotaClass) -> Admission {
        let i = &*self.inner;
        let now = self.now();
        let app = i.app_cooldown[class.index()].load(Ordering::Relaxed);
        let Some(key) = key else {
            if app > now {
                return wait(now, app, Scope::Cooldown);
            }
            let mut near = false;
            return match self.take_global(&mut near) {
                Admission::Wait { scope, .. } if i.limits.mode == LimitMode::Shadow => {
                    i.tallies.shadowed(scope);
                    Admission::Go
                }
                a => {
                    if near {
                        i.tallies.near(Scope::Global);
                    }
                    a
                }
            };
        };
        let (start, count) = match class {
            QuotaClass::RequestCode => i.request_code,
            QuotaClass::VerifyCode => i.verify_code,
            QuotaClass::Registration | QuotaClass::Other => (0, 0),
        };
        // The number's states stay locked until the check is done: no other call for the
        // same number can slip between the decisions and the commit.
        let quotas = start..start + count;
        if count > 0 {
            i.numbers.with(key, |tats| {
                self.settle(key, waba, class, now, app, quotas, Some(tats))
            })
        } else {
            self.settle(key, waba, class, now, app, quotas, None)
        }
    }

    /// The check once the number's states are held: its extra state (locked after them,
    /// and only looked at while any number holds some), every limit's decision, then the
    /// commit of every slot or none.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        key: u64,
        waba: Option<u64>,
        class: QuotaClass,
        now: u64,
        app: u64,
        quotas: std::ops::Range<usize>,
        mut tats: Option<&mut [u64]>,
    ) -> Admission {
        let i = &*self.inner;
        let budgeted = class == QuotaClass::Registration && i.limits.registration.is_some();
        let mut extra = if budgeted {
            i.extras_held.store(true, Ordering::Relaxed);
            Some(i.extras.entry(key).or_default())
        } else if i.extras_held.load(Ordering::Relaxed) {
            i.extras.get_mut(&key)
        } else {
            None
        };
        let held = extra.as_deref_mut();
        let cooldown = held
            .as_ref()
            .map_or(0, |e| e.cooldowns[class.index()].until)
            .max(app);
        if cooldown > now {
            return wait(now, cooldown, Scope::Cooldown);
        }
        if let (QuotaClass::VerifyCode, Some(limit), Some(e)) = (class, i.limits.wrong_codes, &held)
        {
            let (wrong, end) = e.wrong;
            if wrong >= limit.max() && end > now {
                return wait(now, end, Scope::WrongCodes);
            }
        }
        if let (true, Some(limit), Some(e)) = (budgeted, i.limits.registration, held) {
            let window = nanos(limit.window());
            while e
                .registrations
                .front()
                .is_some_and(|t| t.saturating_add(window) <= now)
            {
                e.registrations.pop_front();
            }
            if e.registrations.len() >= limit.max() as usize {
                let oldest = e.registrations.front().copied().unwrap_or(now);
                return wait(now, oldest.saturating_add(window), Scope::Registration);
            }
        }
        // The WABA's state, locked after the number's: its cooldown refuses at once, its
        // quotas decide with the others.
        let mut refusal: Option<(Duration, Scope)> = None;
        let waba = match waba.map(|w| i.wabas.decide(w, class, now, &i.clock)) {
            Some(Decision::CoolingDown(w)) => {
                return Admission::Wait {
                    wait: w,
                    scope: Scope::Waba,
                }
            }
            Some(Decision::Full(w)) => {
                refusal = Some((w, Scope::Waba));
                None
            }
            Some(Decision::Allows(p)) => Some(p),
            Some(Decision::Free) | None => None,
        };
        // Every quota decides before any state changes; the longest wait binds, as in
        // the Redis script.
        let mut proposed = [0u64; MAX_QUOTAS];
        let mut longest = |w: Duration, scope: Scope| {
            if refusal.is_none_or(|(l, _)| w > l) {
                refusal = Some((w, scope));
            }
        };
        if let Some(tats) = tats.as_deref_mut() {
            for (n, idx) in quotas.clone().enumerate() {
                match decide(&i.quotas[idx], &i.clock, tats[idx]) {
                    Ok(next) if n < proposed.len() => proposed[n] = next,
                    Ok(_) => {}
                    Err(w) => longest(w, Scope::Number),
                }
            }
        }
        if let Some(global) = &i.global {
            if let Err(w) = decide(global, &i.clock, i.global_tat.load(Ordering::Acquire)) {
                longest(w, Scope::Global);
            }
        }
        let mut global_near = false;
        let refusal = match refusal {
            Some(r) => Some(r),
            None => match self.take_global(&mut global_near) {
                Admission::Wait { wait, scope } => Some((wait, scope)),
                Admission::Go => None,
            },
        };
        if let Some((wait, scope)) = refusal {
            if i.limits.mode == LimitMode::Enforce {
                return Admission::Wait { wait, scope };
            }
            // Shadow mode: the call goes, having taken no quota's slot (as an enforced
            // refusal takes none, so the quotas' state stays what enforcing would make
            // it); what protects the number from Meta still counts it.
            i.tallies.shadowed(scope);
            if let (true, Some(e)) = (budgeted, extra.as_deref_mut()) {
                e.registrations.push_back(now);
            }
            return Admission::Go;
        }
        // A call near a quota's limit counts once, under the first such quota in the
        // Redis script's order: per number, global, per WABA.
        let ahead = now.saturating_sub(i.skew);
        let mut near = None;
        if let Some(tats) = tats {
            if quotas.clone().enumerate().any(|(n, idx)| {
                proposed
                    .get(n)
                    .is_some_and(|&p| p.saturating_sub(ahead) >= i.near[idx])
            }) {
                near = Some(Scope::Number);
            }
            for (n, idx) in quotas.enumerate() {
                tats[idx] = match proposed.get(n) {
                    Some(&next) => next,
                    // More quotas than config accepts (a store built by hand): decide
                    // again under the same lock; time only moved on, so it allows again.
                    None => decide(&i.quotas[idx], &i.clock, tats[idx]).unwrap_or(tats[idx]),
                };
            }
        }
        if let (true, Some(e)) = (budgeted, extra.as_deref_mut()) {
            e.registrations.push_back(now);
        }
        if global_near {
            near = near.or(Some(Scope::Global));
        }
        if let Some(p) = waba {
            if p.commit(ahead) {
                near = near.or(Some(Scope::Waba));
            }
        }
        if let Some(scope) = near {
            i.tallies.near(scope);
        }
        Admission::Go
    }

    /// Takes a slot of the app's quota, if there is one: compare-and-swap on its state, so
    /// concurrent calls for different numbers never lose one another's slots.
    /// `near` is set when the slot taken leaves the quota at least 80% used.
    fn take_global(&self, near: &mut bool) -> Admission {
        let i = &*self.inner;
        let Some(global) = &i.global else {
            return Admission::Go;
        };
        let mut current = i.global_tat.load(Ordering::Acquire);
        // Bounded: each failed swap means another call took a slot meanwhile.
        for _ in 0..1024 {
            match decide(global, &i.clock, current) {
                Err(wait) => {
                    return Admission::Wait {
                        wait,
                        scope: Scope::Global,
                    }
                }
                Ok(next) => match i.global_tat.compare_exchange_weak(
                    current,
                    next,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        *near =
                            next.saturating_sub(self.now().saturating_sub(i.skew)) >= i.global_near;
                        return Admission::Go;
                    }
                    Err(actual) => current = actual,
                },
            }
        }
        Admission::Wait {
            wait: Duration::ZERO,
            scope: Scope::Global,
        }
    }
}

fn wait(now: u64, until: u64, scope: Scope) -> Admission {
    Admission::Wait {
        wait: Duration::from_nanos(until.saturating_sub(now)),
        scope,
    }
}

impl RateLimitStore for MemoryStore {
    type Future = Ready<Admission>;
    type LearnFuture = Ready<()>;

    fn acquire(&self, key: Option<u64>, class: QuotaClass) -> Acquire<Ready<Admission>> {
        self.acquire_in(key, None, class)
    }

    fn acquire_in(
        &self,
        key: Option<u64>,
        waba: Option<u64>,
        class: QuotaClass,
    ) -> Acquire<Ready<Admission>> {
        let i = &*self.inner;
        if i.evict_every > 0
            && i.calls.fetch_add(1, Ordering::Relaxed) % i.evict_every == i.evict_every - 1
        {
            self.evict();
        }
        Acquire::Ready(i.clock.pinned(|| self.check(key, waba, class)))
    }

    fn refusal_message(&self, scope: Scope) -> String {
        self.inner.limits.refusal_message(scope)
    }

    fn learn(&self, key: Option<u64>, class: QuotaClass, lesson: Lesson) -> Ready<()> {
        self.record_lesson(key, class, lesson);
        ready(())
    }
}
