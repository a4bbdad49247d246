//! The [`RateLimit`](super::RateLimit) response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

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
    pub(crate) default_cooldown: Option<Duration>,
}

pin_project! {
    /// Waits for a slot (up to `max_wait`), calls the inner service, and tells the store
    /// what Meta's answer taught (throttles, wrong codes).
    pub struct ResponseFuture<S, St, R>
    where
        S: Service<R>,
        St: RateLimitStore,
    {
        #[pin]
        state: State<S::Future, St::Future>,
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
    enum State<F, A> {
        Calling { #[pin] fut: F },
        Acquiring { #[pin] fut: A },
        Waiting { #[pin] sleep: Sleep },
        Refused { error: Option<Error> },
    }
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

    pub(crate) fn pending(
        acquire: Acquire<St::Future>,
        inner: S,
        req: R,
        learn: Learn<St>,
        max_wait: Duration,
        stats: Arc<RateLimitStats>,
    ) -> Self {
        let mut pending = Box::new(Pending {
            inner,
            req: Some(req),
            until: Instant::now() + max_wait,
            checks: 1,
            stats,
        });
        let state = match acquire {
            Acquire::Pending(fut) => State::Acquiring { fut },
            Acquire::Ready(admission) => pending.admit(admission),
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
    fn admit<A>(&mut self, admission: Admission) -> State<S::Future, A> {
        match admission {
            Admission::Go => match self.req.take() {
                Some(req) => State::Calling {
                    fut: self.inner.call(req),
                },
                None => State::Refused {
                    error: Some(Error::invalid_input(
                        "rate_limit::ResponseFuture polled after completion",
                    )),
                },
            },
            Admission::Wait { wait, scope } => {
                let now = Instant::now();
                if now + wait > self.until || self.checks >= MAX_CHECKS {
                    self.stats.refused();
                    tracing::debug!(
                        scope = scope.as_str(),
                        retry_after_ms = wait.as_millis() as u64,
                        "rate limited; refusing"
                    );
                    State::Refused {
                        error: Some(Error::rate_limited_locally(scope.message(), wait)),
                    }
                } else {
                    if self.checks == 1 {
                        self.stats.waited();
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
                    let result = ready!(fut.poll(cx)).map_err(Into::into);
                    let l = &this.learn;
                    if let (Err(e), Some(default_cooldown)) = (&result, l.default_cooldown) {
                        if let Some(lesson) = super::lesson(e, default_cooldown) {
                            tracing::debug!(
                                ?lesson,
                                class = l.class.as_str(),
                                "learned from the answer"
                            );
                            l.store.learn(l.key, l.class, lesson);
                        }
                    }
                    return Poll::Ready(result);
                }
                StateProj::Refused { error } => {
                    let e = error.take().unwrap_or_else(|| {
                        Error::invalid_input("rate_limit::ResponseFuture polled after completion")
                    });
                    return Poll::Ready(Err(e));
                }
                StateProj::Acquiring { fut } => {
                    let admission = ready!(fut.poll(cx));
                    match this.pending.as_mut() {
                        Some(p) => p.admit(admission),
                        None => State::Refused { error: None },
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    match this.pending.as_mut() {
                        Some(p) => {
                            p.checks += 1;
                            match this.learn.store.acquire(this.learn.key, this.learn.class) {
                                Acquire::Ready(admission) => p.admit(admission),
                                Acquire::Pending(fut) => State::Acquiring { fut },
                            }
                        }
                        None => State::Refused { error: None },
                    }
                }
            };
            this.state.set(next);
        }
    }
}
