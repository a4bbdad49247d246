//! [`ClientBuilder`]: settings in, the stack out, assembled in one `ServiceBuilder` in the
//! order of the crate docs' diagram, outermost first (kube's `ClientBuilder` is the model).

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;
use tower::ServiceBuilder;

use super::{Client, HttpService};
use crate::auth::{AuthLayer, Token, TokenProvider};
use crate::config::StackConfig;
use crate::dedup::{DedupLayer, DedupStore};
use crate::error::Error;
use crate::graph::{BaseUrl, Encoding, GraphLayer};
use crate::metrics::Metrics;
use crate::operation::ApiVersion;
use crate::retry::{RetryLayer, RetryPolicy};
use crate::tenant::{TenantLayer, TenantTokens, Tenants};
use crate::trace::TraceLayer;
use crate::transport::Transport;

/// Builds a [`Client`]; every setting defaults to [`StackConfig::default`].
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    config: StackConfig,
    auth: Option<AuthLayer>,
    policy: Option<RetryPolicy>,
    provider: Option<Arc<rustls::crypto::CryptoProvider>>,
    metrics: Metrics,
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

    /// Records the stack's metrics in `meter` (see [`metrics`](crate::metrics)).
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn meter(self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.metrics(Metrics::new(meter))
    }

    /// Records the stack's metrics in `metrics` (shared with other clients, or made with
    /// [`Metrics::new`]).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
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
    pub fn build_with_http<H: HttpService>(self, http: H) -> Result<Client<H>, Error> {
        let c = &self.config;
        c.timeouts.validate()?;
        // With tenants, each call gets its tenant's token; else the one token given.
        let tenants = if c.tenants.is_empty() {
            None
        } else {
            Some(Arc::new(Tenants::from_config(&c.tenants)?))
        };
        let auth = match (&tenants, self.auth) {
            (Some(t), _) => AuthLayer::from_provider(TenantTokens::new(t.clone())),
            (None, Some(a)) => a,
            (None, None) => {
                return Err(Error::invalid_input(
                    "no access token: pass one with ClientBuilder::token or token_provider, or configure [[tenants]]",
                ))
            }
        };
        let policy = match self.policy {
            Some(p) => p,
            None => c
                .retry
                .policy(c.timeouts.deadline)?
                .throttle_wait(c.rate_limit.learned_cooldown()),
        };
        let m = &self.metrics;
        let mut rate_limit = c.rate_limit.layer()?;
        if m.enabled() {
            rate_limit = rate_limit.metrics(m.clone());
        }
        let (store, stats) = (rate_limit.store().clone(), rate_limit.stats().clone());
        let dedup = DedupStore::beside(&store, c.dedup.clone());
        // The whole order, in one place, outermost first: the crate docs' diagram.
        let stack = ServiceBuilder::new()
            .layer(c.trace.layer(c.api_version).metrics(m.clone()))
            .layer(TenantLayer::new(tenants))
            .layer(c.timeouts.deadline_layer())
            .layer(DedupLayer::new(dedup.clone()))
            .layer(RetryLayer::new(policy))
            .layer(rate_limit)
            .layer(c.timeouts.attempt_layer())
            .layer(graph_layer(c)?.metrics(m.clone()))
            .layer(auth)
            .service(http);
        Ok(Client {
            stack,
            store,
            dedup,
            stats,
        })
    }
}

/// The boundary's settings: where, which version, which encoding, which `User-Agent`.
fn graph_layer(c: &StackConfig) -> Result<GraphLayer, Error> {
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
    Ok(graph)
}

/// `TraceLayer` as `[trace]` describes it.
impl crate::config::TraceConfig {
    /// The tracing layer these settings describe, naming `api_version` on its spans.
    pub fn layer(&self, api_version: ApiVersion) -> TraceLayer {
        TraceLayer::new()
            .api_version(api_version)
            .enabled(self.enabled)
    }
}
