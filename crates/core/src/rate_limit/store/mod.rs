//! Where rate-limit state lives, and what the layer asks of it: one answer per call for
//! every limit of a number, and the outcomes that teach it (throttles, wrong codes).

mod any;
mod config;
mod inspect;
mod memory;
#[cfg(feature = "redis")]
pub mod redis;
mod redis_url;
mod tallies;

use std::future::Future;
use std::time::Duration;

pub use self::any::{AnyFuture, AnyLearnFuture, AnyStore};
pub use self::config::{OnStoreError, StoreConfig, StoreKind};
pub use self::inspect::{HeldCooldown, NumberLimits};
pub use self::memory::MemoryStore;
pub use self::redis_url::RedisUrl;
pub use self::tallies::StoreTallies;
pub(crate) use self::tallies::NEAR_LIMIT;
#[cfg(feature = "metrics")]
pub(crate) use self::tallies::{StoreObserver, StoreView};
pub use crate::operation::QuotaClass;

/// The answer of a store for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Send now: a slot of every limit was taken.
    Go,
    /// Not before `wait` has passed; nothing was taken.
    Wait {
        /// How long until the binding limit lets the call through.
        wait: Duration,
        /// Which limit binds.
        scope: Scope,
    },
}

/// Which limit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// A per-number quota.
    Number,
    /// The global (app-level) quota.
    Global,
    /// A cooldown learned from Meta's throttling answer.
    Cooldown,
    /// Too many wrong codes for this number recently.
    WrongCodes,
    /// The number's register/deregister budget is spent.
    Registration,
    /// The shared store failed and its policy is to deny.
    StoreUnavailable,
    /// The WhatsApp Business Account's quota, or a cooldown Meta set on it (80007).
    Waba,
}

impl Scope {
    /// `number`, `global`, `cooldown`, `wrong_codes`, `registration`, `store_unavailable`,
    /// `waba`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Number => "number",
            Scope::Global => "global",
            Scope::Cooldown => "cooldown",
            Scope::WrongCodes => "wrong_codes",
            Scope::Registration => "registration",
            Scope::StoreUnavailable => "store_unavailable",
            Scope::Waba => "waba",
        }
    }

    /// What a refusal for this scope says.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Scope::Number => "per-number rate limit reached",
            Scope::Global => "global rate limit reached",
            Scope::Cooldown => "Meta throttled this number recently; cooling down",
            Scope::WrongCodes => "too many wrong codes for this number; verify_code paused",
            Scope::Registration => "register/deregister budget for this number spent",
            Scope::StoreUnavailable => "rate-limit store unavailable; denying by policy",
            Scope::Waba => {
                "the WhatsApp Business Account's rate limit reached, or Meta throttled it recently"
            }
        }
    }
}

/// An outcome the store learns from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lesson {
    /// Meta throttled the call: nobody calls this class for this number (or, for the
    /// app, any number) until `wait` has passed.
    Throttled {
        /// Until when, from now.
        wait: Duration,
        /// Whether Meta throttled the whole app rather than this number.
        app_wide: bool,
        /// The Graph code (and subcode) of the answer, for operators (`limits show`).
        code: Option<crate::error::GraphCode>,
    },
    /// Meta said the code was wrong.
    WrongCode,
    /// Meta throttled a WhatsApp Business Account (80007, or a usage header naming it):
    /// every number of `waba` waits for this class of call.
    WabaThrottled {
        /// The WABA.
        waba: u64,
        /// Until when, from now.
        wait: Duration,
        /// The Graph code (and subcode) of the answer.
        code: Option<crate::error::GraphCode>,
    },
}

/// An answer now, or a future one (for stores across the network).
#[derive(Debug)]
pub enum Acquire<F> {
    /// Known at once.
    Ready(Admission),
    /// Known when `F` resolves.
    Pending(F),
}

/// The state behind the rate-limit layer.
///
/// One `acquire` checks every limit of a call at once (per-number quotas, the global
/// quota, cooldowns, the wrong-code guard, the registration budget) and takes a slot of
/// each, or of none; `learn` records what Meta's answer taught.
pub trait RateLimitStore: Clone + Send + Sync + 'static {
    /// The future of an answer that is not known at once.
    type Future: Future<Output = Admission> + Send + 'static;

    /// The future of recording a lesson (ready at once in memory).
    type LearnFuture: Future<Output = ()> + Send + 'static;

    /// Takes a slot of every limit of a call of `class` for number `key` (`None`: only
    /// the global quota), or says how long to wait and takes nothing.
    fn acquire(&self, key: Option<u64>, class: QuotaClass) -> Acquire<Self::Future>;

    /// [`acquire`](Self::acquire) for a call whose number belongs to WhatsApp Business
    /// Account `waba`: its per-WABA quotas and cooldowns apply too. Stores without them
    /// ignore the WABA.
    fn acquire_in(
        &self,
        key: Option<u64>,
        waba: Option<u64>,
        class: QuotaClass,
    ) -> Acquire<Self::Future> {
        let _ = waba;
        self.acquire(key, class)
    }

    /// What a refusal for `scope` says; a store names its configured limit where that
    /// helps the caller (the registration budget).
    fn refusal_message(&self, scope: Scope) -> String {
        scope.message().to_owned()
    }

    /// Records what an answer taught about number `key`. The layer awaits it before the
    /// call returns, so a process that exits right after its call keeps the lesson; a
    /// store across the network bounds it by its own timeout.
    fn learn(&self, key: Option<u64>, class: QuotaClass, lesson: Lesson) -> Self::LearnFuture;
}
