//! Metrics an operator can scrape, on OpenTelemetry's metrics API (the `metrics` feature):
//! per attempt as OpenTelemetry's HTTP client conventions define them, per call, and what
//! onboarding needs (codes sent, throttles, cooldowns, the limiter's refusals).
//!
//! The caller passes in a [`Meter`](opentelemetry::metrics::Meter)
//! ([`ClientBuilder::meter`](crate::ClientBuilder::meter)); nothing global is read or set.
//! Without one (or without the feature) every recording point is one branch.
//!
//! # Instruments
//!
//! | name | kind, unit | attributes |
//! |---|---|---|
//! | `http.client.request.duration` | histogram, `s` | `http.request.method`, `server.address`, `http.response.status_code`, `error.type` |
//! | `wa_verify.call.duration` | histogram, `s` | `operation`, `outcome` |
//! | `wa_verify.call.attempts` | histogram, `{attempt}` | `operation`, `outcome` |
//! | `wa_verify.codes.requested` | counter, `{code}` | `code_method` |
//! | `wa_verify.codes.wrong` | counter, `{code}` | — |
//! | `wa_verify.throttles` | counter, `{answer}` | `error.code`, `error.subcode` |
//! | `wa_verify.cooldowns.started` | counter, `{cooldown}` | `scope` |
//! | `wa_verify.cooldowns.active` | gauge, `{cooldown}` | — |
//! | `wa_verify.limiter.refusals` | counter, `{call}` | `scope` |
//! | `wa_verify.limiter.waits` | counter, `{call}` | `scope` |
//! | `wa_verify.limiter.shadow_refusals` | counter, `{call}` | `scope` |
//! | `wa_verify.limiter.near_limit` | counter, `{call}` | `scope` |
//! | `wa_verify.store.fallbacks` | counter, `{check}` | — |
//! | `wa_verify.dedup.calls` | counter, `{call}` | `outcome` |
//!
//! Every attribute value comes from a closed set (operation names, error kinds, scopes,
//! Graph codes of throttles, the configured host): no phone number id, token, code or PIN
//! is ever one, so cardinality stays bounded.

#[cfg(feature = "metrics")]
mod instruments;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::error::Error;
use crate::rate_limit::Scope;

/// Where the layers record; cheap to clone. The default records nothing.
#[derive(Clone, Default)]
pub struct Metrics {
    #[cfg(feature = "metrics")]
    inner: Option<Arc<instruments::Instruments>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.enabled())
            .finish()
    }
}

/// What a finished call tells the metrics, from its answer or its error.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallSummary {
    /// `success`, or the error kind.
    pub outcome: &'static str,
    /// Attempts sent upstream.
    pub attempts: u32,
    /// `shared`, `already_sent` or `replayed` when the dedup layer answered.
    pub dedup: Option<&'static str>,
    /// Meta confirmed a code it sent on this call (not a dedup answer).
    pub code_sent: bool,
    /// Meta said the code was wrong.
    pub wrong_code: bool,
}

// Without the feature every method is a no-op that ignores `self`.
#[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self))]
impl Metrics {
    /// Instruments from `meter`, created once: share the result (clone it) between clients
    /// that report to the same place.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn new(meter: &opentelemetry::metrics::Meter) -> Self {
        Self {
            inner: Some(Arc::new(instruments::Instruments::new(meter))),
        }
    }

    /// Whether anything is recorded.
    pub fn enabled(&self) -> bool {
        #[cfg(feature = "metrics")]
        return self.inner.is_some();
        #[cfg(not(feature = "metrics"))]
        false
    }

    /// OpenTelemetry's `http.request.method` value for `method`.
    pub(crate) fn method_name(method: &http::Method) -> &'static str {
        match *method {
            http::Method::GET => "GET",
            http::Method::POST => "POST",
            http::Method::DELETE => "DELETE",
            _ => "_OTHER",
        }
    }

    /// The start of something to time, when timing is recorded at all.
    pub(crate) fn start(&self) -> Option<Instant> {
        self.enabled().then(Instant::now)
    }

    /// One attempt, as OpenTelemetry's `http.client.request.duration`; a throttling answer
    /// also counts in `wa_verify.throttles`.
    pub(crate) fn attempt(
        &self,
        start: Instant,
        method: &'static str,
        server: &Arc<str>,
        result: Result<u16, &Error>,
    ) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            i.attempt(start.elapsed(), method, server, result);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (start, method, server, result);
    }

    /// One call through the whole stack.
    pub(crate) fn call(
        &self,
        start: Instant,
        operation: &'static str,
        code_method: Option<&'static str>,
        summary: CallSummary,
    ) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            i.call(start.elapsed(), operation, code_method, summary);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (start, operation, code_method, summary);
    }

    /// The limiter refused a call (`waited`: it had waited first, or had to wait).
    pub(crate) fn limiter(&self, scope: Scope, refused: bool) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            i.limiter(scope, refused);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (scope, refused);
    }

    /// A cooldown learned from Meta's answer, of a number, a WABA or the app.
    pub(crate) fn cooldown_started(&self, scope: &'static str) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            i.cooldown_started(scope);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = scope;
    }

    /// Reads what only the store knows when a reader collects: active cooldowns, checks
    /// answered by `on_store_error`, refusals made in shadow mode, near-limit checks.
    pub(crate) fn observe_store(&self, store: &crate::rate_limit::AnyStore) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            i.observe_store(store);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = store;
    }
}
