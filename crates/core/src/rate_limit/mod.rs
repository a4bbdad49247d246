//! Middleware that limits calls per phone number and per app, waiting up to a bound.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//! use wa_verify_core::rate_limit::{MemoryStore, Quota, RateLimitLayer};
//! use wa_verify_core::{Error, ErrorKind, RequestCode};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Error> {
//! let store = MemoryStore::new(&[Quota::new("1/min".parse()?, 1)], None);
//! let mut svc = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(store)) // max_wait 0: fail fast
//!     .service(service_fn(|_op: RequestCode| async { Ok::<_, Error>(()) }));
//! let op = RequestCode::new("1234567890".parse()?, Default::default(), Default::default());
//! svc.ready().await?.call(op.clone()).await?;
//! let err = svc.ready().await?.call(op).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::RateLimited);
//! assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
//! # Ok(())
//! # }
//! ```
//!
//! # When the limiter waits
//!
//! The key is known only in `call`, so `poll_ready` forwards the inner readiness and the
//! wait happens in the response future: up to `max_wait`, and never past the call's
//! deadline (see [`CarriesDeadline`](crate::timeout::CarriesDeadline)); a slot further
//! away fails the call at once with `rate_limited` and the time until the slot, and the
//! inner service is never called.
//!
//! # Lessons
//!
//! What Meta's answer teaches (a throttle's cooldown, a wrong code) is in the store before
//! the call returns: the layer awaits the store, bounded by the store's own timeout, so a
//! process that exits right after its call loses nothing. Only failed calls teach, so the
//! happy path never waits for it.
//!
//! # Order
//!
//! Put it inside the retry: every attempt reaches Meta, so every attempt spends the
//! number's quota.

mod config;
mod cooldowns;
pub mod future;
mod limits;
mod quota;
mod service;
mod store;

pub use self::config::RateLimitConfig;
pub use self::cooldowns::Cooldowns;
pub use self::limits::{LimitMode, Limits, WindowLimit, DEFAULT_COOLDOWN, MAX_QUOTAS, MAX_SPAN};
pub use self::quota::{Quota, Rate};
pub use self::service::{AsStore, RateLimit, RateLimitLayer};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::store::redis;
pub use self::store::{
    Acquire, Admission, AnyFuture, AnyLearnFuture, AnyStore, HeldCooldown, Lesson, MemoryStore,
    NumberLimits, OnStoreError, QuotaClass, RateLimitStore, RedisUrl, Scope, StoreConfig,
    StoreKind, StoreTallies,
};
#[cfg(feature = "metrics")]
pub(crate) use self::store::{StoreObserver, StoreView};
pub use crate::error::GraphCode;

use crate::error::{Error, Meaning};
use crate::operation::Operation;

/// Counts of what the layer did, shared by every clone of it: calls that waited for their
/// slot and calls refused locally. Updated only off the hot path (a call that goes at once
/// touches neither).
#[derive(Debug, Default)]
pub struct RateLimitStats {
    waits: std::sync::atomic::AtomicU64,
    refusals: std::sync::atomic::AtomicU64,
    metrics: crate::metrics::Metrics,
}

impl RateLimitStats {
    /// Calls that waited for their slot (and then went, or were refused).
    pub fn waits(&self) -> u64 {
        self.waits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Calls refused locally (a limit, a cooldown, the wrong-code guard, the budget).
    pub fn refusals(&self) -> u64 {
        self.refusals.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn waited(&self, scope: Scope) {
        self.waits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.metrics.limiter(scope, false);
    }

    pub(crate) fn refused(&self, scope: Scope) {
        self.refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.metrics.limiter(scope, true);
    }
}

/// What the rate limiter keys a request by, and which of its limits apply.
pub trait RateLimitKey {
    /// The per-number key, or `None` for calls only the global quota covers.
    fn rate_limit_key(&self) -> Option<u64>;

    /// Which limits apply.
    fn rate_limit_class(&self) -> QuotaClass {
        QuotaClass::Other
    }

    /// The WhatsApp Business Account the call's number belongs to, for the per-WABA
    /// limits (`None`: none known).
    fn rate_limit_waba(&self) -> Option<u64> {
        None
    }
}

impl<O: Operation> RateLimitKey for O {
    fn rate_limit_key(&self) -> Option<u64> {
        Some(self.phone_number_id().key())
    }

    fn rate_limit_class(&self) -> QuotaClass {
        self.quota_class()
    }

    fn rate_limit_waba(&self) -> Option<u64> {
        self.context().and_then(|c| c.waba)
    }
}

/// What Meta's answer teaches the store: a throttle (see [`Error::throttle`]) becomes a
/// cooldown of Meta's wait, else the cooldown its code calls for; a wrong code (136025)
/// counts towards the guard.
pub(crate) fn lesson(error: &Error, cooldowns: &Cooldowns, waba: Option<u64>) -> Option<Lesson> {
    if error.is_answer() && error.meaning() == Some(Meaning::WrongCode) {
        return Some(Lesson::WrongCode);
    }
    // A throttle of a WhatsApp Business Account (80007, or a usage header naming one):
    // with the call's WABA known (tenants), the WABA named (else the call's) cools down,
    // so all its numbers wait. Without it, the number does, as before.
    let named = error
        .meta()
        .business_use_case_usage()
        .and_then(named_business);
    let waba_wide = error.meaning() == Some(Meaning::BusinessRateLimited) || named.is_some();
    let code = error.graph().map(|g| GraphCode {
        code: g.code,
        subcode: g.error_subcode,
    });
    let t = error.throttle()?;
    let wait = t.hint.unwrap_or_else(|| match code {
        Some(c) => cooldowns.for_code(c.code, c.subcode),
        None => cooldowns.default,
    });
    match waba {
        Some(w) if waba_wide && !t.app_wide => Some(Lesson::WabaThrottled {
            waba: named.unwrap_or(w),
            wait,
            code,
        }),
        _ => Some(Lesson::Throttled {
            wait,
            app_wide: t.app_wide,
            code,
        }),
    }
}

/// The business (WABA) an `X-Business-Use-Case-Usage` header names: its first key, when
/// it is an id.
fn named_business(header: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(header).ok()?;
    let key = v.as_object()?.keys().next()?;
    (!key.is_empty() && key.len() <= 19 && key.bytes().all(|b| b.is_ascii_digit()))
        .then(|| key.parse().ok())
        .flatten()
}
