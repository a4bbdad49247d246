//! What Meta's answers teach the in-process store (cooldowns, wrong codes), and what it
//! holds of them.

use std::sync::atomic::Ordering;

use super::{nanos, MemoryStore};
use crate::rate_limit::store::{Lesson, QuotaClass};

impl MemoryStore {
    /// How many cooldowns (of numbers, per class of call, and of the app) have not ended.
    pub fn active_cooldowns(&self) -> usize {
        let i = &*self.inner;
        let now = self.now();
        let numbers: usize = i
            .extras
            .iter()
            .map(|e| e.cooldowns.iter().filter(|c| c.until > now).count())
            .sum();
        let app = i
            .app_cooldown
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) > now)
            .count();
        numbers + app + i.wabas.active_cooldowns(now)
    }

    pub(crate) fn record_lesson(&self, key: Option<u64>, class: QuotaClass, lesson: Lesson) {
        let i = &*self.inner;
        let now = self.now();
        match lesson {
            Lesson::Throttled {
                wait,
                app_wide,
                code,
            } => {
                let cap = nanos(i.limits.cooldown_cap(class));
                let until = now.saturating_add(nanos(wait).min(cap));
                match (app_wide, key) {
                    (false, Some(key)) => {
                        i.extras_held.store(true, Ordering::Relaxed);
                        let mut e = i.extras.entry(key).or_default();
                        e.cooldowns[class.index()].throttled(now, nanos(wait), cap, code);
                    }
                    _ => {
                        i.app_cooldown[class.index()].fetch_max(until, Ordering::Relaxed);
                    }
                }
            }
            Lesson::WabaThrottled { waba, wait, code } => {
                let cap = nanos(i.limits.cooldown_cap(class));
                i.wabas.throttled(waba, class, now, nanos(wait), cap, code);
            }
            Lesson::WrongCode => {
                let (Some(key), Some(limit)) = (key, i.limits.wrong_codes) else {
                    return;
                };
                i.extras_held.store(true, Ordering::Relaxed);
                let mut e = i.extras.entry(key).or_default();
                if e.wrong.1 <= now {
                    e.wrong = (0, now.saturating_add(nanos(limit.window())));
                }
                e.wrong.0 = e.wrong.0.saturating_add(1);
            }
        }
    }
}
