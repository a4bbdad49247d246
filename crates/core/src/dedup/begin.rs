//! What a sending call learns from the dedup state before it sends: lead, follow, answer
//! at once, or be refused. Both stores speak it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::mark::Deduplicated;
use super::outcome::Outcome;
use crate::error::Error;
use crate::operation::{CodeMethod, Operation};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the dedup state is keyed by: the tenant and the number, so a caller never joins
/// or replays another tenant's call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// The tenant the call runs for (`None` without tenants).
    pub(crate) tenant: Option<Arc<str>>,
    pub(crate) number: u64,
    /// The operation, so `register` never joins a `request_code`.
    pub(crate) operation: &'static str,
}

impl Key {
    pub(crate) fn of<O: Operation>(op: &O) -> Self {
        Self {
            tenant: op.context().and_then(|c| c.tenant.clone()),
            number: op.phone_number_id().key(),
            operation: op.name(),
        }
    }

    /// The tenant and the number as a map key: a stable hash of the tenant's id (0 for
    /// none) beside the number.
    pub(crate) fn slot(&self) -> (u64, u64) {
        let tenant = self.tenant.as_deref().map_or(0, |t| {
            // FNV-1a: stable and cheap for short ids.
            t.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
        });
        (tenant, self.number)
    }

    /// The tenant's id as keys write it (empty for none).
    #[cfg(feature = "redis")]
    pub(crate) fn tenant_str(&self) -> &str {
        self.tenant.as_deref().unwrap_or("")
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

#[cfg(feature = "redis")]
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
