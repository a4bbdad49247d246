//! Retries that never send a second code by accident: tower's `Retry` with [`RetryPolicy`].
//!
//! # Example
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use wa_verify_core::retry::{RetryLayer, RetryPolicy};
//! use wa_verify_core::{Error, RequestCode, RequestCodeResponse, Response};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Error> {
//! let calls = Arc::new(AtomicU32::new(0));
//! let counter = calls.clone();
//! let svc = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(service_fn(move |_op: RequestCode| {
//!         let n = counter.fetch_add(1, Ordering::SeqCst);
//!         async move {
//!             // A refused connection twice: certainly not sent, so safe to resend.
//!             if n < 2 {
//!                 Err(Error::transport(std::io::Error::other("refused"), false))
//!             } else {
//!                 Ok(Response::<RequestCodeResponse>::from_parts(
//!                     http::StatusCode::OK,
//!                     serde_json::from_str(r#"{"success":true}"#).unwrap(),
//!                     Default::default(),
//!                 ))
//!             }
//!         }
//!     }));
//! # let op = RequestCode::new("1".parse()?, Default::default(), Default::default());
//! let answer = svc.oneshot(op).await?;
//! assert_eq!(answer.attempts(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! # What is retried
//!
//! See [`classify()`]: 429, `is_transient: true`, 503 and failures before the write are
//! retried; ambiguous failures only with [`RetryPolicy::retry_ambiguous`]; never 4xx.

mod backoff;
pub mod classify;
mod config;
mod policy;

pub use self::backoff::BackoffConfig;
pub use self::classify::{classify, RetryClass};
pub use self::config::RetryConfig;
pub use self::policy::RetryPolicy;
pub use tower::retry::budget::TpsBudget;
pub use tower::retry::{Retry, RetryLayer};
