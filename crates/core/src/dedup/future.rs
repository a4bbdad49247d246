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

pin_project! {
    /// Shares one send between calls: leads (calls the inner service and records the
    /// outcome), follows another call's send, or answers at once.
    pub struct ResponseFuture<S, O>
    where
        S: Service<O>,
    {
        #[pin]
        state: State<S::Future>,
        // Until the call leads: the inner service and the operation. Kept while it
        // follows, so it can lead itself if its leader gives up before sending.
        pending: Option<Box<(S, O)>>,
        begin: Option<(DedupStore, Key)>,
        rebegins: u8,
        progress: Option<Arc<Progress>>,
        deadline: Option<Instant>,
        // The answer, while its outcome is being written to the store.
        result: Option<Result<S::Response, Error>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] fut: F, lead: Option<Lead>, verified: Option<(DedupStore, u64)> },
        Beginning { fut: BoxFuture<Begin> },
        Following { fut: BoxFuture<Option<Outcome>> },
        Finishing { fut: BoxFuture<()> },
        Done,
    }
}

impl<S, O, T> ResponseFuture<S, O>
where
    S: Service<O, Response = Response<T>, Error = Error>,
    O: Operation,
    T: DeserializeOwned,
{
    pub(crate) fn passthrough(fut: S::Future) -> Self {
        Self::calling(fut, None, None)
    }

    /// A `verify_code`: a success ends the number's live-code window.
    pub(crate) fn checking(fut: S::Future, store: DedupStore, number: u64) -> Self {
        Self::calling(fut, None, Some((store, number)))
    }

    fn calling(fut: S::Future, lead: Option<Lead>, verified: Option<(DedupStore, u64)>) -> Self {
        Self {
            state: State::Calling {
                fut,
                lead,
                verified,
            },
            pending: None,
            begin: None,
            rebegins: 0,
            progress: None,
            deadline: None,
            result: None,
        }
    }

    /// A sending call: what the store says decides whether it leads, follows or answers.
    pub(crate) fn begin(
        store: &DedupStore,
        key: Key,
        mut inner: S,
        op: O,
        progress: Arc<Progress>,
        deadline: Option<Instant>,
    ) -> Self {
        let begin = store.begin(key.clone(), op.dedup());
        let mut this = Self {
            state: State::Done,
            pending: None,
            begin: None,
            rebegins: 0,
            progress: Some(progress),
            deadline,
            result: None,
        };
        this.state = match begin {
            // The common case, a call that leads at once, needs no box.
            BeginFuture::Ready(Begin::Lead(lead)) => {
                lead_with(lead, &this.progress, inner.call(op))
            }
            BeginFuture::Ready(b) => {
                this.pending = Some(Box::new((inner, op)));
                this.begin = Some((store.clone(), key));
                next(
                    b,
                    &mut this.pending,
                    &this.progress,
                    deadline,
                    &mut this.result,
                )
            }
            #[cfg(feature = "redis")]
            BeginFuture::Pending(fut) => {
                this.pending = Some(Box::new((inner, op)));
                this.begin = Some((store.clone(), key));
                State::Beginning { fut }
            }
        };
        this
    }
}

fn lead_with<F>(mut lead: Lead, progress: &Option<Arc<Progress>>, fut: F) -> State<F> {
    if let Some(p) = progress {
        lead.watch(p.clone());
    }
    tracing::debug!("dedup: leading");
    State::Calling {
        fut,
        lead: Some(lead),
        verified: None,
    }
}

/// The state a store's answer leads to; the inner service is called only when this call
/// leads.
fn next<S, O, T>(
    begin: Begin,
    pending: &mut Option<Box<(S, O)>>,
    progress: &Option<Arc<Progress>>,
    deadline: Option<Instant>,
    result: &mut Option<Result<Response<T>, Error>>,
) -> State<S::Future>
where
    S: Service<O, Response = Response<T>, Error = Error>,
    T: DeserializeOwned,
{
    match begin {
        Begin::Lead(lead) => match pending.take() {
            Some(p) => {
                let (mut inner, op) = *p;
                lead_with(lead, progress, inner.call(op))
            }
            None => {
                *result = Some(Err(polled_after_completion()));
                State::Done
            }
        },
        Begin::Answer {
            outcome,
            how,
            retry_after,
        } => {
            tracing::debug!(dedup = how_name(&how), "dedup: answered without sending");
            *result = Some(outcome.answer(how, retry_after));
            State::Done
        }
        Begin::Follow(follow) => {
            tracing::debug!(dedup = "shared", "dedup: joining a send in progress");
            State::Following {
                fut: follow_until(follow, deadline),
            }
        }
        Begin::Refuse(e) => {
            *result = Some(Err(e));
            State::Done
        }
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
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Calling {
                    fut,
                    lead,
                    verified,
                } => {
                    let result = ready!(fut.poll(cx));
                    let write = match (lead.take(), verified.take()) {
                        (Some(lead), _) => lead.finish(Outcome::of(&result)),
                        (None, Some((store, number))) if result.is_ok() => store.verified(number),
                        _ => None,
                    };
                    match write {
                        None => return Poll::Ready(result),
                        Some(fut) => {
                            *this.result = Some(result);
                            State::Finishing { fut }
                        }
                    }
                }
                StateProj::Beginning { fut } => {
                    let begin = ready!(fut.as_mut().poll(cx));
                    next(
                        begin,
                        this.pending,
                        this.progress,
                        *this.deadline,
                        this.result,
                    )
                }
                StateProj::Following { fut } => match ready!(fut.as_mut().poll(cx)) {
                    // The leader gave up before sending: nothing to share; lead instead.
                    Some(Outcome::Dropped) if *this.rebegins < MAX_REBEGINS => {
                        *this.rebegins += 1;
                        match (this.begin.as_ref(), this.pending.as_ref()) {
                            (Some((store, key)), Some(p)) => {
                                match store.begin(key.clone(), p.1.dedup()) {
                                    BeginFuture::Ready(b) => next(
                                        b,
                                        this.pending,
                                        this.progress,
                                        *this.deadline,
                                        this.result,
                                    ),
                                    #[cfg(feature = "redis")]
                                    BeginFuture::Pending(fut) => State::Beginning { fut },
                                }
                            }
                            _ => return Poll::Ready(Err(polled_after_completion())),
                        }
                    }
                    Some(outcome) => {
                        return Poll::Ready(outcome.answer(Deduplicated::Shared, None));
                    }
                    None => return Poll::Ready(Err(Error::deadline_while_shared())),
                },
                StateProj::Finishing { fut } => {
                    ready!(fut.as_mut().poll(cx));
                    return Poll::Ready(
                        this.result
                            .take()
                            .unwrap_or_else(|| Err(polled_after_completion())),
                    );
                }
                StateProj::Done => {
                    return Poll::Ready(
                        this.result
                            .take()
                            .unwrap_or_else(|| Err(polled_after_completion())),
                    );
                }
            };
            this.state.set(next);
        }
    }
}

fn polled_after_completion() -> Error {
    Error::invalid_input("dedup::ResponseFuture polled after completion")
}
