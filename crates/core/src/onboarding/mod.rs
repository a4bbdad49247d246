//! The rest of bringing a number onto the Cloud API: `register` with a two-step PIN,
//! `deregister`, and a typed flow that cannot be used out of order.
//!
//! Meta allows 10 register/deregister calls per number in a moving 72 hours, then blocks
//! the number for 72 hours (error 133016). So these operations are never retried after
//! the request may have reached Meta ([`RetryMode::OnlyIfNotSent`](crate::RetryMode::OnlyIfNotSent)), and they share a
//! per-number budget in the rate limiter ([`QuotaClass::Registration`](crate::rate_limit::QuotaClass::Registration)).
//!
//! # The flow
//!
//! ```
//! use wa_verify_core::onboarding::Onboarding;
//! use wa_verify_core::{Client, CodeMethod};
//! use wa_verify_sandbox::Sandbox;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::builder().start().await?;
//! let client = Client::builder()
//!     .base_url(sandbox.base_url().parse()?)
//!     .token(sandbox.token().parse()?)
//!     .build()?;
//! let requested = Onboarding::new(client, "1234567890".parse()?)
//!     .request_code(CodeMethod::Sms, "en_US".parse()?)
//!     .await?;
//! let code = sandbox.outbox().last_code("1234567890").unwrap();
//! let verified = requested.verify(code.parse()?).await.map_err(|e| e.into_error())?;
//! let registered = verified.register("246810".parse()?).await.map_err(|e| e.into_error())?;
//! registered.deregister().await.map_err(|e| e.into_error())?;
//! # Ok(())
//! # }
//! ```
//!
//! [`Onboarding::preflight`] reads the number's status first: a number already
//! `VERIFIED` goes straight to [`Verified`], one on the WhatsApp Business app or
//! On-Premises API stops before any code is requested (`precondition`, reason
//! `on_premise`), and [`Verified::register`] refuses a display name still in review
//! (`precondition`, reason `name_not_approved`) unless [`Verified::force`] says go on.
//!
//! Each step is its own type, so registering before verifying does not compile:
//!
//! ```compile_fail
//! # use wa_verify_core::onboarding::Onboarding;
//! # async fn f(client: wa_verify_core::Client) {
//! let flow = Onboarding::new(client, "1".parse().unwrap());
//! flow.register("123456".parse().unwrap()).await;
//! # }
//! ```

mod flow;
mod ops;
mod preflight;

pub use self::flow::{
    Checked, CodeRequested, Deregistered, Onboarding, Registered, StepError, Verified,
};
pub use self::ops::{Backup, Deregister, Pin, Region, Register, SuccessResponse, Tier, REGIONS};
pub use self::preflight::Preflight;
