//! [`AuthLayer`] and [`Auth`]: the `Authorization` header on every request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::AUTHORIZATION;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::token::{Token, TokenFuture, TokenProvider, TokenRequest};
use crate::error::Error;

/// Where the token comes from: fixed, or asked of a provider on every request.
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

/// Adds the bearer token. See the [module docs](super) for an example.
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

/// Adds the bearer token to each request. See the [module docs](super) for an example.
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
                let token = match req.extensions().get::<TokenRequest>() {
                    Some(r) => p.token_for(r),
                    None => p.token(),
                };
                ResponseFuture {
                    state: State::Fetching {
                        token,
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
