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
//! wait happens in the response future: up to `max_wait`, then the call fails with
//! `rate_limited` and the time until the slot, and the inner service is never called.
//!
//! # Order
//!
//! Put it inside the retry: every attempt reaches Meta, so every attempt spends the
//! number's quota.

pub mod future;
mod quota;
mod service;
mod store;

pub use self::quota::{Quota, Rate};
pub use self::service::{RateLimit, RateLimitLayer};
pub use self::store::{
    Acquire, Admission, KeyHasher, MemoryStore, RateLimitStore, Scope, TokioClock,
};

use crate::operation::Operation;

/// What the rate limiter keys a request by.
pub trait RateLimitKey {
    /// The per-number key, or `None` for calls only the global quota covers.
    fn rate_limit_key(&self) -> Option<u64>;
}

impl<O: Operation> RateLimitKey for O {
    fn rate_limit_key(&self) -> Option<u64> {
        Some(self.phone_number_id().key())
    }
}
