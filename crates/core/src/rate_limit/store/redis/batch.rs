//! Checks made together share one script call: the script's arguments, and the decoding
//! of its answers.

use std::time::Duration;

use tokio::sync::oneshot;

use super::keys::{Key, Keys, Number};
use super::state::{micros, Inner};
use crate::rate_limit::limits::LimitMode;
use crate::rate_limit::quota::Quota;
use crate::rate_limit::store::{Admission, QuotaClass, Scope, StoreTallies};

// Scopes as the script returns them.
pub(super) const S_NUMBER: i64 = 1;
pub(super) const S_GLOBAL: i64 = 2;
pub(super) const S_COOLDOWN: i64 = 3;
pub(super) const S_WRONG: i64 = 4;
pub(super) const S_REGISTRATION: i64 = 5;
pub(super) const S_WABA: i64 = 6;

/// Checks a batch of calls in order, as if each ran alone: a later check of the same
/// number sees what an earlier one took.
///
/// KEYS: every key of the batch. ARGV, every key given as its index in KEYS:
/// - the quota count Q, then Q × (interval µs, tolerance µs, scope);
/// - the shape count S, then per shape (what a class of call, with or without a number,
///   checks): app cooldown key, wrong-code max (0: none), registration max (0: none),
///   registration window µs, per-number quota count L, L × quota, global quota count G,
///   G × (key, quota), whether it has a WABA (0/1), per-WABA quota count W, W × quota;
/// - the check count, then per check: its shape and its first key. A check's own keys
///   follow one another: cooldown, wrong codes (if counted), registration log (if
///   budgeted), one per per-number quota, then (with a WABA) the WABA's cooldown and one
///   per per-WABA quota;
/// - last, 1 in shadow mode (quotas report their refusals and refuse nothing), else 0.
///
/// Returns one integer per check, in order: wait µs × 8 + scope; or, to go, 0 or
/// −(near-limit scope × 8 + shadowed scope).
pub(super) const ACQUIRE: &str = include_str!("acquire.lua");

/// One call waiting for its batch.
pub(super) struct Check {
    pub(super) key: Option<u64>,
    pub(super) waba: Option<u64>,
    pub(super) class: QuotaClass,
    pub(super) queued: tokio::time::Instant,
    /// `None` when Redis failed.
    pub(super) reply: oneshot::Sender<Option<Admission>>,
}

/// A check's answer from the script: wait µs × 8 + scope, or, to go, 0 or
/// −(near-limit scope × 8 + shadowed scope), which `tallies` counts.
pub(super) fn admission(answer: i64, tallies: &StoreTallies) -> Admission {
    if answer <= 0 {
        let (near, shadowed) = (-answer / 8, -answer % 8);
        if near > 0 {
            tallies.near(scope(near));
        }
        if shadowed > 0 {
            tallies.shadowed(scope(shadowed));
        }
        return Admission::Go;
    }
    Admission::Wait {
        wait: Duration::from_micros((answer / 8) as u64),
        scope: scope(answer % 8),
    }
}

/// The scope a script's number names.
fn scope(n: i64) -> Scope {
    match n {
        S_NUMBER => Scope::Number,
        S_GLOBAL => Scope::Global,
        S_COOLDOWN => Scope::Cooldown,
        S_WRONG => Scope::WrongCodes,
        S_REGISTRATION => Scope::Registration,
        S_WABA => Scope::Waba,
        _ => Scope::StoreUnavailable,
    }
}

/// A quota as the script takes it. `Quota` keeps interval × burst within ten years, so
/// the products are exact; the checked ones only make sure nothing can wrap.
pub(super) fn gcra(q: Quota, scope: i64) -> (i64, i64, i64) {
    let interval = micros(q.rate.interval()).max(1);
    let tolerance = interval
        .checked_mul(i64::from(q.burst().get() - 1))
        .unwrap_or(i64::MAX);
    (interval, tolerance, scope)
}

/// Which of a check's keys one script call reads. On one Redis, all of them; on a
/// cluster, one shard's part at a time (see the [cluster module](super::cluster)).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Part {
    /// Every key: one Redis.
    All,
    /// The number's: its cooldown, wrong codes, registration log and quotas.
    Number,
    /// The WABA's: its cooldown and quotas (only for checks that have a WABA).
    Waba,
    /// The app's: its cooldown and the global quotas.
    App,
}

impl Inner {
    /// The `EVALSHA` of the acquire script for `checks` (see [`ACQUIRE`] for the layout),
    /// reading `part` of their keys. Keys every check of a shape shares (app cooldowns,
    /// global quotas) go in once.
    pub(super) fn batch_command(&self, checks: &[&Check], part: Part) -> redis::Cmd {
        let with = |p: Part| part == Part::All || part == p;
        let prefix = self.config.key_prefix.as_str();
        let mut keys = Keys::new(self.clustered());
        let mut shapes: Vec<i64> = Vec::new();
        // Shape ids by class, whether the call has a number and whether it has a WABA (0:
        // not yet described).
        let mut shape_ids = [[[0i64; 2]; 2]; 4];
        let mut shape_count = 0;
        // The app part: each class's cooldown key, listed once, is every check's first.
        let mut app_keys = [0i64; 4];
        let mut per_check: Vec<i64> = Vec::with_capacity(2 * checks.len());
        for check in checks {
            let (class, numbered) = (check.class, check.key.is_some());
            let wrong_max = match self.limits.wrong_codes {
                Some(w) if class == QuotaClass::VerifyCode && numbered && with(Part::Number) => {
                    i64::from(w.max())
                }
                _ => 0,
            };
            let (reg_max, reg_window) = match self.limits.registration {
                Some(r) if class == QuotaClass::Registration && numbered && with(Part::Number) => {
                    (i64::from(r.max()), micros(r.window()))
                }
                _ => (0, 0),
            };
            let mine: &[usize] = if numbered && with(Part::Number) {
                &self.per_class[class.index()]
            } else {
                &[]
            };
            let waba = check.waba.filter(|_| numbered);
            let wabas: Vec<usize> = match waba {
                Some(_) if with(Part::Waba) => self.scoped(S_WABA).collect(),
                _ => Vec::new(),
            };
            let id =
                &mut shape_ids[class.index()][usize::from(numbered)][usize::from(waba.is_some())];
            if *id == 0 {
                shape_count += 1;
                *id = shape_count;
                shapes.push(match part {
                    Part::All => keys.add(prefix, Key::AppCooldown(class)),
                    _ => 0,
                });
                shapes.extend([wrong_max, reg_max, reg_window]);
                shapes.push(mine.len() as i64);
                shapes.extend(mine.iter().map(|&idx| idx as i64 + 1));
                let globals: Vec<usize> = match with(Part::App) {
                    true => self.scoped(S_GLOBAL).collect(),
                    false => Vec::new(),
                };
                shapes.push(globals.len() as i64);
                for idx in globals {
                    shapes.push(keys.add(prefix, Key::Global(idx)));
                    shapes.push(idx as i64 + 1);
                }
                // Whether the WABA's cooldown follows the number's quotas; in its own part
                // the WABA's cooldown is the check's first key.
                shapes.push(i64::from(part == Part::All && waba.is_some()));
                shapes.push(wabas.len() as i64);
                shapes.extend(wabas.iter().map(|&idx| idx as i64 + 1));
            }
            per_check.push(*id);
            let number = Number(check.key);
            match (part, waba) {
                (Part::App, _) => {
                    let k = &mut app_keys[class.index()];
                    if *k == 0 {
                        *k = keys.add(prefix, Key::AppCooldown(class));
                    }
                    per_check.push(*k);
                }
                (Part::Waba, Some(w)) => {
                    per_check.push(keys.add(prefix, Key::WabaCooldown(class, w)));
                    for &idx in &wabas {
                        keys.add(prefix, Key::WabaQuota(idx, w));
                    }
                }
                _ => {
                    per_check.push(keys.add(prefix, Key::Cooldown(class, number)));
                    if wrong_max > 0 {
                        keys.add(prefix, Key::WrongCodes(number));
                    }
                    if reg_max > 0 {
                        keys.add(prefix, Key::Registration(number));
                    }
                    for &idx in mine {
                        keys.add(prefix, Key::Quota(idx, number));
                    }
                    if let (Part::All, Some(w)) = (part, waba) {
                        keys.add(prefix, Key::WabaCooldown(class, w));
                        for &idx in &wabas {
                            keys.add(prefix, Key::WabaQuota(idx, w));
                        }
                    }
                }
            }
        }
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.acquire.get_hash()).arg(keys.ends.len());
        let mut start = 0;
        for &end in &keys.ends {
            cmd.arg(&keys.text.as_bytes()[start..end]);
            start = end;
        }
        cmd.arg(self.quotas.len());
        for &(interval, tolerance, scope) in &self.quotas {
            cmd.arg(interval).arg(tolerance).arg(scope);
        }
        cmd.arg(shape_count)
            .arg(shapes)
            .arg(checks.len())
            .arg(per_check)
            .arg(i64::from(self.limits.mode == LimitMode::Shadow));
        cmd
    }

    /// The indexes in `quotas` of the quotas of one scope.
    pub(super) fn scoped(&self, scope: i64) -> impl Iterator<Item = usize> + '_ {
        self.quotas
            .iter()
            .enumerate()
            .filter(move |(_, q)| q.2 == scope)
            .map(|(idx, _)| idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_answers_decode_to_admissions() {
        let t = StoreTallies::default();
        let admission = |a| admission(a, &t);
        assert_eq!(admission(0), Admission::Go);
        let wait = |micros: i64, scope| Admission::Wait {
            wait: Duration::from_micros(micros as u64),
            scope,
        };
        assert_eq!(admission(1500 * 8 + S_NUMBER), wait(1500, Scope::Number));
        assert_eq!(admission(2 * 8 + S_GLOBAL), wait(2, Scope::Global));
        assert_eq!(admission(7 * 8 + S_COOLDOWN), wait(7, Scope::Cooldown));
        assert_eq!(admission(9 * 8 + S_WRONG), wait(9, Scope::WrongCodes));
        assert_eq!(
            admission(72 * 3600 * 1_000_000 * 8 + S_REGISTRATION),
            wait(72 * 3600 * 1_000_000, Scope::Registration)
        );
    }
}
