//! [`GraphLayer`] and [`Graph`]: operations in, HTTP requests out, answers typed.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method};
use http_body_util::Full;
use tower::{Layer, Service};

use super::base_url::BaseUrl;
use super::encode::{encode, encode_query, Encoding};
use super::future::ResponseFuture;
use super::measure::AttemptMeter;
use super::{RequestBody, DEFAULT_BODY_LIMIT};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::operation::{ApiVersion, Operation};

#[derive(Clone, Debug)]
struct Settings {
    base_url: BaseUrl,
    api_version: ApiVersion,
    encoding: Encoding,
    user_agent: HeaderValue,
    body_limit: usize,
    meter: Arc<AttemptMeter>,
}

/// Applies the [`Graph`] boundary to an HTTP service. See the [module docs](super) for an example.
#[derive(Clone, Debug)]
pub struct GraphLayer {
    settings: Arc<Settings>,
}

impl GraphLayer {
    /// A boundary calling `base_url`, with version `v23.0`, JSON bodies, the `wa-verify`
    /// User-Agent and a 64 KiB answer cap.
    pub fn new(base_url: BaseUrl) -> Self {
        Self {
            settings: Arc::new(Settings {
                api_version: ApiVersion::default(),
                encoding: Encoding::default(),
                user_agent: HeaderValue::from_static(concat!(
                    "wa-verify/",
                    env!("CARGO_PKG_VERSION")
                )),
                body_limit: DEFAULT_BODY_LIMIT,
                meter: Arc::new(AttemptMeter::new(Metrics::default(), base_url.host())),
                base_url,
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }

    /// The Graph API version in the path.
    #[must_use]
    pub fn api_version(self, version: ApiVersion) -> Self {
        self.with(|s| s.api_version = version)
    }

    /// The body encoding.
    #[must_use]
    pub fn encoding(self, encoding: Encoding) -> Self {
        self.with(|s| s.encoding = encoding)
    }

    /// The `User-Agent` header (the spec's form is `name/MAJOR.MINOR.PATCH`).
    #[must_use]
    pub fn user_agent(self, user_agent: HeaderValue) -> Self {
        self.with(|s| s.user_agent = user_agent)
    }

    /// Records each attempt in `metrics` (OpenTelemetry's `http.client.request.duration`)
    /// and counts Meta's throttling answers.
    #[must_use]
    pub fn metrics(self, metrics: Metrics) -> Self {
        self.with(|s| s.meter = Arc::new(AttemptMeter::new(metrics, s.base_url.host())))
    }

    /// The largest answer body read; larger ones are a `protocol` error.
    #[must_use]
    pub fn body_limit(self, bytes: usize) -> Self {
        self.with(|s| s.body_limit = bytes)
    }
}

impl<S> Layer<S> for GraphLayer {
    type Service = Graph<S>;

    fn layer(&self, inner: S) -> Graph<S> {
        Graph {
            inner,
            settings: self.settings.clone(),
        }
    }
}

// ===== Graph =====

/// Turns operations into HTTP calls and answers into typed results.
/// See the [module docs](super) for an example.
#[derive(Clone, Debug)]
pub struct Graph<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> Graph<S> {
    /// Wraps `inner` with the default settings for `base_url`.
    pub fn new(inner: S, base_url: BaseUrl) -> Self {
        GraphLayer::new(base_url).layer(inner)
    }

    inner_service_accessors!();

    fn build<O: Operation>(&self, op: &O) -> Result<http::Request<RequestBody>, Error> {
        let s = &*self.settings;
        let method = op.method();
        // A read sends its fields in the query and no body.
        let (content_type, body, query) = if method == Method::GET {
            (None, Bytes::new(), Some(encode_query(op)))
        } else {
            let (content_type, body) = encode(s.encoding, op);
            (content_type, body, None)
        };
        let uri = s.base_url.join(
            s.api_version.as_str(),
            op.phone_number_id().as_str(),
            op.path_tail(),
            query.as_deref(),
        )?;
        // Typed header names and a prepared URI: nothing is parsed again per request.
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.reserve(4);
        if let Some(content_type) = content_type {
            h.insert(CONTENT_TYPE, content_type);
        }
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        h.insert(USER_AGENT, s.user_agent.clone());
        // A call run for a tenant tells the auth layer below whose token it needs.
        if let Some(tenant) = op.context().and_then(|c| c.tenant.clone()) {
            req.extensions_mut().insert(crate::auth::TokenRequest::new(
                op.phone_number_id(),
                Some(tenant),
            ));
        }
        Ok(req)
    }
}

impl<O, S, B> Service<O> for Graph<S>
where
    O: Operation,
    S: Service<http::Request<RequestBody>, Response = http::Response<B>>,
    S::Error: Into<Error>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = crate::Response<O::Output>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B, O::Output>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut op: O) -> Self::Future {
        let span = crate::trace::fields::attempt_span(op.attempt());
        match self.build(&op) {
            Ok(req) => {
                // From here the request may be written: a sending call's leader counts it.
                // Taken, not cloned: the operation ends here.
                let progress = op.context_mut().and_then(|c| c.progress.take());
                if let Some(p) = &progress {
                    p.handed();
                }
                let s = &*self.settings;
                let measure = AttemptMeter::start(&s.meter, req.method());
                let fut = span.in_scope(|| self.inner.call(req));
                ResponseFuture::new(fut, s.body_limit, span, progress, measure)
            }
            Err(e) => ResponseFuture::failed(e),
        }
    }
}
