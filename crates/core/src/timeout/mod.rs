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

pub mod future;

use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

use self::future::ResponseFuture;
use crate::error::{Error, TimeoutKind};

macro_rules! timeout_middleware {
    ($(#[$ldoc:meta])* $layer:ident, $(#[$sdoc:meta])* $service:ident, $kind:expr) => {
        $(#[$ldoc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $layer {
            timeout: Option<Duration>,
        }

        impl $layer {
            /// A layer with the given limit; `None` turns it off.
            pub fn new(timeout: Option<Duration>) -> Self {
                Self { timeout }
            }
        }

        impl<S> Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> $service<S> {
                $service {
                    inner,
                    timeout: self.timeout,
                }
            }
        }

        $(#[$sdoc])*
        #[derive(Clone, Debug)]
        pub struct $service<S> {
            inner: S,
            timeout: Option<Duration>,
        }

        impl<S> $service<S> {
            /// Wraps `inner` with the given limit; `None` turns it off.
            pub fn new(inner: S, timeout: Option<Duration>) -> Self {
                Self { inner, timeout }
            }

            /// A layer with the given limit.
            pub fn layer(timeout: Option<Duration>) -> $layer {
                $layer::new(timeout)
            }

            inner_service_accessors!();
        }

        impl<S, R> Service<R> for $service<S>
        where
            S: Service<R>,
            S::Error: Into<Error>,
        {
            type Response = S::Response;
            type Error = Error;
            type Future = ResponseFuture<S::Future>;

            fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                self.inner.poll_ready(cx).map_err(Into::into)
            }

            fn call(&mut self, req: R) -> Self::Future {
                ResponseFuture::new(self.inner.call(req), self.timeout, $kind)
            }
        }
    };
}

timeout_middleware!(
    /// Applies [`AttemptTimeout`]. See the [module docs](self) for an example.
    AttemptTimeoutLayer,
    /// Fails one attempt with a `timeout` error when it takes too long.
    /// See the [module docs](self) for an example.
    AttemptTimeout,
    TimeoutKind::Attempt
);

timeout_middleware!(
    /// Applies [`Deadline`]. See the [module docs](self) for an example.
    DeadlineLayer,
    /// Fails the whole call, retries and backoff included, past its deadline.
    /// See the [module docs](self) for an example.
    Deadline,
    TimeoutKind::Deadline
);
