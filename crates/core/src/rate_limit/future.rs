//! The [`RateLimit`](super::RateLimit) response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::Service;

use super::store::{Acquire, Admission, QuotaClass, RateLimitStore};
use super::RateLimitStats;
use crate::error::Error;

/// Re-checks after a wait are bounded even if a store kept answering "wait 0".
const MAX_CHECKS: u32 = 64;

/// What the future needs to check again and to learn from the answer.
#[derive(Debug)]
pub(crate) struct Learn<St> {
    pub(crate) store: St,
    pub(crate) key: Option<u64>,
    pub(crate) class: QuotaClass,
    pub(crate) cooldowns: Option<std::sync::Arc<super::cooldowns::Cooldowns>>,
    pub(crate) waba: Option<u64>,
    pub(crate) metrics: crate::metrics::Metrics,
}

pin_project! {
    /// Waits for a slot (up to `max_wait`, never past the call's deadline), calls the
    /// inner service, and records in the store what Meta's answer taught (throttles, wrong
    /// codes) before it resolves.
    pub struct ResponseFuture<S, St, R>
    where
        S: Service<R>,
        St: RateLimitStore,
    {
        #[pin]
        state: State<S::Future, St::Future, St::LearnFuture, S::Response>,
        learn: Learn<St>,
        // Boxed: only calls that must wait need it, and it keeps the hot path's future small.
        pending: Option<Box<Pending<S, R>>>,
    }
}

struct Pending<S, R> {
    inner: S,
    req: Option<R>,
    until: Instant,
    checks: u32,
    stats: Arc<RateLimitStats>,
}

pin_project! {
    #[project = StateProj]
    enum State<F, A, L, T> {
        Calling { #[pin] fut: F },
        Acquiring { #[pin] fut: A },
        Waiting { #[pin] sleep: Sleep },
        Learning { #[pin] fut: L, error: Option<Error> },
        Refused { error: Option<Error>, _answer: Option<T> },
    }
}

impl<F, A, L, T> State<F, A, L, T> {
    fn refused(error: Error) -> Self {
        State::Refused {
            error: Some(error),
            _answer: None,
        }
    }
}

fn polled_after_completion() -> Error {
    Error::invalid_input("rate_limit::ResponseFuture polled after completion")
}

impl<S, St, R> ResponseFuture<S, St, R>
where
    S: Service<R>,
    St: RateLimitStore,
{
    pub(crate) fn calling(fut: S::Future, learn: Learn<St>) -> Self {
        Self {
            state: State::Calling { fut },
            learn,
            pending: None,
        }
    }

    /// `until`: the latest the call may still go (now + `max_wait`, or the deadline).
    pub(crate) fn pending(
        acquire: Acquire<St::Future>,
        inner: S,
        req: R,
        learn: Learn<St>,
        until: Instant,
        stats: Arc<RateLimitStats>,
    ) -> Self {
        let mut pending = Box::new(Pending {
            inner,
            req: Some(req),
            until,
            checks: 1,
            stats,
        });
        let state = match acquire {
            Acquire::Pending(fut) => State::Acquiring { fut },
            Acquire::Ready(admission) => pending.admit(admission, &learn.store),
        };
        Self {
            state,
            learn,
            pending: Some(pending),
        }
    }
}

impl<S, R> Pending<S, R>
where
    S: Service<R>,
{
    fn admit<St: RateLimitStore, A, L>(
        &mut self,
        admission: Admission,
        store: &St,
    ) -> State<S::Future, A, L, S::Response> {
        match admission {
            Admission::Go => match self.req.take() {
                Some(req) => State::Calling {
                    fut: self.inner.call(req),
                },
                None => State::refused(polled_after_completion()),
            },
            Admission::Wait { wait, scope } => {
                let now = Instant::now();
                if now + wait > self.until || self.checks >= MAX_CHECKS {
                    self.stats.refused(scope);
                    tracing::debug!(
                        scope = scope.as_str(),
                        retry_after_ms = wait.as_millis() as u64,
                        "rate limited; refusing"
                    );
                    State::refused(Error::rate_limited_locally(
                        store.refusal_message(scope),
                        wait,
                    ))
                } else {
                    if self.checks == 1 {
                        self.stats.waited(scope);
                    }
                    tracing::debug!(
                        scope = scope.as_str(),
                        wait_ms = wait.as_millis() as u64,
                        "rate limited; waiting"
                    );
                    State::Waiting {
                        sleep: tokio::time::sleep(wait),
                    }
                }
            }
        }
    }
}

impl<S, St, R> fmt::Debug for ResponseFuture<S, St, R>
where
    S: Service<R>,
    St: RateLimitStore,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("rate_limit::ResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<S, St, R> Future for ResponseFuture<S, St, R>
where
    S: Service<R>,
    S::Error: Into<Error>,
    St: RateLimitStore,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Calling { fut } => {
                    let error = match ready!(fut.poll(cx)) {
                        Ok(answer) => return Poll::Ready(Ok(answer)),
                        Err(e) => e.into(),
                    };
                    let l = &this.learn;
                    let lesson = l
                        .cooldowns
                        .as_deref()
                        .and_then(|cooldowns| super::lesson(&error, cooldowns, l.waba));
                    let Some(lesson) = lesson else {
                        return Poll::Ready(Err(error));
                    };
                    tracing::debug!(?lesson, class = l.class.as_str(), "learned from the answer");
                    match lesson {
                        super::Lesson::Throttled { app_wide, .. } => l
                            .metrics
                            .cooldown_started(if app_wide { "app" } else { "number" }),
                        super::Lesson::WabaThrottled { .. } => l.metrics.cooldown_started("waba"),
                        _ => {}
                    }
                    State::Learning {
                        fut: l.store.learn(l.key, l.class, lesson),
                        error: Some(error),
                    }
                }
                StateProj::Learning { fut, error } => {
                    ready!(fut.poll(cx));
                    return Poll::Ready(Err(error.take().unwrap_or_else(polled_after_completion)));
                }
                StateProj::Refused { error, .. } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(polled_after_completion)));
                }
                StateProj::Acquiring { fut } => {
                    let admission = ready!(fut.poll(cx));
                    match this.pending.as_mut() {
                        Some(p) => p.admit(admission, &this.learn.store),
                        None => State::refused(polled_after_completion()),
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    match this.pending.as_mut() {
                        Some(p) => {
                            p.checks += 1;
                            let l = &this.learn;
                            match l.store.acquire_in(l.key, l.waba, l.class) {
                                Acquire::Ready(admission) => p.admit(admission, &this.learn.store),
                                Acquire::Pending(fut) => State::Acquiring { fut },
                            }
                        }
                        None => State::refused(polled_after_completion()),
                    }
                }
            };
            this.state.set(next);
        }
    }
}
