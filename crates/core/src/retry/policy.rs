//! [`RetryPolicy`]: tower's `Policy` with the never-resend-by-accident rules.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::Policy;

use super::backoff::{BackoffConfig, Schedule};
use super::classify::{classify, RetryClass};
use crate::error::Error;
use crate::operation::{Attempt, Operation};
use crate::response::Response;

/// Decides whether and when a failed call is sent again. The default never resends a
/// request that may have reached the server unless the server says a retry is right.
///
/// Waits come from the exponential schedule, raised to the server's `Retry-After` or
/// `estimated_time_to_regain_access`. A wait that does not fit before the deadline or
/// within `max_retry_wait` is not slept: a server hint becomes a `rate_limited` error with
/// `retry_after`. A [`TpsBudget`] bounds retries to a share of the traffic.
///
/// See the [module docs](super) for an example.
#[derive(Clone)]
pub struct RetryPolicy {
    settings: Arc<Settings>,
    budget: Option<Arc<TpsBudget>>,
    // Per call: the shared policy never retries, tower clones it for each call.
    attempts: u32,
    // Attempts that left the process: a local refusal (rate limit) is not one.
    sent: u32,
    // Whether any attempt so far may have reached the server.
    reached: bool,
    started: Option<Instant>,
    // Boxed: built on the first retry only, and kept out of every call's future.
    schedule: Option<Box<Schedule>>,
}

#[derive(Clone, Debug)]
struct Settings {
    max_attempts: NonZeroU32,
    retry_ambiguous: bool,
    backoff: BackoffConfig,
    max_retry_wait: Duration,
    deadline: Option<Duration>,
    throttle_wait: Option<Duration>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.settings.max_attempts)
            .field("retry_ambiguous", &self.settings.retry_ambiguous)
            .field("backoff", &self.settings.backoff)
            .field("max_retry_wait", &self.settings.max_retry_wait)
            .field("deadline", &self.settings.deadline)
            .field("throttle_wait", &self.settings.throttle_wait)
            .field("budget", &self.budget.is_some())
            .finish()
    }
}

impl RetryPolicy {
    /// A policy from its parts (already validated); `config.rs` builds every policy
    /// through it, the default included.
    pub(crate) fn from_parts(
        max_attempts: NonZeroU32,
        retry_ambiguous: bool,
        backoff: BackoffConfig,
        max_retry_wait: Duration,
        deadline: Option<Duration>,
        budget: Option<TpsBudget>,
    ) -> Self {
        Self {
            settings: Arc::new(Settings {
                max_attempts,
                retry_ambiguous,
                backoff,
                max_retry_wait,
                deadline,
                throttle_wait: None,
            }),
            budget: budget.map(Arc::new),
            attempts: 0,
            sent: 0,
            reached: false,
            started: None,
            schedule: None,
        }
    }

    /// The safe default: see [`Default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A policy that never retries (one attempt).
    pub fn never() -> Self {
        Self::default().max_attempts(NonZeroU32::MIN)
    }

    fn with(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }

    /// The most attempts per call, the first included.
    #[must_use]
    pub fn max_attempts(self, n: NonZeroU32) -> Self {
        self.with(|s| s.max_attempts = n)
    }

    /// Also retry ambiguous failures (attempt timeout after the write, connection lost
    /// mid-answer, 500/502/504 without `is_transient`). This may send a second code.
    #[must_use]
    pub fn retry_ambiguous(self, yes: bool) -> Self {
        self.with(|s| s.retry_ambiguous = yes)
    }

    /// The exponential schedule.
    #[must_use]
    pub fn backoff(self, backoff: BackoffConfig) -> Self {
        self.with(|s| s.backoff = backoff)
    }

    /// The longest single wait slept before a retry.
    #[must_use]
    pub fn max_retry_wait(self, wait: Duration) -> Self {
        self.with(|s| s.max_retry_wait = wait)
    }

    /// The call's overall deadline (the same as the `Deadline` layer's): no wait is slept
    /// that would end past it.
    #[must_use]
    pub fn deadline(self, deadline: Option<Duration>) -> Self {
        self.with(|s| s.deadline = deadline)
    }

    /// The wait a throttle without a hint implies (the rate limiter's default cooldown).
    /// With it, such a throttle is not retried sooner than the limiter would allow; without
    /// it (the default for the policy alone), the backoff schedule decides.
    #[must_use]
    pub fn throttle_wait(self, wait: Option<Duration>) -> Self {
        self.with(|s| s.throttle_wait = wait)
    }

    /// The retry budget; `None` disables it.
    #[must_use]
    pub fn budget(mut self, budget: Option<TpsBudget>) -> Self {
        self.budget = budget.map(Arc::new);
        self
    }

    fn decide<O: Operation>(&mut self, op: &O, error: &mut Error) -> Option<Duration> {
        let attempt = self.attempts;
        let class = classify(op.retry_mode(), error);
        let allowed = match class {
            RetryClass::Retry => true,
            RetryClass::Ambiguous => self.settings.retry_ambiguous,
            RetryClass::Never => false,
        };
        if !allowed {
            tracing::debug!(attempt, reason = class.as_str(), kind = %error.kind(), "not retrying");
            return None;
        }
        if attempt >= self.settings.max_attempts.get() {
            tracing::debug!(attempt, reason = "max_attempts", "not retrying");
            return None;
        }
        let schedule = self
            .schedule
            .get_or_insert_with(|| Box::new(Schedule::new(&self.settings.backoff)));
        let backoff = schedule.next_wait();
        let hint = match (error.retry_after(), self.settings.throttle_wait) {
            (None, Some(default)) => error.throttle().map(|t| t.wait_or(default)),
            (hint, _) => hint,
        };
        let wait = backoff.max(hint.unwrap_or_default());
        // The call's deadline as the request carries it, else this policy's own setting.
        let left = match crate::timeout::CarriesDeadline::deadline(op) {
            Some(deadline) => Some(deadline.saturating_duration_since(Instant::now())),
            None => self
                .settings
                .deadline
                .map(|d| d.saturating_sub(self.started.map(|s| s.elapsed()).unwrap_or_default())),
        };
        if wait > self.settings.max_retry_wait || left.is_some_and(|left| wait >= left) {
            let wait_ms = wait.as_millis() as u64;
            if hint.is_some_and(|h| h >= backoff) {
                tracing::debug!(
                    attempt,
                    wait_ms,
                    reason = "server_wait_too_long",
                    "not retrying"
                );
                let e = std::mem::replace(error, Error::invalid_input(""));
                *error = e.into_rate_limited(wait);
            } else {
                tracing::debug!(attempt, wait_ms, reason = "no_time_left", "not retrying");
            }
            return None;
        }
        if let Some(budget) = &self.budget {
            if !budget.withdraw() {
                tracing::debug!(attempt, reason = "budget_exhausted", "not retrying");
                return None;
            }
        }
        tracing::debug!(
            attempt,
            wait_ms = wait.as_millis() as u64,
            reason = class.as_str(),
            kind = %error.kind(),
            status = error.status().map(|s| s.as_u16()),
            "retrying"
        );
        Some(wait)
    }
}

impl<O, T> Policy<O, Response<T>, Error> for RetryPolicy
where
    O: Operation,
{
    type Future = Sleep;

    fn retry(&mut self, op: &mut O, result: &mut Result<Response<T>, Error>) -> Option<Sleep> {
        self.attempts += 1;
        match result {
            Ok(response) => {
                self.sent += 1;
                response.set_attempts(self.sent);
                None
            }
            Err(error) => {
                if !error.is_local() {
                    self.sent += 1;
                }
                self.reached |= error.may_have_reached_server();
                let wait = self.decide(op, error);
                match wait {
                    Some(waited) => op.set_attempt(Attempt {
                        number: self.attempts + 1,
                        waited,
                    }),
                    None => {
                        // The error answers for the whole call: every attempt that left,
                        // and whether any of them may have reached Meta.
                        error.set_attempts(self.sent);
                        if self.reached {
                            error.set_may_have_reached_server();
                        }
                    }
                }
                wait.map(tokio::time::sleep)
            }
        }
    }

    fn clone_request(&mut self, op: &O) -> Option<O> {
        if self.attempts == 0 {
            // tower calls this on the shared policy right before cloning it for the call,
            // so the clone starts its clock and the budget sees one deposit per call. The
            // clock is only read when no deadline travels with the call (reading it costs
            // tens of ns on a VM, on every call).
            if self.settings.deadline.is_some()
                && crate::timeout::CarriesDeadline::deadline(op).is_none()
            {
                self.started = Some(Instant::now());
            }
            if let Some(budget) = &self.budget {
                budget.deposit();
            }
        }
        Some(op.clone())
    }
}
