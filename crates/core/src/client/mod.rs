//! [`Client`]: the assembled stack in the recommended order, `Clone` and cheap to share;
//! [`ClientBuilder`] turns a [`StackConfig`] into it in one `ServiceBuilder`.

mod builder;
mod http;

pub use self::builder::ClientBuilder;
pub use self::http::HttpService;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use crate::auth::{Auth, Token};
use crate::config::StackConfig;
use crate::dedup::{Dedup, DedupStore};
use crate::error::Error;
use crate::graph::Graph;
use crate::onboarding::{Deregister, Register, SuccessResponse};
use crate::operation::{
    Operation, RequestCode, RequestCodeResponse, VerifyCode, VerifyCodeResponse,
};
use crate::rate_limit::{AnyStore, RateLimit, RateLimitStats};
use crate::response::Response;
use crate::retry::{Retry, RetryPolicy};
use crate::tenant::ResolveTenant;
use crate::timeout::{AttemptTimeout, Deadline};
use crate::trace::Trace;
use crate::transport::Transport;

/// The full stack over the HTTP service `H`, outermost first:
/// `Trace → Deadline → Dedup → Retry → RateLimit → AttemptTimeout → Graph → Auth → H`.
pub type Stack<H = Transport> = Trace<
    ResolveTenant<
        Deadline<Dedup<Retry<RetryPolicy, RateLimit<AttemptTimeout<Graph<Auth<H>>>, AnyStore>>>>,
    >,
>;

/// The verification client: every layer assembled in the recommended order.
///
/// `Clone` is cheap (shared state sits behind `Arc`s), so share one client across tasks
/// or axum handlers without a `Buffer`. It is also a tower [`Service`] for any
/// [`Operation`], for embedding in larger stacks.
///
/// ```no_run
/// use wa_verify_core::{Client, CodeMethod, RequestCode};
/// # async fn run() -> Result<(), wa_verify_core::Error> {
/// let client = Client::builder().token("EAAG...".parse()?).build()?;
/// let op = RequestCode::new("1234567890".parse()?, CodeMethod::Sms, "en_US".parse()?);
/// let answer = client.request_code(op).await?;
/// println!("sent; fbtrace_id {:?}", answer.fbtrace_id());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client<H = Transport> {
    stack: Stack<H>,
    store: AnyStore,
    dedup: DedupStore,
    stats: Arc<RateLimitStats>,
}

impl<H> fmt::Debug for Client<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with the default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client from a config and a token.
    ///
    /// # Errors
    ///
    /// `invalid_input` for settings that cannot work.
    pub fn from_config(config: StackConfig, token: Token) -> Result<Self, Error> {
        Self::builder().config(config).token(token).build()
    }
}

impl<H: HttpService> Client<H> {
    /// Sends any operation through the stack.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`].
    pub async fn call<O: Operation>(&self, op: O) -> Result<Response<O::Output>, Error> {
        self.stack.clone().oneshot(op).await
    }

    /// `request_code`: sends a code by SMS or voice.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`].
    pub async fn request_code(
        &self,
        op: RequestCode,
    ) -> Result<Response<RequestCodeResponse>, Error> {
        self.call(op).await
    }

    /// `verify_code`: checks the code the user received.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`]; a wrong code is `wrong_code`.
    pub async fn verify_code(&self, op: VerifyCode) -> Result<Response<VerifyCodeResponse>, Error> {
        self.call(op).await
    }

    /// `register`: activates a verified number with its two-step PIN. Never resent after
    /// it may have reached Meta; limited to 10 calls per number per 72 hours.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`].
    pub async fn register(&self, op: Register) -> Result<Response<SuccessResponse>, Error> {
        self.call(op).await
    }

    /// `GET /{id}`: what Meta knows about the number (verified, platform, display name's
    /// review, connection). A read: retried after ambiguous failures too.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`].
    pub async fn status(
        &self,
        op: crate::operation::PhoneNumberStatus,
    ) -> Result<Response<crate::operation::PhoneNumberInfo>, Error> {
        self.call(op).await
    }

    /// `deregister`: removes the number from the Cloud API. Same safety as `register`.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`].
    pub async fn deregister(&self, op: Deregister) -> Result<Response<SuccessResponse>, Error> {
        self.call(op).await
    }

    /// The stack as a boxed, cloneable, `Sync` service for one operation type.
    pub fn boxed_service<O: Operation>(
        &self,
    ) -> BoxCloneSyncService<O, Response<O::Output>, Error> {
        BoxCloneSyncService::new(self.stack.clone())
    }

    /// The stack itself.
    pub fn stack(&self) -> &Stack<H> {
        &self.stack
    }

    /// What the rate limiter did: calls that waited for their slot, calls refused locally.
    pub fn rate_limit_stats(&self) -> &RateLimitStats {
        &self.stats
    }

    /// The dedup state (single flight, live codes, idempotency keys).
    pub fn dedup_store(&self) -> &DedupStore {
        &self.dedup
    }

    /// The rate limiter's store (to inspect tracked numbers, cooldowns, or evict).
    pub fn rate_limit_store(&self) -> &AnyStore {
        &self.store
    }
}

impl<H, O> Service<O> for Client<H>
where
    O: Operation,
    Stack<H>: Service<O>,
{
    type Response = <Stack<H> as Service<O>>::Response;
    type Error = <Stack<H> as Service<O>>::Error;
    type Future = <Stack<H> as Service<O>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.stack.poll_ready(cx)
    }

    fn call(&mut self, op: O) -> Self::Future {
        self.stack.call(op)
    }
}
