//! WhatsApp Cloud API phone-number verification as a tower `Service`, wrapped in
//! composable reliability layers.
//!
//! A business proves it owns a WhatsApp Business number in two calls:
//! `POST /{version}/{phone_number_id}/request_code` sends a six-digit code by SMS or voice,
//! and `.../verify_code` checks it. `request_code` is not idempotent (each call may text
//! the number again) and Meta throttles and blocks numbers that are called carelessly, so
//! this crate is built around one promise: it never sends a second code by accident.
//!
//! # Overview
//!
//! ```text
//!  typed level   Trace → Deadline → Retry → RateLimit(per number, global) → AttemptTimeout
//!                                                                      ↓
//!  boundary      Graph: operation → http::Request, http::Response → typed output / Error
//!                                                                      ↓
//!  http level    Auth (Authorization: Bearer) → Transport (hyper-util + hyper-rustls)
//! ```
//!
//! [`Client`] assembles this stack from a [`StackConfig`](config::StackConfig); every box is
//! also a public tower `Layer` you can use alone (see `examples/custom_stack.rs`).
//!
//! # Quick start
//!
//! ```
//! use wa_verify_core::{Client, CodeMethod, RequestCode, VerifyCode};
//! use wa_verify_sandbox::Sandbox;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The sandbox is a local emulator of the API: no Meta account needed.
//! let sandbox = Sandbox::builder().start().await?;
//! let client = Client::builder()
//!     .base_url(sandbox.base_url().parse()?)
//!     .token(sandbox.token().parse()?)
//!     .build()?;
//! let id = "1234567890".parse()?;
//! client.request_code(RequestCode::new(id, CodeMethod::Sms, "en_US".parse()?)).await?;
//! let code = sandbox.outbox().last_code("1234567890").unwrap();
//! let verified = client.verify_code(VerifyCode::new(id, code.parse()?)).await?;
//! assert!(verified.success);
//! # Ok(())
//! # }
//! ```
//!
//! # Layers
//!
//! | layer | module | what it does |
//! |---|---|---|
//! | `TraceLayer` | [`trace`] | one span per call with status, Graph code, `fbtrace_id` |
//! | `DeadlineLayer` | [`timeout`] | bounds the whole call, backoff sleeps included |
//! | `RetryLayer<RetryPolicy>` | [`retry`] | retries only what cannot have sent a code (or what Meta says to) |
//! | `RateLimitLayer` | [`rate_limit`] | per-number and global GCRA quotas (governor), wait or fail fast |
//! | `AttemptTimeoutLayer` | [`timeout`] | bounds one attempt |
//! | `GraphLayer` | [`graph`] | the typed boundary: encodings, size cap, error parsing |
//! | `AuthLayer` | [`auth`] | `Authorization: Bearer`, static or from a provider |
//! | `Transport` | [`transport`] | pooled hyper-util client over rustls |
//!
//! # Onboarding
//!
//! [`onboarding`] adds `register` (six-digit PIN, optional backup, tier, region) and
//! `deregister`, never resent after they may have reached Meta and limited to Meta's
//! 10 calls per number per 72 hours, and a typed flow
//! `Onboarding → CodeRequested → Verified → Registered` that cannot run out of order.
//!
//! # Errors
//!
//! Every call fails with one [`Error`]: [`Error::kind`] says what the caller may do next,
//! [`Error::meaning`] classifies Meta's error code, [`Error::retry_after`] says how long to
//! wait, and [`Error::may_have_reached_server`] whether a code may already have been sent.
//!
//! # Feature flags
//!
//! None is on by default.
//!
//! - `redis`: the Redis rate-limit store ([`rate_limit::redis`]), shared by every replica.
//! - `metrics`: the stack's metrics on OpenTelemetry's API ([`metrics`]): pass a `Meter` to
//!   [`ClientBuilder::meter`].
//! - `native-roots`: trust the operating system's certificate store instead of webpki roots.
//! - `aws-lc-rs`: make rustls' aws-lc-rs the transport's crypto provider instead of ring (a
//!   large C build). Either way the provider is named explicitly, never read from or
//!   installed as rustls' process default; [`ClientBuilder::crypto_provider`] takes any.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]

/// `get_ref`, `get_mut` and `into_inner` for a wrapper whose inner service is `self.inner`
/// (tower-http's `define_inner_service_accessors!`).
macro_rules! inner_service_accessors {
    () => {
        /// A reference to the inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// A mutable reference to the inner service.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// The inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

/// `tenant`: picks the tenant whose token an operation's call uses. For the inherent
/// impl of an operation with a `context` field.
macro_rules! tenant_accessor {
    () => {
        /// Runs this call for `tenant` (its token, its WABA's limits): see
        /// [`tenant`](crate::tenant). Unknown tenants are refused when the call is made.
        #[must_use]
        pub fn tenant(mut self, tenant: impl AsRef<str>) -> Self {
            self.context.tenant = Some(std::sync::Arc::from(tenant.as_ref()));
            self
        }
    };
}

/// `context` and `context_mut` of an [`Operation`] whose [`CallContext`] is its `context`
/// field: what the layers write on it as it goes down the stack. The caller has
/// `CallContext` in scope.
macro_rules! call_context_accessors {
    () => {
        fn context(&self) -> Option<&CallContext> {
            Some(&self.context)
        }

        fn context_mut(&mut self) -> Option<&mut CallContext> {
            Some(&mut self.context)
        }
    };
}

pub mod auth;
mod client;
pub mod config;
pub mod dedup;
pub mod duration;
mod error;
pub mod graph;
mod meta;
pub mod metrics;
pub mod onboarding;
mod operation;
pub mod rate_limit;
mod response;
pub mod retry;
pub mod tenant;
pub mod timeout;
pub mod trace;
pub mod transport;

pub use self::client::{Client, ClientBuilder, HttpService, Stack};
pub use self::error::{Error, ErrorKind, GraphApiError, GraphCode, Meaning, Throttle, TimeoutKind};
pub use self::meta::ResponseMeta;
pub use self::operation::{
    AccountMode, ApiVersion, Attempt, CallContext, CodeMethod, CodeVerificationStatus, DedupRole,
    Field, Language, NameStatus, NumberStatus, Operation, PhoneNumberId, PhoneNumberInfo,
    PhoneNumberStatus, PlatformType, Progress, QualityRating, RequestCode, RequestCodeResponse,
    RetryMode, Succeeded, Throughput, VerificationCode, VerifyCode, VerifyCodeResponse,
};

pub use self::response::Response;
