//! How the dedup layer answered a call: the marks a response or an error carries.

use std::time::SystemTime;

use crate::operation::CodeMethod;

/// A code that was already sent within its window: the answer to a repeated request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlreadySent {
    /// When Meta confirmed it.
    pub sent_at: SystemTime,
    /// When its window ends (its expiry).
    pub expires_at: SystemTime,
    /// How it was sent.
    pub method: CodeMethod,
}

/// How the dedup layer answered a call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deduplicated {
    /// The call was its own.
    #[default]
    No,
    /// It joined a concurrent call for the same number and got its outcome.
    Shared,
    /// A code was already sent in the window: nothing was sent.
    AlreadySent(Box<AlreadySent>),
    /// The first outcome of its idempotency key, replayed: nothing was sent.
    Replayed,
}
