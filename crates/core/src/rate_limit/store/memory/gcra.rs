//! governor's GCRA as a pure decision: a state is lent to it, and its proposal is kept
//! only when the caller decides to. Also the clock and the hasher the store's maps use.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::RateLimiter;

use crate::rate_limit::quota::Quota;
use crate::rate_limit::store::NEAR_LIMIT;

// ===== clock =====

/// governor's clock on tokio's time, so tokio's paused clock drives the limiter in tests.
#[derive(Clone, Debug)]
pub(super) struct TokioClock {
    start: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

thread_local! {
    /// A reading taken once for one decision (the clock's start, then ns since it): a
    /// check asks the clock up to four times (itself, each quota, the app's slot), and on
    /// a VM each reading costs tens of ns. One reading also makes the decision one
    /// instant, as Redis's `TIME` does for the script.
    static PINNED: Cell<Option<(tokio::time::Instant, u64)>> = const { Cell::new(None) };
}

/// Puts back the reading that was pinned before, even if the decision panics.
struct Unpin(Option<(tokio::time::Instant, u64)>);

impl Drop for Unpin {
    fn drop(&mut self) {
        PINNED.set(self.0);
    }
}

impl TokioClock {
    /// Runs `decide` with one reading of this clock: every `now()` on this thread inside
    /// it answers that reading.
    pub(super) fn pinned<T>(&self, decide: impl FnOnce() -> T) -> T {
        let now = Nanos::from(self.start.elapsed()).as_u64();
        let _unpin = Unpin(PINNED.replace(Some((self.start, now))));
        decide()
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match PINNED.get() {
            Some((start, now)) if start == self.start => Nanos::from(now),
            _ => Nanos::from(self.start.elapsed()),
        }
    }
}

/// The state ahead of now (ns) from which `q` counts as nearly used up.
pub(super) fn near_ns(q: &Quota) -> u64 {
    let span = q.rate.interval().saturating_mul(q.burst().get());
    (u64::try_from(span.as_nanos()).unwrap_or(u64::MAX) as f64 * NEAR_LIMIT) as u64
}

// ===== a GCRA state lent to governor =====

/// One GCRA state (governor's "theoretical arrival time", 0 for a fresh one) lent to
/// governor for one decision: governor reads it and, when it allows the call, writes the
/// next state back into the cell. Nothing is stored unless the store copies it out.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Lent(Cell<u64>);

impl Hash for Lent {
    // One state per decision: there is nothing to tell apart.
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

/// The "state store" of a lent state: the state travels in the key.
#[derive(Debug, Default)]
pub(super) struct LentState;

impl StateStore for LentState {
    type Key = Lent;

    fn measure_and_replace<T, F, E>(&self, key: &Lent, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let tat = key.0.get();
        let (outcome, next) = f((tat > 0).then(|| Nanos::from(tat)))?;
        key.0.set(next.as_u64().max(1));
        Ok(outcome)
    }
}

pub(super) type Gcra = RateLimiter<Lent, LentState, TokioClock, NoOpMiddleware<Nanos>>;

/// A quota's GCRA decision for a state, without keeping anything: `Ok(next state)` or
/// `Err(wait)`.
pub(super) fn decide(gcra: &Gcra, clock: &TokioClock, tat: u64) -> Result<u64, Duration> {
    let lent = Lent(Cell::new(tat));
    match gcra.check_key(&lent) {
        Ok(()) => Ok(lent.0.get()),
        Err(not_until) => Err(not_until.wait_time_from(clock.now())),
    }
}
