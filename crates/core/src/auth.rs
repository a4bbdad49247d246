//! Middleware that adds `Authorization: Bearer <token>` to every HTTP request.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use wa_verify_core::auth::{AuthLayer, Token};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wa_verify_core::Error> {
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new("fake-token".parse::<Token>()?))
//!     .service(service_fn(|req: http::Request<Full<Bytes>>| async move {
//!         assert_eq!(req.headers()["authorization"], "Bearer fake-token");
//!         assert!(req.headers()["authorization"].is_sensitive());
//!         Ok::<_, wa_verify_core::Error>(http::Response::new(()))
//!     }));
//! svc.oneshot(http::Request::new(Full::new(Bytes::new()))).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Rotating tokens
//!
//! A [`TokenProvider`] is asked for the token on every request, so a token that rotates
//! (a system user's token refreshed by a vault) is picked up without rebuilding the stack.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::AUTHORIZATION;
use http::HeaderValue;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::Error;

/// A boxed token future, as returned by a [`TokenProvider`].
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<Token, Error>> + Send>>;

// ===== Token =====

/// An access token. `Debug` and `Display` print `Token(***)`.
///
/// ```
/// use wa_verify_core::auth::Token;
/// let t: Token = "EAAG-fake".parse()?;
/// assert_eq!(format!("{t:?} {t}"), "Token(***) Token(***)");
/// # Ok::<(), wa_verify_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    header: HeaderValue,
}

impl Token {
    /// The token itself, for the rare caller that must hand it on (the sandbox prints its
    /// generated token once). Keep it out of logs.
    pub fn expose_secret(&self) -> &str {
        // Built from visible ASCII, so the header is valid UTF-8 after "Bearer ".
        self.header
            .to_str()
            .unwrap_or_default()
            .strip_prefix("Bearer ")
            .unwrap_or_default()
    }

    /// The `Authorization` header value, marked sensitive.
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }
}

impl FromStr for Token {
    type Err = Error;

    /// Accepts visible ASCII without spaces (RFC 6750 tokens and Meta's tokens). Surrounding
    /// whitespace, as left by a file's final newline, is trimmed.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid_input("access token is empty"));
        }
        let bad = s.chars().filter(|c| !c.is_ascii_graphic()).count();
        if bad > 0 {
            // Never echo the value: it is a secret even when malformed. Count only the
            // characters that are wrong (see: issue 17).
            return Err(Error::invalid_input(format!(
                "access token must be visible ASCII without spaces; {bad} of its characters are not"
            )));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {s}"))
            .map_err(|_| Error::invalid_input("access token is not a valid header value"))?;
        header.set_sensitive(true);
        Ok(Self { header })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Supplies the token for each request, for tokens that rotate.
pub trait TokenProvider: Send + Sync + 'static {
    /// The current token.
    fn token(&self) -> TokenFuture;
}

#[derive(Clone)]
enum Source {
    Static(Token),
    Provider(Arc<dyn TokenProvider>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Static(t) => t.fmt(f),
            Source::Provider(_) => f.write_str("TokenProvider"),
        }
    }
}

// ===== AuthLayer =====

/// Adds the bearer token. See the [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    source: Source,
}

impl AuthLayer {
    /// A layer sending a fixed token.
    pub fn new(token: Token) -> Self {
        Self {
            source: Source::Static(token),
        }
    }

    /// A layer asking `provider` for the token on every request.
    pub fn from_provider(provider: impl TokenProvider) -> Self {
        Self {
            source: Source::Provider(Arc::new(provider)),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            source: self.source.clone(),
        }
    }
}

// ===== Auth =====

/// Adds the bearer token to each request. See the [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    source: Source,
}

impl<S> Auth<S> {
    /// Wraps `inner`, sending `token`.
    pub fn new(inner: S, token: Token) -> Self {
        AuthLayer::new(token).layer(inner)
    }

    /// A layer sending `token`.
    pub fn layer(token: Token) -> AuthLayer {
        AuthLayer::new(token)
    }

    inner_service_accessors!();
}

impl<S, B> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>> + Clone,
    S::Error: Into<Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match &self.source {
            Source::Static(token) => {
                req.headers_mut()
                    .insert(AUTHORIZATION, token.header.clone());
                ResponseFuture {
                    state: State::Calling {
                        fut: self.inner.call(req),
                    },
                }
            }
            Source::Provider(p) => {
                // The token arrives later; call the instance that was polled ready.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    state: State::Fetching {
                        token: p.token(),
                        inner: Some((ready, req)),
                    },
                }
            }
        }
    }
}

pin_project! {
    /// The [`Auth`] response future.
    pub struct ResponseFuture<S, B>
    where
        S: Service<http::Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<http::Request<B>>,
    {
        Fetching { token: TokenFuture, inner: Option<(S, http::Request<B>)> },
        Calling { #[pin] fut: S::Future },
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<http::Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("auth::ResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<http::Request<B>>,
    S::Error: Into<Error>,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Fetching { token, inner } => {
                    let token = ready!(token.as_mut().poll(cx))?;
                    let Some((mut svc, mut req)) = inner.take() else {
                        return Poll::Ready(Err(Error::invalid_input(
                            "auth::ResponseFuture polled after completion",
                        )));
                    };
                    req.headers_mut().insert(AUTHORIZATION, token.header);
                    let fut = svc.call(req);
                    this.state.set(State::Calling { fut });
                }
                StateProj::Calling { fut } => return fut.poll(cx).map_err(Into::into),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_never_printed_and_refusals_do_not_echo_it() {
        let t: Token = "EAAsecret123\n".parse().unwrap();
        assert_eq!(t.expose_secret(), "EAAsecret123");
        assert!(t.header_value().is_sensitive());
        assert!(!format!("{t:?}{t}").contains("secret"));
        let e = "EAA secret".parse::<Token>().unwrap_err();
        assert!(!format!("{e}{e:?}").contains("secret"));
        assert!(e.to_string().contains("visible ASCII"));
        assert!(""
            .parse::<Token>()
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
