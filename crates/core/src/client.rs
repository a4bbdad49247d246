//! [`Client`]: the assembled stack in the recommended order, `Clone` and cheap to share.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderValue;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use crate::auth::{Auth, AuthLayer, Token, TokenProvider};
use crate::config::StackConfig;
use crate::error::Error;
use crate::graph::{BaseUrl, Encoding, Graph, GraphLayer, RequestBody};
use crate::onboarding::{Deregister, Register, SuccessResponse};
use crate::operation::{
    ApiVersion, Operation, RequestCode, RequestCodeResponse, VerifyCode, VerifyCodeResponse,
};
use crate::rate_limit::{AnyStore, RateLimit, RateLimitStats};
use crate::response::Response;
use crate::retry::{Retry, RetryLayer, RetryPolicy};
use crate::timeout::{AttemptTimeout, Deadline};
use crate::trace::{Trace, TraceLayer};
use crate::transport::Transport;

/// The full stack over the HTTP service `H`, outermost first:
/// `Trace → Deadline → Retry → RateLimit → AttemptTimeout → Graph → Auth → H`.
pub type Stack<H = Transport> =
    Trace<Deadline<Retry<RetryPolicy, RateLimit<AttemptTimeout<Graph<Auth<H>>>, AnyStore>>>>;

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

impl<H> Client<H>
where
    H: Service<http::Request<RequestBody>> + Clone + Send + Sync + 'static,
{
    /// Sends any operation through the stack.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`].
    pub async fn call<O>(&self, op: O) -> Result<Response<O::Output>, Error>
    where
        O: Operation,
        Stack<H>: Service<O, Response = Response<O::Output>, Error = Error>,
    {
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
    ) -> Result<Response<RequestCodeResponse>, Error>
    where
        Stack<H>: Service<RequestCode, Response = Response<RequestCodeResponse>, Error = Error>,
    {
        self.call(op).await
    }

    /// `verify_code`: checks the code the user received.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`]; a wrong code is `wrong_code`.
    pub async fn verify_code(&self, op: VerifyCode) -> Result<Response<VerifyCodeResponse>, Error>
    where
        Stack<H>: Service<VerifyCode, Response = Response<VerifyCodeResponse>, Error = Error>,
    {
        self.call(op).await
    }

    /// `register`: activates a verified number with its two-step PIN. Never resent after
    /// it may have reached Meta; limited to 10 calls per number per 72 hours.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`].
    pub async fn register(&self, op: Register) -> Result<Response<SuccessResponse>, Error>
    where
        Stack<H>: Service<Register, Response = Response<SuccessResponse>, Error = Error>,
    {
        self.call(op).await
    }

    /// `deregister`: removes the number from the Cloud API. Same safety as `register`.
    ///
    /// # Errors
    ///
    /// Every failure, typed: see [`Error::kind`].
    pub async fn deregister(&self, op: Deregister) -> Result<Response<SuccessResponse>, Error>
    where
        Stack<H>: Service<Deregister, Response = Response<SuccessResponse>, Error = Error>,
    {
        self.call(op).await
    }

    /// The stack as a boxed, cloneable, `Sync` service for one operation type.
    pub fn boxed_service<O>(&self) -> BoxCloneSyncService<O, Response<O::Output>, Error>
    where
        O: Operation,
        Stack<H>: Service<O, Response = Response<O::Output>, Error = Error>
            + Clone
            + Send
            + Sync
            + 'static,
        <Stack<H> as Service<O>>::Future: Send + 'static,
    {
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

/// Builds a [`Client`]; every setting defaults to [`StackConfig::default`].
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    config: StackConfig,
    auth: Option<AuthLayer>,
    policy: Option<RetryPolicy>,
    provider: Option<Arc<rustls::crypto::CryptoProvider>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Replaces every setting with `config`.
    pub fn config(mut self, config: StackConfig) -> Self {
        self.config = config;
        self
    }

    /// The settings so far, to change in place.
    pub fn config_mut(&mut self) -> &mut StackConfig {
        &mut self.config
    }

    /// A fixed access token.
    pub fn token(mut self, token: Token) -> Self {
        self.auth = Some(AuthLayer::new(token));
        self
    }

    /// A provider asked for the token on every request (rotating tokens).
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.auth = Some(AuthLayer::from_provider(provider));
        self
    }

    /// Where the Graph API lives.
    pub fn base_url(mut self, url: BaseUrl) -> Self {
        self.config.base_url = url;
        self
    }

    /// The API version.
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.config.api_version = version;
        self
    }

    /// The body encoding.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.config.encoding = encoding;
        self
    }

    /// The rustls crypto provider of the default transport, instead of
    /// [`transport::default_provider`](crate::transport::default_provider) (ring, or
    /// aws-lc-rs with the `aws-lc-rs` feature). The process-level default is never used.
    pub fn crypto_provider(mut self, provider: Arc<rustls::crypto::CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// A hand-made retry policy, instead of the one `config.retry` describes.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Builds the client over the default hyper-rustls transport.
    ///
    /// # Errors
    ///
    /// `invalid_input` with no token or with settings that cannot work.
    pub fn build(self) -> Result<Client, Error> {
        let provider = match &self.provider {
            Some(p) => p.clone(),
            None => crate::transport::default_provider(),
        };
        let transport = Transport::with_provider(&self.config.transport, provider)?;
        self.build_with_http(transport)
    }

    /// Builds the client over any HTTP service (an in-memory one for tests and benches,
    /// or the caller's own HTTP stack).
    ///
    /// # Errors
    ///
    /// `invalid_input` with no token or with settings that cannot work.
    pub fn build_with_http<H>(self, http: H) -> Result<Client<H>, Error> {
        let c = &self.config;
        c.timeouts.validate()?;
        let auth = self.auth.ok_or_else(|| {
            Error::invalid_input(
                "no access token: pass one with ClientBuilder::token or token_provider",
            )
        })?;
        let mut graph = GraphLayer::new(c.base_url.clone())
            .api_version(c.api_version)
            .encoding(c.encoding)
            .body_limit(c.body_limit);
        if let Some(ua) = &c.user_agent {
            let ua = HeaderValue::from_str(ua).map_err(|_| {
                Error::invalid_input(format!(
                    "user_agent must be a valid header value like name/1.2.3, got {ua:?}"
                ))
            })?;
            graph = graph.user_agent(ua);
        }
        let policy = match self.policy {
            Some(p) => p,
            None => c.retry.policy(c.timeouts.deadline)?.throttle_wait(
                c.rate_limit
                    .enabled
                    .then_some(c.rate_limit.default_cooldown),
            ),
        };
        let rate_limit = c.rate_limit.layer()?;
        let store = rate_limit.store().clone();
        let stats = rate_limit.stats().clone();
        // Innermost first: each layer wraps everything built so far.
        let svc = auth.layer(http);
        let svc = graph.layer(svc);
        let svc = c.timeouts.attempt_layer().layer(svc);
        let svc = rate_limit.layer(svc);
        let svc = RetryLayer::new(policy).layer(svc);
        let svc = c.timeouts.deadline_layer().layer(svc);
        let stack = TraceLayer::new()
            .api_version(c.api_version)
            .enabled(c.trace.enabled)
            .layer(svc);
        Ok(Client {
            stack,
            store,
            stats,
        })
    }
}
