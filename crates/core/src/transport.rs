//! The HTTP transport: hyper-util's pooled client over hyper-rustls.
//!
//! HTTP/1.1 and HTTP/2 are negotiated by ALPN; connections are pooled with TCP_NODELAY and
//! a connect timeout. A connection that fails before the request is written is reported
//! as such, because only then is a resend certainly safe.
//!
//! # Crypto provider
//!
//! The transport names its rustls crypto provider itself: ring by default, aws-lc-rs with
//! the `aws-lc-rs` feature, or any provider passed to [`Transport::with_provider`]. It
//! never reads or installs rustls' process-level default, which belongs to the
//! application: in an app that also links reqwest's default features, rustls has both
//! providers and no default, and asking for one would panic (see: issue 16).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{self, Client};
use hyper_util::rt::TokioExecutor;
use pin_project_lite::pin_project;
use rustls::crypto::CryptoProvider;
use serde::{Deserialize, Serialize};
use tower::Service;

use crate::error::Error;
use crate::graph::RequestBody;

/// Transport settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TransportConfig {
    /// How long to wait for a TCP (and TLS) connection.
    #[serde(with = "crate::duration")]
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    #[serde(with = "crate::duration")]
    pub pool_idle_timeout: Duration,
    /// The most idle connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// Speak only HTTP/2 (prior knowledge on plain http, ALPN on https).
    pub http2_only: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 64,
            http2_only: false,
        }
    }
}

/// The default HTTP service: a pooled hyper-util client with rustls.
#[derive(Clone)]
pub struct Transport {
    // Behind an `Arc`: the client is ~340 bytes, and every layer's future that owns a
    // clone of the stack would otherwise move all of it on each call.
    client: Arc<Client<HttpsConnector<HttpConnector>, RequestBody>>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

/// The crypto provider the transport uses unless given one: aws-lc-rs with the
/// `aws-lc-rs` feature, else ring. Never rustls' process default.
pub fn default_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "aws-lc-rs"))]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

impl Transport {
    /// A transport with the given settings and the [`default_provider`], trusting webpki
    /// roots (and, with the `native-roots` feature, the operating system's store instead).
    ///
    /// # Errors
    ///
    /// As [`with_provider`](Self::with_provider).
    pub fn new(config: &TransportConfig) -> Result<Self, Error> {
        Self::with_provider(config, default_provider())
    }

    /// A transport with the given settings and rustls crypto provider.
    ///
    /// # Errors
    ///
    /// `transport` when the provider supports none of rustls' safe protocol versions, or
    /// when the `native-roots` feature is on and the system's certificate store cannot be
    /// read. Never panics.
    pub fn with_provider(
        config: &TransportConfig,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, Error> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.enforce_http(false);
        #[cfg(feature = "native-roots")]
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| Error::transport(e, false))?;
        #[cfg(not(feature = "native-roots"))]
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| Error::transport(e, false))?;
        let builder = builder.https_or_http();
        let connector = if config.http2_only {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.enable_all_versions().wrap_connector(http)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .http2_only(config.http2_only)
            .build(connector);
        Ok(Self {
            client: Arc::new(client),
        })
    }
}

impl Service<http::Request<RequestBody>> for Transport {
    type Response = http::Response<Incoming>;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // The legacy client queues on its pool; it is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<RequestBody>) -> ResponseFuture {
        ResponseFuture {
            inner: self.client.request(req),
        }
    }
}

pin_project! {
    /// The [`Transport`] response future.
    pub struct ResponseFuture {
        #[pin]
        inner: legacy::ResponseFuture,
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("transport::ResponseFuture")
            .finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<Incoming>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = ready!(self.project().inner.poll(cx));
        Poll::Ready(res.map_err(|e| {
            // hyper-util: `is_connect` means the request was never handed to a connection.
            let sent = !e.is_connect();
            Error::transport(e, sent)
        }))
    }
}
