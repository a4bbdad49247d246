//! What the Redis dedup store's parts share: the scripts, the keys of a number, the
//! timings and the records as Redis keeps them.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;
use serde::{Deserialize, Serialize};

use crate::dedup::begin::Key;
use crate::dedup::outcome::Outcome;
use crate::rate_limit::redis::RedisStore;

/// How long a leader's flight lasts unless it is renewed: a leader that crashed blocks
/// its number's followers at most this long before they learn a code may have gone out.
pub(super) const LEASE: Duration = Duration::from_secs(5);

/// How often a live leader renews its lease.
pub(super) const RENEW_EVERY: Duration = Duration::from_millis(1500);

/// How often a follower looks at its leader.
pub(super) const POLL_EVERY: Duration = Duration::from_millis(20);

/// How long followers can read a finished leader's outcome.
pub(super) const OUTCOME_KEPT: Duration = Duration::from_secs(60);

/// Failed looks in a row after which a follower stops waiting (a code may have gone out).
pub(super) const MAX_POLL_ERRORS: u32 = 5;

pub(super) struct Scripts {
    pub(super) begin: Script,
    pub(super) finish: Script,
    pub(super) poll: Script,
    pub(super) refresh: Script,
}

pub(super) struct Shared {
    pub(super) store: RedisStore,
    pub(super) scripts: Scripts,
    pub(super) window: Duration,
    pub(super) ttl: Duration,
    /// This process's leader ids: a random start, then one more per call.
    pub(super) next_id: AtomicU64,
}

/// An idempotency record as Redis keeps it.
#[derive(Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) number: u64,
    pub(super) method: String,
    pub(super) outcome: Outcome,
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

pub(super) fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The keys of one number's dedup state, under the store's prefix. The number is a hash
/// tag, so a number's keys stay together.
pub(super) struct Keys {
    pub(super) flight: String,
    pub(super) journal: String,
    pub(super) window: String,
    pub(super) base: String,
}

impl Keys {
    pub(super) fn of(prefix: &str, key: &Key) -> Self {
        // Tenant and number in one hash tag: a number's keys stay together.
        let base = format!("{prefix}dd:{{{}:{}}}", key.tenant_str(), key.number);
        Self {
            flight: format!("{base}:f:{}", key.operation),
            journal: format!("{base}:j"),
            window: format!("{base}:w"),
            base,
        }
    }

    pub(super) fn outcome(&self, leader: &str) -> String {
        format!("{}:o:{leader}", self.base)
    }
}

/// The idempotency record of `key`. On one Redis the scripts read and write it with the
/// number's keys, in the same round trip; on a cluster it has its own hash tag (a key
/// reused with another number must find it), so it is read before the begin script and
/// written after the finish one.
pub(super) fn idempotency_key(prefix: &str, tenant: &str, key: &str, clustered: bool) -> String {
    match clustered {
        true => format!("{prefix}dd:k:{{{tenant}:{key}}}"),
        false => format!("{prefix}dd:k:{tenant}:{key}"),
    }
}
