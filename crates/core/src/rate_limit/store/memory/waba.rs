//! Per-WABA state: each WhatsApp Business Account's quota states and cooldowns, decided
//! under the same every-slot-or-none rule as a number's (locked after the number's state).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dashmap::mapref::one::RefMut;
use dashmap::DashMap;
use governor::RateLimiter;

use super::cooldown::Cooldown;
use super::gcra::{decide, near_ns, Gcra, LentState, TokioClock};
use crate::error::GraphCode;
use crate::operation::NumberHasher;
use crate::rate_limit::limits::MAX_QUOTAS;
use crate::rate_limit::quota::Quota;
use crate::rate_limit::store::QuotaClass;

/// One WABA's state.
pub(super) struct WabaState {
    tats: Box<[u64]>,
    cooldowns: [Cooldown; 4],
}

/// Every WABA's state, and the quotas each must satisfy.
pub(super) struct Wabas {
    quotas: Vec<Gcra>,
    /// Each quota's state ahead of now when it is 80% used (ns).
    near: Vec<u64>,
    map: DashMap<u64, WabaState, NumberHasher>,
    /// Whether any WABA ever held state: until then a check skips the lookup.
    held: AtomicBool,
}

/// A WABA's decision: its state stays locked until the call's other limits agree.
pub(super) enum Decision<'a> {
    /// Nothing to decide (no quota and no cooldown known).
    Free,
    /// A cooldown holds: the call waits this long.
    CoolingDown(Duration),
    /// A quota refuses: the call waits this long.
    Full(Duration),
    /// Every quota allows: commit to take the slots.
    Allows(Pending<'a>),
}

/// A WABA's proposed states, locked until committed or dropped.
pub(super) struct Pending<'a> {
    state: RefMut<'a, u64, WabaState>,
    proposed: [u64; MAX_QUOTAS],
    near: &'a [u64],
}

impl Pending<'_> {
    /// Takes the slots the decision proposed; whether one left its quota at least 80%
    /// used (`ahead`: now on the quotas' clocks).
    pub(super) fn commit(mut self, ahead: u64) -> bool {
        let n = self.state.tats.len().min(MAX_QUOTAS);
        self.state.tats[..n].copy_from_slice(&self.proposed[..n]);
        self.proposed[..n]
            .iter()
            .zip(self.near)
            .any(|(&p, &near)| p.saturating_sub(ahead) >= near)
    }
}

impl Wabas {
    pub(super) fn new(quotas: &[Quota], clock: &TokioClock) -> Self {
        Self {
            quotas: quotas
                .iter()
                .map(|q| RateLimiter::new(q.to_governor(), LentState, clock.clone()))
                .collect(),
            near: quotas.iter().map(near_ns).collect(),
            map: DashMap::with_hasher(NumberHasher::default()),
            held: AtomicBool::new(false),
        }
    }

    /// How many WABA cooldowns (per class of call) have not ended at `now`.
    pub(super) fn active_cooldowns(&self, now: u64) -> usize {
        self.map
            .iter()
            .map(|w| w.cooldowns.iter().filter(|c| c.until > now).count())
            .sum()
    }

    fn state(&self) -> WabaState {
        WabaState {
            tats: vec![0; self.quotas.len()].into(),
            cooldowns: Default::default(),
        }
    }

    /// Locks `waba`'s state and decides a call of `class` at `now`: its cooldown, then
    /// every quota. Nothing is taken until [`Pending::commit`].
    pub(super) fn decide(
        &self,
        waba: u64,
        class: QuotaClass,
        now: u64,
        clock: &TokioClock,
    ) -> Decision<'_> {
        let state = if self.quotas.is_empty() {
            if !self.held.load(Ordering::Relaxed) {
                return Decision::Free;
            }
            match self.map.get_mut(&waba) {
                Some(s) => s,
                None => return Decision::Free,
            }
        } else {
            self.held.store(true, Ordering::Relaxed);
            self.map.entry(waba).or_insert_with(|| self.state())
        };
        let until = state.cooldowns[class.index()].until;
        if until > now {
            return Decision::CoolingDown(Duration::from_nanos(until - now));
        }
        let mut proposed = [0u64; MAX_QUOTAS];
        let mut longest: Option<Duration> = None;
        for (n, q) in self.quotas.iter().enumerate().take(MAX_QUOTAS) {
            match decide(q, clock, state.tats[n]) {
                Ok(next) => proposed[n] = next,
                Err(w) => longest = Some(longest.map_or(w, |l| l.max(w))),
            }
        }
        match longest {
            Some(w) => Decision::Full(w),
            None => Decision::Allows(Pending {
                state,
                proposed,
                near: &self.near,
            }),
        }
    }

    /// Records Meta's throttle of `waba` for `class` (doubling a repeat, as for numbers).
    pub(super) fn throttled(
        &self,
        waba: u64,
        class: QuotaClass,
        now: u64,
        wait: u64,
        cap: u64,
        code: Option<GraphCode>,
    ) {
        self.held.store(true, Ordering::Relaxed);
        let mut s = self.map.entry(waba).or_insert_with(|| self.state());
        s.cooldowns[class.index()].throttled(now, wait, cap, code);
    }

    /// The cooldown left for `class` calls of `waba`, if any.
    pub(super) fn cooldown(&self, waba: u64, class: QuotaClass, now: u64) -> Option<Duration> {
        let until = self.map.get(&waba)?.cooldowns[class.index()].until;
        (until > now).then(|| Duration::from_nanos(until - now))
    }
}
