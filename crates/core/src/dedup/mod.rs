//! Middleware that makes "never a second code by accident" hold for the whole
//! deployment: concurrent and repeated requests for one number share one send.
//!
//! # Example
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use wa_verify_core::dedup::DedupLayer;
//! use wa_verify_core::{Error, RequestCode, RequestCodeResponse, Response};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let sent = Arc::new(AtomicU32::new(0));
//! let counter = sent.clone();
//! let svc = ServiceBuilder::new()
//!     .layer(DedupLayer::in_memory(Default::default()))
//!     .service(service_fn(move |_op: RequestCode| {
//!         counter.fetch_add(1, Ordering::SeqCst);
//!         async {
//!             Ok::<_, Error>(Response::<RequestCodeResponse>::from_parts(
//!                 http::StatusCode::OK,
//!                 serde_json::from_str(r#"{"success":true}"#).unwrap(),
//!                 Default::default(),
//!             ))
//!         }
//!     }));
//! # let op = RequestCode::new("1234567890".parse()?, Default::default(), Default::default());
//! svc.clone().oneshot(op.clone()).await?;
//! // A second request in the code's window answers at once: no second code.
//! let again = svc.oneshot(op).await?;
//! assert!(again.already_sent().is_some());
//! assert_eq!(sent.load(Ordering::SeqCst), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # What it does
//!
//! For `request_code`, keyed by the number (and, with tenants, the tenant):
//!
//! - **Single flight.** Concurrent calls make one upstream call; every caller gets its
//!   outcome, marked as shared. If the leader is cancelled after its request may have been
//!   written, no follower sends again: they get the "may have reached Meta" error.
//! - **Live-code window.** After Meta confirmed a send, another request with the same
//!   method within `window` (10 minutes, Meta's documented expiry) answers at once with
//!   [`AlreadySent`], sending nothing. The other method (SMS → VOICE) is a new send. After
//!   a call that *may* have sent a code, a request in the window sends nothing and fails
//!   with `may_have_reached_server` and the rest of the window as `retry_after`.
//!   [`RequestCode::resend`](crate::RequestCode::resend) always sends (under the normal
//!   limits). A successful `verify_code` ends the window; a wrong code does not.
//! - **Idempotency keys.** A repeated call with the same key and number within
//!   `idempotency_ttl` (24 hours) returns the first outcome, replayed: a success or an
//!   answer Meta gave. Outcomes that never reached Meta are not stored. The same key with
//!   another number or method is refused as `invalid_input`.
//! - **Journal.** With the Redis store, an entry is written before the call is sent and its
//!   outcome after: a replica that crashed mid-call leaves a code that may have been sent,
//!   and the next replica does not send blindly.
//!
//! `register` and `deregister` get single flight. Other operations pass through.
//!
//! # Order
//!
//! Outside the retry and inside the deadline: one logical call, whatever the retries below
//! it do; a follower waits no longer than its own deadline.

mod begin;
mod config;
mod future;
mod layer;
pub(crate) mod mark;
mod memory;
mod outcome;
#[cfg(feature = "redis")]
mod redis;
mod store;

pub use self::config::{check_idempotency_key, DedupConfig, MAX_KEY_LEN};
pub use self::future::ResponseFuture;
pub use self::layer::{Dedup, DedupLayer};
pub use self::mark::{AlreadySent, Deduplicated};
pub use self::store::DedupStore;
pub use crate::operation::DedupRole;
