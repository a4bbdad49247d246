//! What the memory store holds for one number, for operators: read and cleared.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{nanos, MemoryStore};
use crate::rate_limit::store::inspect::{HeldCooldown, NumberLimits};
use crate::rate_limit::store::{QuotaClass, StoreTallies};
#[cfg(feature = "metrics")]
use crate::rate_limit::store::{StoreObserver, StoreView};

impl MemoryStore {
    /// What the metrics read of this store, without keeping it alive.
    #[cfg(feature = "metrics")]
    pub(crate) fn observer(&self) -> StoreObserver {
        let weak = std::sync::Arc::downgrade(&self.inner);
        Box::new(move || {
            let store = MemoryStore {
                inner: weak.upgrade()?,
            };
            Some(StoreView::of(store.tallies(), store.active_cooldowns(), 0))
        })
    }

    /// What it counted of its decisions: refusals let through in shadow mode, calls near
    /// a quota's limit.
    pub fn tallies(&self) -> &StoreTallies {
        &self.inner.tallies
    }

    /// The cooldown left for a class of calls to a WhatsApp Business Account, if any.
    pub fn waba_cooldown(&self, waba: u64, class: QuotaClass) -> Option<Duration> {
        self.inner.wabas.cooldown(waba, class, self.now())
    }

    /// The cooldown left for a class of calls to a number, if any.
    pub fn cooldown(&self, key: u64, class: QuotaClass) -> Option<Duration> {
        let now = self.now();
        let until = self
            .inner
            .extras
            .get(&key)
            .map(|e| e.cooldowns[class.index()].until)?;
        (until > now).then(|| Duration::from_nanos(until - now))
    }

    /// What the store holds for `number` (a [`PhoneNumberId::key`]): its cooldowns still
    /// in force (the app's too, as they stop it as well), wrong codes in the current
    /// window and the registration budget left.
    ///
    /// [`PhoneNumberId::key`]: crate::PhoneNumberId::key
    pub fn inspect(&self, number: u64) -> NumberLimits {
        let i = &*self.inner;
        let now = self.now();
        let mut out = NumberLimits {
            registrations_left: i.limits.registration.map(|r| r.max()),
            ..NumberLimits::default()
        };
        let extra = i.extras.get(&number);
        for class in QuotaClass::ALL {
            let (own, code) = extra.as_ref().map_or((0, None), |e| {
                let c = e.cooldowns[class.index()];
                (c.until, c.code)
            });
            let app = i.app_cooldown[class.index()].load(Ordering::Relaxed);
            let (until, code) = if own >= app { (own, code) } else { (app, None) };
            if until > now {
                out.cooldowns.push(HeldCooldown::new(
                    class,
                    Duration::from_nanos(until - now),
                    code,
                ));
            }
        }
        if let Some(e) = extra.as_ref() {
            if e.wrong.1 > now {
                out.wrong_codes = e.wrong.0;
            }
            if let Some(r) = i.limits.registration {
                let window = nanos(r.window());
                let used = e
                    .registrations
                    .iter()
                    .filter(|t| t.saturating_add(window) > now)
                    .count();
                out.registrations_left = Some(r.max().saturating_sub(used as u32));
            }
        }
        out
    }

    /// Removes `number`'s cooldowns, of one kind of call or of every kind; returns how
    /// many were in force. The app's cooldowns stay: they are not the number's.
    pub fn clear(&self, number: u64, kind: Option<QuotaClass>) -> usize {
        let now = self.now();
        let Some(mut e) = self.inner.extras.get_mut(&number) else {
            return 0;
        };
        let mut cleared = 0;
        for class in QuotaClass::ALL {
            if kind.is_none_or(|k| k == class) {
                let c = &mut e.cooldowns[class.index()];
                cleared += usize::from(c.until > now);
                *c = Default::default();
            }
        }
        cleared
    }
}
