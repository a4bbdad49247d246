//! The timeout layers' response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::error::{Error, TimeoutKind};

pin_project! {
    /// Resolves to the inner result, or to a `timeout` error when the limit passes first.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        after: Duration,
        kind: TimeoutKind,
    }
}

impl<F> ResponseFuture<F> {
    /// `limit`: when the timer fires, the limit it stands for, and which timeout it is.
    pub(crate) fn new(inner: F, limit: Option<(Instant, Duration, TimeoutKind)>) -> Self {
        let (sleep, after, kind) = match limit {
            Some((at, after, kind)) => (Some(tokio::time::sleep_until(at)), after, kind),
            None => (None, Duration::ZERO, TimeoutKind::Attempt),
        };
        Self {
            inner,
            sleep,
            after,
            kind,
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("timeout::ResponseFuture")
            .field("kind", &self.kind)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The inner future first: when an inner layer ends the call at the same instant,
        // its error (with the real attempt count) wins over this timer's.
        if let Poll::Ready(res) = this.inner.poll(cx) {
            return Poll::Ready(res.map_err(Into::into));
        }
        match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
            Some(Poll::Ready(())) => {
                tracing::debug!(kind = ?this.kind, after_ms = this.after.as_millis() as u64, "timed out");
                Poll::Ready(Err(Error::timeout(*this.kind, *this.after)))
            }
            _ => Poll::Pending,
        }
    }
}
