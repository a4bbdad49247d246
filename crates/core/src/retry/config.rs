//! The retry policy's settings as read from config; its defaults are the policy's.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::backoff::BackoffConfig;
use super::policy::RetryPolicy;
use super::TpsBudget;
use crate::duration;
use crate::error::Error;

/// The retry policy's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryConfig {
    /// `false` makes every call one attempt.
    pub enabled: bool,
    /// The most attempts per call, the first included.
    pub max_attempts: u32,
    /// Also retry ambiguous failures (may send a second code).
    pub retry_ambiguous: bool,
    /// The first backoff wait.
    #[serde(with = "duration")]
    pub initial_backoff: Duration,
    /// The factor between waits.
    pub multiplier: f64,
    /// The longest backoff wait.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// Jitter factor, 0 to 1.
    pub jitter: f64,
    /// The longest wait slept before a retry; a longer server hint fails fast.
    #[serde(with = "duration")]
    pub max_retry_wait: Duration,
    /// Retries allowed as a share of calls, in percent (0 turns the budget off).
    pub budget_percent: f32,
    /// Retries allowed per second whatever the share.
    pub budget_min_per_sec: u32,
}

impl Default for RetryConfig {
    /// The defaults of the whole crate's retries, written here only: 4 attempts, no
    /// ambiguous retries, 200 ms × 2 up to 5 s with ±50% jitter, waits up to 60 s, and a
    /// budget of 20% extra load (at least 10 retries per second).
    fn default() -> Self {
        let b = BackoffConfig::default();
        Self {
            enabled: true,
            max_attempts: 4,
            retry_ambiguous: false,
            initial_backoff: b.initial,
            multiplier: b.multiplier,
            max_backoff: b.max,
            jitter: b.jitter,
            max_retry_wait: Duration::from_secs(60),
            budget_percent: 20.0,
            budget_min_per_sec: 10,
        }
    }
}

impl RetryConfig {
    /// The policy these settings describe, bounded by `deadline`.
    ///
    /// # Errors
    ///
    /// `invalid_input` for a zero `max_attempts`, a jitter outside 0..=1, a multiplier
    /// below 1 or a budget outside 0..=1000 percent.
    pub fn policy(&self, deadline: Option<Duration>) -> Result<RetryPolicy, Error> {
        let max_attempts = NonZeroU32::new(self.max_attempts)
            .ok_or_else(|| Error::invalid_input("retry.max_attempts must be at least 1"))?;
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::invalid_input(format!(
                "retry.jitter must be between 0 and 1, got {}",
                self.jitter
            )));
        }
        if !(self.multiplier >= 1.0 && self.multiplier <= 100.0) {
            return Err(Error::invalid_input(format!(
                "retry.multiplier must be between 1 and 100, got {}",
                self.multiplier
            )));
        }
        if !(0.0..=1000.0).contains(&self.budget_percent) {
            return Err(Error::invalid_input(format!(
                "retry.budget_percent must be between 0 and 1000, got {}",
                self.budget_percent
            )));
        }
        if !self.enabled {
            return Ok(RetryPolicy::never().budget(None));
        }
        Ok(self.policy_unchecked(max_attempts, deadline))
    }

    fn policy_unchecked(
        &self,
        max_attempts: NonZeroU32,
        deadline: Option<Duration>,
    ) -> RetryPolicy {
        RetryPolicy::from_parts(
            max_attempts,
            self.retry_ambiguous,
            self.backoff(),
            self.max_retry_wait,
            deadline,
            self.budget(),
        )
    }

    /// The exponential schedule these settings describe.
    pub fn backoff(&self) -> BackoffConfig {
        BackoffConfig {
            initial: self.initial_backoff,
            multiplier: self.multiplier,
            max: self.max_backoff,
            jitter: self.jitter,
        }
    }

    /// The retry budget these settings describe; `None` when `budget_percent` is 0.
    pub(crate) fn budget(&self) -> Option<TpsBudget> {
        (self.budget_percent > 0.0).then(|| {
            TpsBudget::new(
                Duration::from_secs(10),
                self.budget_min_per_sec,
                self.budget_percent / 100.0,
            )
        })
    }
}

impl Default for RetryPolicy {
    /// The policy of [`RetryConfig::default`]: 4 attempts, no ambiguous retries, 200 ms × 2
    /// up to 5 s with ±50% jitter, waits up to 60 s, and a budget of 20% extra load (at
    /// least 10 retries per second).
    fn default() -> Self {
        let config = RetryConfig::default();
        let max_attempts = NonZeroU32::new(config.max_attempts).unwrap_or(NonZeroU32::MIN);
        config.policy_unchecked(max_attempts, None)
    }
}
