//! What a sending call learns from the dedup state before it sends: lead, follow, answer
//! at once, or be refused. Both stores speak it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::mark::Deduplicated;
use super::outcome::Outcome;
use crate::error::Error;
use crate::operation::{CodeMethod, Operation};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the dedup state is keyed by: the number (and, with tenants, the tenant).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) number: u64,
    /// The operation, so `register` never joins a `request_code`.
    pub(crate) operation: &'static str,
}

impl Key {
    pub(crate) fn of<O: Operation>(op: &O) -> Self {
        Self {
            number: op.phone_number_id().key(),
            operation: op.name(),
        }
    }
}

/// What a `request_code` asks of the store beyond single flight.
#[derive(Clone, Debug)]
pub(crate) struct SendCode {
    pub(crate) method: CodeMethod,
    pub(crate) resend: bool,
    pub(crate) idempotency_key: Option<String>,
}

/// What a sending call learns before it sends; `L` is the store's lead.
pub(crate) enum Begin<L> {
    /// Send: this call leads; its outcome goes to the store (and any followers).
    Lead(L),
    /// Do not send: answer with this outcome, marked so.
    Answer {
        outcome: Outcome,
        how: Deduplicated,
        retry_after: Option<Duration>,
    },
    /// Another call is sending: wait for its outcome.
    Follow(Follow),
    /// Refused before anything was sent (a reused idempotency key).
    Refuse(Error),
}

impl<L> Begin<L> {
    /// The same answer with the lead wrapped.
    pub(crate) fn map_lead<M>(self, f: impl FnOnce(L) -> M) -> Begin<M> {
        match self {
            Begin::Lead(l) => Begin::Lead(f(l)),
            Begin::Answer {
                outcome,
                how,
                retry_after,
            } => Begin::Answer {
                outcome,
                how,
                retry_after,
            },
            Begin::Follow(f) => Begin::Follow(f),
            Begin::Refuse(e) => Begin::Refuse(e),
        }
    }
}

/// Waiting for another call's outcome.
pub(crate) enum Follow {
    /// A leader in this process: its outcome comes on a channel.
    Channel(tokio::sync::watch::Receiver<Option<Outcome>>),
    /// A leader anywhere: its outcome is looked for until it comes.
    #[cfg(feature = "redis")]
    Polling(BoxFuture<Outcome>),
}

impl Follow {
    /// The leader's outcome; a leader that went away without one may have sent.
    pub(crate) fn outcome(self) -> BoxFuture<Outcome> {
        match self {
            Follow::Channel(mut rx) => Box::pin(async move {
                match rx.wait_for(Option::is_some).await {
                    Ok(o) => o.clone().unwrap_or(Outcome::abandoned(true)),
                    Err(_) => Outcome::abandoned(true),
                }
            }),
            #[cfg(feature = "redis")]
            Follow::Polling(f) => f,
        }
    }
}
