//! The [`Dedup`](super::Dedup) response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tower::Service;

use super::begin::{BoxFuture, Follow, Key};
use super::mark::Deduplicated;
use super::outcome::Outcome;
use super::store::{Begin, BeginFuture, DedupStore, Lead};
use crate::error::Error;
use crate::operation::{Operation, Progress};
use crate::response::Response;

/// How often a follower whose leader was cancelled before sending tries to lead itself.
const MAX_REBEGINS: u8 = 2;

/// A call that has not led yet: what it needs to lead later (after a Redis round trip, or
/// when the leader it follows gives up before sending). Boxed, so the common future (a
/// call that leads at once) stays small.
pub(crate) struct Waiting<S, O> {
    inner: S,
    op: O,
    store: DedupStore,
    key: Key,
    progress: Arc<Progress>,
    deadline: Option<Instant>,
    rebegins: u8,
}

pin_project! {
    /// Shares one send between calls: leads (calls the inner service and records the
    /// outcome), follows another call's send, or answers at once.
    pub struct ResponseFuture<S, O>
    where
        S: Service<O>,
    {
        #[pin]
        state: State<S::Future, Box<Waiting<S, O>>, Result<S::Response, Error>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, W, R> {
        Calling { #[pin] fut: F, after: After },
        Beginning { fut: BoxFuture<Begin>, waiting: Option<W> },
        Following { fut: BoxFuture<Option<Outcome>>, waiting: Option<W> },
        // The answer, while its outcome is being written to the store.
        Finishing { fut: BoxFuture<()>, result: Option<R> },
        Done { result: Option<R> },
    }
}

/// What a call does once its inner future is done: one of these, so the future carries
/// the larger of the two rather than both.
pub(crate) enum After {
    Nothing,
    /// Record the outcome (a sending call that leads).
    Lead(Lead),
    /// End the number's live-code window if the code was right (a `verify_code`).
    Verified(DedupStore, Key),
}

type StateOf<S, O> = State<
    <S as Service<O>>::Future,
    Box<Waiting<S, O>>,
    Result<<S as Service<O>>::Response, Error>,
>;

impl<S, O, T> ResponseFuture<S, O>
where
    S: Service<O, Response = Response<T>, Error = Error>,
    O: Operation,
    T: DeserializeOwned,
{
    pub(crate) fn passthrough(fut: S::Future) -> Self {
        Self::calling(fut, After::Nothing)
    }

    /// A `verify_code`: a success ends the number's live-code window.
    pub(crate) fn checking(fut: S::Future, store: DedupStore, key: Key) -> Self {
        Self::calling(fut, After::Verified(store, key))
    }

    /// A sending call that leads at once: its inner future, and the lead that records
    /// the outcome.
    #[inline]
    pub(crate) fn leading(inner: &mut S, op: O, lead: Lead) -> Self {
        Self {
            state: State::Calling {
                fut: inner.call(op),
                after: After::Lead(lead),
            },
        }
    }

    #[inline]
    fn calling(fut: S::Future, after: After) -> Self {
        Self {
            state: State::Calling { fut, after },
        }
    }

    /// A sending call that does not lead at once: what the store said decides whether it
    /// leads later, follows or answers.
    pub(crate) fn begin(
        begin: BeginFuture,
        store: &DedupStore,
        key: Key,
        inner: S,
        op: O,
        progress: Arc<Progress>,
        deadline: Option<Instant>,
    ) -> Self {
        let waiting = Box::new(Waiting {
            inner,
            op,
            store: store.clone(),
            key,
            progress,
            deadline,
            rebegins: 0,
        });
        let state = match begin {
            BeginFuture::Ready(b) => next(b, waiting),
            #[cfg(feature = "redis")]
            BeginFuture::Pending(fut) => State::Beginning {
                fut,
                waiting: Some(waiting),
            },
        };
        Self { state }
    }
}

fn lead_with<F, W, R>(mut lead: Lead, progress: Arc<Progress>, fut: F) -> State<F, W, R> {
    lead.watch(progress);
    tracing::debug!("dedup: leading");
    State::Calling {
        fut,
        after: After::Lead(lead),
    }
}

/// The state a store's answer leads to; the inner service is called only when this call
/// leads.
fn next<S, O, T>(begin: Begin, waiting: Box<Waiting<S, O>>) -> StateOf<S, O>
where
    S: Service<O, Response = Response<T>, Error = Error>,
    T: DeserializeOwned,
{
    match begin {
        Begin::Lead(lead) => {
            let Waiting {
                mut inner,
                op,
                progress,
                ..
            } = *waiting;
            lead_with(lead, progress, inner.call(op))
        }
        Begin::Answer {
            outcome,
            how,
            retry_after,
        } => {
            tracing::debug!(dedup = how_name(&how), "dedup: answered without sending");
            State::Done {
                result: Some(outcome.answer(how, retry_after)),
            }
        }
        Begin::Follow(follow) => {
            tracing::debug!(dedup = "shared", "dedup: joining a send in progress");
            State::Following {
                fut: follow_until(follow, waiting.deadline),
                waiting: Some(waiting),
            }
        }
        Begin::Refuse(e) => State::Done {
            result: Some(Err(e)),
        },
    }
}

/// The leader's outcome, or `None` when this follower's own deadline comes first.
fn follow_until(follow: Follow, deadline: Option<Instant>) -> BoxFuture<Option<Outcome>> {
    let outcome = follow.outcome();
    Box::pin(async move {
        match deadline {
            Some(at) => tokio::select! {
                o = outcome => Some(o),
                () = tokio::time::sleep_until(at) => None,
            },
            None => Some(outcome.await),
        }
    })
}

fn how_name(how: &Deduplicated) -> &'static str {
    match how {
        Deduplicated::No => "maybe_sent",
        Deduplicated::Shared => "shared",
        Deduplicated::AlreadySent(_) => "already_sent",
        Deduplicated::Replayed => "replayed",
    }
}

impl<S, O> fmt::Debug for ResponseFuture<S, O>
where
    S: Service<O>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("dedup::ResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<S, O, T> Future for ResponseFuture<S, O>
where
    S: Service<O, Response = Response<T>, Error = Error>,
    O: Operation,
    T: DeserializeOwned,
{
    type Output = Result<Response<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Calling { fut, after } => {
                    // The answer (~120 bytes) stays where the inner future put it and is
                    // returned as is unless a write must finish first: every move of it
                    // is a copy on the path every call takes.
                    let poll = fut.poll(cx);
                    let Poll::Ready(result) = &poll else {
                        return poll;
                    };
                    let write = match after {
                        After::Nothing => None,
                        After::Lead(lead) => lead.finish(result),
                        After::Verified(store, key) => match result {
                            Ok(_) => store.verified(key),
                            Err(_) => None,
                        },
                    };
                    let Some(fut) = write else {
                        return poll;
                    };
                    State::Finishing {
                        fut,
                        result: match poll {
                            Poll::Ready(result) => Some(result),
                            Poll::Pending => return Poll::Pending,
                        },
                    }
                }
                StateProj::Beginning { fut, waiting } => {
                    let begin = ready!(fut.as_mut().poll(cx));
                    match waiting.take() {
                        Some(w) => next(begin, w),
                        None => return Poll::Ready(Err(polled_after_completion())),
                    }
                }
                StateProj::Following { fut, waiting } => match ready!(fut.as_mut().poll(cx)) {
                    // The leader gave up before sending: nothing to share; lead instead.
                    Some(Outcome::Dropped)
                        if waiting.as_ref().is_some_and(|w| w.rebegins < MAX_REBEGINS) =>
                    {
                        let Some(mut w) = waiting.take() else {
                            return Poll::Ready(Err(polled_after_completion()));
                        };
                        w.rebegins += 1;
                        match w.store.begin(w.key.clone(), w.op.dedup()) {
                            BeginFuture::Ready(b) => next(b, w),
                            #[cfg(feature = "redis")]
                            BeginFuture::Pending(fut) => State::Beginning {
                                fut,
                                waiting: Some(w),
                            },
                        }
                    }
                    Some(outcome) => {
                        return Poll::Ready(outcome.answer(Deduplicated::Shared, None));
                    }
                    None => return Poll::Ready(Err(Error::deadline_while_shared())),
                },
                StateProj::Finishing { fut, result } => {
                    ready!(fut.as_mut().poll(cx));
                    return Poll::Ready(
                        result
                            .take()
                            .unwrap_or_else(|| Err(polled_after_completion())),
                    );
                }
                StateProj::Done { result } => {
                    return Poll::Ready(
                        result
                            .take()
                            .unwrap_or_else(|| Err(polled_after_completion())),
                    );
                }
            };
            state.set(next);
        }
    }
}

fn polled_after_completion() -> Error {
    Error::invalid_input("dedup::ResponseFuture polled after completion")
}
