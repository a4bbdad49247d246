//! Middleware that bounds time: per attempt ([`AttemptTimeout`]) and per call, backoff
//! sleeps included ([`Deadline`]).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use wa_verify_core::timeout::AttemptTimeoutLayer;
//! use wa_verify_core::{Error, ErrorKind, TimeoutKind};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(AttemptTimeoutLayer::new(Some(Duration::from_secs(2))))
//!     .service(service_fn(|_: ()| async {
//!         tokio::time::sleep(Duration::from_secs(60)).await;
//!         Ok::<_, Error>(())
//!     }));
//! let err = svc.oneshot(()).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Timeout);
//! assert_eq!(err.timeout_kind(), Some(TimeoutKind::Attempt));
//! # }
//! ```
//!
//! # Order
//!
//! `Deadline` goes outside the retry so it covers every attempt and sleep;
//! `AttemptTimeout` goes inside, around one attempt. An attempt timeout may fire after
//! the request was written, so it counts as ambiguous for the retry policy.
//!
//! # The deadline travels with the request
//!
//! `Deadline` writes the call's deadline on the request ([`CarriesDeadline`]), so the
//! layers below stop in time and say what really happened: the rate limiter never waits
//! past it (it refuses with `rate_limited` and nothing was sent), the retry policy sleeps
//! no backoff it cannot finish, and `AttemptTimeout` ends the attempt in flight at the
//! deadline, so the error passes up through the retry policy with the real attempt count
//! and whether anything may have reached the server. `Deadline`'s own timer is only a
//! backstop for stacks whose lower layers ignore the deadline; with an `AttemptTimeout`
//! below, [`DeadlineLayer::enforced_below`] drops it, so a call arms one timer, not two.

pub mod future;

use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::{Layer, Service};

use self::future::ResponseFuture;
use crate::error::{Error, TimeoutKind};
use crate::operation::Operation;

/// A request that carries the deadline of its call.
///
/// Implemented for every [`Operation`] (the deadline rides in its call context), for
/// `http::Request` (in its extensions) and for `()` (which carries none).
pub trait CarriesDeadline {
    /// The instant the whole call must end by, if one was set.
    fn deadline(&self) -> Option<Instant>;

    /// Sets the deadline; an earlier one already set is kept.
    fn set_deadline(&mut self, at: Instant);
}

impl<O: Operation> CarriesDeadline for O {
    fn deadline(&self) -> Option<Instant> {
        self.context().and_then(|c| c.deadline)
    }

    fn set_deadline(&mut self, at: Instant) {
        if let Some(c) = self.context_mut() {
            c.deadline = Some(c.deadline.map_or(at, |d| d.min(at)));
        }
    }
}

/// The call's deadline, as an `http::Request` extension.
#[derive(Clone, Copy, Debug)]
struct DeadlineExt(Instant);

impl<B> CarriesDeadline for http::Request<B> {
    fn deadline(&self) -> Option<Instant> {
        self.extensions().get::<DeadlineExt>().map(|d| d.0)
    }

    fn set_deadline(&mut self, at: Instant) {
        let at = self.deadline().map_or(at, |d| d.min(at));
        self.extensions_mut().insert(DeadlineExt(at));
    }
}

impl CarriesDeadline for () {
    fn deadline(&self) -> Option<Instant> {
        None
    }

    fn set_deadline(&mut self, _at: Instant) {}
}

// ===== AttemptTimeout =====

/// Applies [`AttemptTimeout`]. See the [module docs](self) for an example.
#[derive(Clone, Copy, Debug)]
pub struct AttemptTimeoutLayer {
    timeout: Option<Duration>,
}

impl AttemptTimeoutLayer {
    /// A layer with the given limit per attempt; `None` turns it off (the call's deadline,
    /// when the request carries one, still ends the attempt).
    pub fn new(timeout: Option<Duration>) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for AttemptTimeoutLayer {
    type Service = AttemptTimeout<S>;

    fn layer(&self, inner: S) -> AttemptTimeout<S> {
        AttemptTimeout::new(inner, self.timeout)
    }
}

/// Fails one attempt with a `timeout` error when it takes too long, or when the call's
/// deadline comes first. See the [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct AttemptTimeout<S> {
    inner: S,
    timeout: Option<Duration>,
}

impl<S> AttemptTimeout<S> {
    /// Wraps `inner` with the given limit per attempt; `None` turns it off.
    pub fn new(inner: S, timeout: Option<Duration>) -> Self {
        Self { inner, timeout }
    }

    /// A layer with the given limit.
    pub fn layer(timeout: Option<Duration>) -> AttemptTimeoutLayer {
        AttemptTimeoutLayer::new(timeout)
    }

    inner_service_accessors!();
}

impl<S, R> Service<R> for AttemptTimeout<S>
where
    S: Service<R>,
    S::Error: Into<Error>,
    R: CarriesDeadline,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: R) -> Self::Future {
        // One timer: the attempt's own limit or the call's deadline, whichever is first.
        let limit = match (self.timeout, req.deadline()) {
            (None, None) => None,
            (Some(t), None) => Some((Instant::now() + t, t, TimeoutKind::Attempt)),
            (attempt, Some(deadline)) => {
                let now = Instant::now();
                match attempt {
                    Some(t) if now + t < deadline => Some((now + t, t, TimeoutKind::Attempt)),
                    _ => Some((
                        deadline,
                        deadline.saturating_duration_since(now),
                        TimeoutKind::Deadline,
                    )),
                }
            }
        };
        ResponseFuture::new(self.inner.call(req), limit)
    }
}

// ===== Deadline =====

/// Applies [`Deadline`]. See the [module docs](self) for an example.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    timeout: Option<Duration>,
    own_timer: bool,
}

impl DeadlineLayer {
    /// A layer with the given limit per call; `None` turns it off.
    pub fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            own_timer: true,
        }
    }

    /// Says that the layers below end the call at the deadline the request carries (an
    /// [`AttemptTimeout`] is among them, as in the [`Client`](crate::Client)'s stack),
    /// so this layer only writes the deadline and arms no timer of its own: one timer
    /// per call instead of two.
    #[must_use]
    pub fn enforced_below(mut self) -> Self {
        self.own_timer = false;
        self
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            timeout: self.timeout,
            own_timer: self.own_timer,
        }
    }
}

/// Fails the whole call, retries and backoff included, past its deadline, and writes the
/// deadline on the request for the layers below. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    timeout: Option<Duration>,
    /// `false` when the layers below end the call at the deadline themselves.
    own_timer: bool,
}

impl<S> Deadline<S> {
    /// Wraps `inner` with the given limit per call; `None` turns it off.
    pub fn new(inner: S, timeout: Option<Duration>) -> Self {
        DeadlineLayer::new(timeout).layer(inner)
    }

    /// A layer with the given limit.
    pub fn layer(timeout: Option<Duration>) -> DeadlineLayer {
        DeadlineLayer::new(timeout)
    }

    inner_service_accessors!();
}

impl<S, R> Service<R> for Deadline<S>
where
    S: Service<R>,
    S::Error: Into<Error>,
    R: CarriesDeadline,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: R) -> Self::Future {
        let limit = self.timeout.map(|t| {
            let at = Instant::now() + t;
            req.set_deadline(at);
            (at, t, TimeoutKind::Deadline)
        });
        ResponseFuture::new(self.inner.call(req), limit.filter(|_| self.own_timer))
    }
}
