//! The boundary between the typed and the HTTP level: an [`Operation`] becomes an
//! `http::Request`, and the `http::Response` becomes a typed [`Response`](crate::Response) or an [`Error`].
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use wa_verify_core::graph::{BaseUrl, GraphLayer};
//! use wa_verify_core::{CodeMethod, Error, RequestCode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! // Any HTTP service can sit under the boundary: here, one that answers in memory.
//! let http = service_fn(|req: http::Request<Full<Bytes>>| async move {
//!     assert_eq!(req.uri().path(), "/v23.0/1234567890/request_code");
//!     Ok::<_, Error>(http::Response::new(Full::new(Bytes::from_static(b"{\"success\":true}"))))
//! });
//! let graph = ServiceBuilder::new()
//!     .layer(GraphLayer::new("http://127.0.0.1:1".parse::<BaseUrl>()?))
//!     .service(http);
//! let op = RequestCode::new("1234567890".parse()?, CodeMethod::Sms, "en_US".parse()?);
//! let answer = graph.oneshot(op).await?;
//! assert!(answer.success);
//! # Ok(())
//! # }
//! ```

mod decode;
mod encode;
pub mod future;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Uri};
use http_body_util::Full;
use tower::{Layer, Service};

pub(crate) use self::encode::encode;
pub use self::encode::Encoding;
use self::future::ResponseFuture;
use crate::error::Error;
use crate::operation::{ApiVersion, Operation};

/// The request body type of the HTTP level: the body serialized once, cheap to resend.
pub type RequestBody = Full<Bytes>;

/// The default cap on an answer's body: larger answers are a `protocol` error.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

// ===== BaseUrl =====

/// Where the Graph API lives: `https://graph.facebook.com` by default.
///
/// `http://` is accepted only for loopback hosts (the sandbox, a test server), so a token
/// never crosses a network in clear text.
#[derive(Clone)]
pub struct BaseUrl {
    text: Arc<str>,
    // Parsed once, so each request only appends its path.
    scheme: Scheme,
    authority: Authority,
    path: Arc<str>,
}

impl PartialEq for BaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for BaseUrl {}

impl BaseUrl {
    /// The URL without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `{base}/{version}/{id}/{name}` as a `Uri`, without parsing the base again.
    fn join(&self, version: &str, id: &str, name: &str) -> Result<Uri, Error> {
        let mut path =
            String::with_capacity(self.path.len() + version.len() + id.len() + name.len() + 3);
        path.push_str(&self.path);
        for part in [version, id, name] {
            path.push('/');
            path.push_str(part);
        }
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query =
            Some(PathAndQuery::try_from(path).map_err(|e| {
                Error::invalid_input(format!("could not build the request path: {e}"))
            })?);
        Uri::from_parts(parts)
            .map_err(|e| Error::invalid_input(format!("could not build the request URI: {e}")))
    }
}

impl Default for BaseUrl {
    fn default() -> Self {
        "https://graph.facebook.com"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid constant URL"))
    }
}

impl FromStr for BaseUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let uri: http::Uri = s.parse().map_err(|_| {
            Error::invalid_input(format!(
                "base URL must be an absolute URL like https://graph.facebook.com, got {s:?}"
            ))
        })?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(Error::invalid_input(format!(
                "base URL must be an absolute URL like https://graph.facebook.com, got {s:?}"
            )));
        };
        if authority.as_str().contains('@') || uri.query().is_some() {
            return Err(Error::invalid_input(
                "base URL must not carry credentials or a query string",
            ));
        }
        match scheme {
            "https" => {}
            "http" if is_loopback(authority.host()) => {}
            "http" => {
                return Err(Error::invalid_input(format!(
                    "http:// is allowed only to loopback hosts (127.0.0.1, ::1, localhost); \
                     use https:// for {}",
                    authority.host()
                )))
            }
            other => {
                return Err(Error::invalid_input(format!(
                    "base URL scheme must be https (or http to a loopback host), got {other}"
                )))
            }
        }
        let path = uri.path().trim_end_matches('/');
        Ok(Self {
            text: format!("{scheme}://{authority}{path}").into(),
            scheme: uri.scheme().cloned().unwrap_or(Scheme::HTTPS),
            authority: authority.clone(),
            path: path.into(),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.text)
    }
}

// ===== GraphLayer =====

#[derive(Clone, Debug)]
struct Settings {
    base_url: BaseUrl,
    api_version: ApiVersion,
    encoding: Encoding,
    user_agent: HeaderValue,
    body_limit: usize,
}

/// Applies the [`Graph`] boundary to an HTTP service. See the [module docs](self) for an example.
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
                base_url,
                api_version: ApiVersion::default(),
                encoding: Encoding::default(),
                user_agent: HeaderValue::from_static(concat!(
                    "wa-verify/",
                    env!("CARGO_PKG_VERSION")
                )),
                body_limit: DEFAULT_BODY_LIMIT,
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
/// See the [module docs](self) for an example.
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
        let (content_type, body) = encode(s.encoding, op);
        let uri = s.base_url.join(
            s.api_version.as_str(),
            op.phone_number_id().as_str(),
            op.name(),
        )?;
        // Typed header names and a prepared URI: nothing is parsed again per request.
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.reserve(4);
        if let Some(content_type) = content_type {
            h.insert(CONTENT_TYPE, content_type);
        }
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        h.insert(USER_AGENT, s.user_agent.clone());
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

    fn call(&mut self, op: O) -> Self::Future {
        let attempt = op.attempt();
        // A child of the call's span, one per attempt, with the wait that preceded it.
        let span = tracing::info_span!(
            "attempt",
            attempt = attempt.number,
            backoff_wait_ms = attempt.waited.as_millis() as u64,
            "http.response.status_code" = tracing::field::Empty,
        );
        match self.build(&op) {
            Ok(req) => {
                let fut = span.in_scope(|| self.inner.call(req));
                ResponseFuture::new(fut, self.settings.body_limit, span)
            }
            Err(e) => ResponseFuture::failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_allows_https_and_loopback_http_only() {
        for ok in [
            "https://graph.facebook.com",
            "https://graph.facebook.com/",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.3.4.5",
        ] {
            assert!(ok.parse::<BaseUrl>().is_ok(), "{ok}");
        }
        assert_eq!(
            "https://graph.facebook.com/"
                .parse::<BaseUrl>()
                .unwrap()
                .as_str(),
            "https://graph.facebook.com"
        );
        let e = "http://graph.facebook.com".parse::<BaseUrl>().unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        for bad in [
            "ftp://x",
            "graph.facebook.com",
            "",
            "http://10.0.0.1",
            "https://u:p@host",
        ] {
            assert!(bad.parse::<BaseUrl>().is_err(), "{bad}");
        }
        assert!(!"https://u:secret@host"
            .parse::<BaseUrl>()
            .unwrap_err()
            .to_string()
            .contains("secret"));
    }
}
