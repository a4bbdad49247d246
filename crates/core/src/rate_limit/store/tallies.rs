//! What a store counts of its own decisions, for metrics: the quota refusals it let
//! through in shadow mode, and the calls that left a quota at least 80% used.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Scope;

/// The quotas' scopes, in the order the tallies keep them.
const SCOPES: [Scope; 3] = [Scope::Number, Scope::Waba, Scope::Global];

/// A quota's use from which a call counts as near the limit.
pub(crate) const NEAR_LIMIT: f64 = 0.8;

/// Counts by quota scope (per number, per WABA, global), shared by every clone of a
/// store. Updated only off the common path: a refusal, or a quota nearly used up.
#[derive(Debug, Default)]
pub struct StoreTallies {
    shadow: [AtomicU64; 3],
    near: [AtomicU64; 3],
}

fn index(scope: Scope) -> Option<usize> {
    SCOPES.iter().position(|s| *s == scope)
}

impl StoreTallies {
    /// Calls a quota of `scope` would have refused, let through in shadow mode.
    pub fn shadow_refusals(&self) -> [(Scope, u64); 3] {
        SCOPES.map(|s| {
            (
                s,
                self.shadow[index(s).unwrap_or(0)].load(Ordering::Relaxed),
            )
        })
    }

    /// Calls that left a quota of `scope` at least 80% used (one count per call, under
    /// the first such quota: per number, then global, then per WABA).
    pub fn near_limit(&self) -> [(Scope, u64); 3] {
        SCOPES.map(|s| (s, self.near[index(s).unwrap_or(0)].load(Ordering::Relaxed)))
    }

    pub(crate) fn shadowed(&self, scope: Scope) {
        if let Some(i) = index(scope) {
            self.shadow[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn near(&self, scope: Scope) {
        if let Some(i) = index(scope) {
            self.near[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the metrics read of a store when a reader collects.
#[cfg(feature = "metrics")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoreView {
    pub(crate) active_cooldowns: u64,
    pub(crate) fallbacks: u64,
    pub(crate) shadow: [(Scope, u64); 3],
    pub(crate) near: [(Scope, u64); 3],
}

#[cfg(feature = "metrics")]
impl StoreView {
    /// Nothing counted, every scope named.
    pub(crate) const EMPTY: Self = Self {
        active_cooldowns: 0,
        fallbacks: 0,
        shadow: [(Scope::Number, 0), (Scope::Waba, 0), (Scope::Global, 0)],
        near: [(Scope::Number, 0), (Scope::Waba, 0), (Scope::Global, 0)],
    };

    pub(crate) fn of(tallies: &StoreTallies, active_cooldowns: usize, fallbacks: u64) -> Self {
        Self {
            active_cooldowns: active_cooldowns as u64,
            fallbacks,
            shadow: tallies.shadow_refusals(),
            near: tallies.near_limit(),
        }
    }
}

/// Reads a store without keeping it alive: `None` once every clone of it is gone.
#[cfg(feature = "metrics")]
pub(crate) type StoreObserver = Box<dyn Fn() -> Option<StoreView> + Send + Sync>;
