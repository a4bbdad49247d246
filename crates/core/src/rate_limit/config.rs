//! `[rate_limit]` as read from config: the limits, the store, and the layer they make.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cooldowns::Cooldowns;
use super::limits::{window_or_off, LimitMode, Limits, WindowLimit, DEFAULT_COOLDOWN};
use super::quota::Quota;
use super::service::RateLimitLayer;
use super::store::{AnyStore, MemoryStore, StoreConfig, StoreKind};
use crate::error::Error;

/// Per-number and global quotas; both empty by default (no local limit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// `false` turns the whole layer off: no quota, budget, guard or cooldown.
    pub enabled: bool,
    /// Quotas every number's `request_code` calls must satisfy at once (e.g. `1/min`
    /// against bursts and `5/h` against abuse). They limit sending codes only.
    pub per_number: Vec<Quota>,
    /// Quotas every number's `verify_code` calls must satisfy at once (none by default;
    /// the wrong-code guard protects verify_code too).
    pub verify_per_number: Vec<Quota>,
    /// The app-level quota over all numbers.
    pub global: Option<Quota>,
    /// Quotas per WhatsApp Business Account, over every call for its numbers (none by
    /// default; the number → WABA map comes from `[[tenants]]`).
    pub per_waba: Vec<Quota>,
    /// How long a call may wait for its slot before failing with `rate_limited`.
    #[serde(with = "crate::duration")]
    pub max_wait: Duration,
    /// Idle numbers are forgotten every this many calls (0: never).
    pub evict_every: u64,
    /// register/deregister calls per number in a moving window (Meta: 10 per 72 h);
    /// `"off"` (`None`) turns the budget off.
    #[serde(with = "window_or_off")]
    pub registration: Option<WindowLimit>,
    /// Wrong codes per number before verify_code pauses locally; `"off"` (`None`) turns
    /// the guard off.
    #[serde(with = "window_or_off")]
    pub wrong_codes: Option<WindowLimit>,
    /// The cooldown after a throttle that gave no wait hint, unless `cooldowns` names
    /// its code.
    #[serde(with = "crate::duration")]
    pub default_cooldown: Duration,
    /// Cooldowns by Graph code or code/subcode (`"136024/2388367" = "24h"`), set over the
    /// defaults (see [`Cooldowns`]).
    #[serde(with = "super::cooldowns::table")]
    pub cooldowns: Cooldowns,
    /// The longest cooldown recorded, whatever Meta's hint says.
    #[serde(with = "crate::duration")]
    pub max_cooldown: Duration,
    /// Where the state lives: this process (default) or Redis.
    pub store: StoreConfig,
    /// `"enforce"` (default) or `"shadow"`: in shadow mode the quotas (`per_number`,
    /// `verify_per_number`, `per_waba`, `global`) refuse nothing and count what they
    /// would have refused (`wa_verify.limiter.shadow_refusals`); cooldowns, the
    /// registration budget and the wrong-code guard stay enforced.
    pub mode: LimitMode,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            enabled: true,
            per_number: Vec::new(),
            verify_per_number: Vec::new(),
            global: None,
            per_waba: Vec::new(),
            max_wait: Duration::ZERO,
            evict_every: 1 << 16,
            registration: limits.registration,
            wrong_codes: limits.wrong_codes,
            default_cooldown: DEFAULT_COOLDOWN,
            cooldowns: Cooldowns::default(),
            max_cooldown: limits.max_cooldown,
            store: StoreConfig::default(),
            mode: LimitMode::Enforce,
        }
    }
}

impl RateLimitConfig {
    /// Every limit these settings describe.
    pub fn limits(&self) -> Limits {
        if !self.enabled {
            return Limits::none();
        }
        let mut limits = Limits::quotas(&self.per_number, self.global);
        limits.verify_per_number.clone_from(&self.verify_per_number);
        limits.per_waba.clone_from(&self.per_waba);
        limits.registration = self.registration;
        limits.wrong_codes = self.wrong_codes;
        limits.max_cooldown = self.store.max_cooldown.unwrap_or(self.max_cooldown);
        limits.mode = self.mode;
        limits
    }

    /// The store these settings describe.
    ///
    /// # Errors
    ///
    /// `invalid_input` when Redis is asked for without a URL, or without the `redis`
    /// feature.
    pub fn store(&self) -> Result<AnyStore, Error> {
        self.limits().validate()?;
        match self.store.kind {
            _ if !self.enabled => Ok(MemoryStore::with_limits(self.limits(), 0).into()),
            StoreKind::Memory => {
                Ok(MemoryStore::with_limits(self.limits(), self.evict_every).into())
            }
            #[cfg(feature = "redis")]
            StoreKind::Redis | StoreKind::RedisCluster => Ok(AnyStore::Redis(
                super::redis::RedisStore::new(self.store.clone(), self.limits())?,
            )),
            #[cfg(not(feature = "redis"))]
            StoreKind::Redis | StoreKind::RedisCluster => Err(Error::invalid_input(
                "rate_limit.store.kind = \"redis\" or \"redis_cluster\" needs wa-verify-core's \
                 `redis` feature",
            )),
        }
    }

    /// The cooldown a throttle without a hint implies, when the limiter learns at all:
    /// the retry policy waits no less before resending.
    pub fn learned_cooldown(&self) -> Option<Duration> {
        self.enabled.then_some(self.default_cooldown)
    }

    /// The cooldowns a throttle without a hint implies: the table, with
    /// `default_cooldown` for codes it does not name.
    pub fn cooldowns(&self) -> Cooldowns {
        let mut c = self.cooldowns.clone();
        c.default = self.default_cooldown;
        c
    }

    /// The rate-limit layer these settings describe.
    ///
    /// # Errors
    ///
    /// As [`store`](Self::store).
    pub fn layer(&self) -> Result<RateLimitLayer<AnyStore>, Error> {
        Ok(RateLimitLayer::new(self.store()?)
            .max_wait(self.max_wait)
            .cooldowns(self.cooldowns())
            .learn(self.enabled))
    }
}
