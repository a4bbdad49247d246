//! The [`Trace`](super::Trace) response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tracing::Span;

use super::fields::RecordOutcome;
use crate::metrics::Metrics;
use std::time::Instant;

pin_project! {
    /// Polls the call inside its span and records the outcome when it completes.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        measure: Option<Measure>,
    }
}

/// What the call's metrics need when it ends (only with metrics on).
pub(crate) struct Measure {
    pub(crate) metrics: Metrics,
    pub(crate) start: Instant,
    pub(crate) operation: &'static str,
    pub(crate) code_method: Option<&'static str>,
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: Span, measure: Option<Measure>) -> Self {
        Self {
            inner,
            span,
            measure,
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("trace::ResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    T: RecordOutcome,
    E: RecordOutcome,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let result = ready!(this.inner.poll(cx));
        if !this.span.is_disabled() {
            match &result {
                Ok(r) => r.record(this.span),
                Err(e) => e.record(this.span),
            }
        }
        if let Some(m) = this.measure.take() {
            let mut summary = match &result {
                Ok(r) => r.summary(),
                Err(e) => e.summary(),
            };
            // Only a request_code sends a code.
            summary.code_sent &= m.code_method.is_some();
            m.metrics.call(m.start, m.operation, m.code_method, summary);
        }
        Poll::Ready(result)
    }
}
