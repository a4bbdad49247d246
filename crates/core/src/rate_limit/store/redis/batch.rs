//! Checks made together share one script call: the batcher, the script's arguments, and
//! the decoding of its answers.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::keys::{Key, Keys, Number};
use super::probe::why;
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

/// The most checks one script call answers.
const MAX_BATCH: usize = 128;

/// The most script calls out at once (see [`batcher`]).
const IN_FLIGHT: usize = 2;

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

/// The way into the batcher task, started on first use in the caller's runtime (and
/// again if that runtime has gone). Dropping the last store ends the task.
pub(super) struct Queue {
    pub(super) tx: Mutex<Option<mpsc::UnboundedSender<Check>>>,
}

impl Queue {
    /// Hands a check to the batcher, or gives it back when no runtime can run one.
    pub(super) fn push(&self, inner: &Arc<Inner>, check: Check) -> Result<(), Check> {
        let mut tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let check = match tx.as_ref() {
            Some(t) => match t.send(check) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(check)) => check,
            },
            None => check,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(check);
        };
        let (t, rx) = mpsc::unbounded_channel();
        *inner.conn.lock().unwrap_or_else(PoisonError::into_inner) = None;
        runtime.spawn(batcher(inner.clone(), rx));
        let sent = t.send(check).map_err(|e| e.0);
        *tx = Some(t);
        sent
    }
}

/// Gathers the checks that are ready together into one script call each, so Redis runs
/// one script per batch rather than per call, and every call still costs one round trip.
///
/// At most [`IN_FLIGHT`] batches are out at once: while they are, new checks gather into
/// the next one. Two keep both sides busy, this process building a batch while Redis runs
/// the other.
async fn batcher(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Check>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut checks = Vec::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if rx.recv_many(&mut checks, MAX_BATCH).await == 0 {
            return;
        }
        if checks.len() < MAX_BATCH {
            // Callers woken together enqueue one after another; one turn of the
            // scheduler lets them all in before the batch leaves.
            tokio::task::yield_now().await;
            while checks.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => checks.push(c),
                    Err(_) => break,
                }
            }
        }
        let batch = std::mem::replace(&mut checks, Vec::with_capacity(MAX_BATCH));
        tokio::spawn(run_batch(inner.clone(), batch, slot));
    }
}

async fn run_batch(inner: Arc<Inner>, mut checks: Vec<Check>, _slot: OwnedSemaphorePermit) {
    // A caller that went away before its batch left takes no slot.
    checks.retain(|c| !c.reply.is_closed());
    let Some(oldest) = checks.iter().map(|c| c.queued).min() else {
        return;
    };
    let cmd = inner.batch_command(&checks);
    // The store timeout runs from when the oldest check was queued, so time spent
    // waiting for a batch to leave counts too.
    let answer = tokio::time::timeout_at(oldest + inner.config.timeout, inner.eval(&cmd)).await;
    let answers = match answer {
        Ok(Ok(v)) if v.len() == checks.len() => {
            inner.recovered();
            v
        }
        Ok(Ok(_)) => {
            inner.failed("unexpected script answer");
            Vec::new()
        }
        Ok(Err(e)) => {
            inner.failed(why(&e));
            Vec::new()
        }
        Err(_) => {
            inner.failed("timeout");
            Vec::new()
        }
    };
    if answers.is_empty() {
        for c in checks {
            let _ = c.reply.send(None);
        }
        return;
    }
    for (c, a) in checks.into_iter().zip(answers) {
        let _ = c.reply.send(Some(admission(a, inner.fallback.tallies())));
    }
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

impl Inner {
    /// The `EVALSHA` of the acquire script for `checks` (see [`ACQUIRE`] for the layout).
    /// Keys every check of a shape shares (app cooldowns, global quotas) go in once.
    fn batch_command(&self, checks: &[Check]) -> redis::Cmd {
        let prefix = self.config.key_prefix.as_str();
        let mut keys = Keys::default();
        let mut shapes: Vec<i64> = Vec::new();
        // Shape ids by class, whether the call has a number and whether it has a WABA (0:
        // not yet described).
        let mut shape_ids = [[[0i64; 2]; 2]; 4];
        let mut shape_count = 0;
        let mut per_check: Vec<i64> = Vec::with_capacity(2 * checks.len());
        for check in checks {
            let (class, numbered) = (check.class, check.key.is_some());
            let wrong_max = match self.limits.wrong_codes {
                Some(w) if class == QuotaClass::VerifyCode && numbered => i64::from(w.max()),
                _ => 0,
            };
            let (reg_max, reg_window) = match self.limits.registration {
                Some(r) if class == QuotaClass::Registration && numbered => {
                    (i64::from(r.max()), micros(r.window()))
                }
                _ => (0, 0),
            };
            let mine: &[usize] = if numbered {
                &self.per_class[class.index()]
            } else {
                &[]
            };
            let waba = check.waba.filter(|_| numbered);
            let wabas: Vec<usize> = match waba {
                Some(_) => self
                    .quotas
                    .iter()
                    .enumerate()
                    .filter(|(_, q)| q.2 == S_WABA)
                    .map(|(idx, _)| idx)
                    .collect(),
                None => Vec::new(),
            };
            let id =
                &mut shape_ids[class.index()][usize::from(numbered)][usize::from(waba.is_some())];
            if *id == 0 {
                shape_count += 1;
                *id = shape_count;
                shapes.push(keys.add(prefix, Key::AppCooldown(class)));
                shapes.extend([wrong_max, reg_max, reg_window]);
                shapes.push(mine.len() as i64);
                shapes.extend(mine.iter().map(|&idx| idx as i64 + 1));
                let shared = || {
                    self.quotas
                        .iter()
                        .enumerate()
                        .filter(|(_, q)| q.2 == S_GLOBAL)
                };
                shapes.push(shared().count() as i64);
                for (idx, _) in shared() {
                    shapes.push(keys.add(prefix, Key::Global(idx)));
                    shapes.push(idx as i64 + 1);
                }
                shapes.push(i64::from(waba.is_some()));
                shapes.push(wabas.len() as i64);
                shapes.extend(wabas.iter().map(|&idx| idx as i64 + 1));
            }
            per_check.push(*id);
            let number = Number(check.key);
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
            if let Some(w) = waba {
                keys.add(prefix, Key::WabaCooldown(class, w));
                for &idx in &wabas {
                    keys.add(prefix, Key::WabaQuota(idx, w));
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
