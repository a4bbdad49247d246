//! The successful answer of a call: the typed output plus the answer's metadata.

use std::ops::Deref;

use http::StatusCode;

use crate::dedup::mark::{AlreadySent, Deduplicated};
use crate::meta::ResponseMeta;

/// A successful answer: the typed output with its status and metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<T> {
    status: StatusCode,
    output: T,
    meta: ResponseMeta,
    dedup: Deduplicated,
}

impl<T> Response<T> {
    /// A response from its parts, for services that answer without HTTP (tests, caches).
    pub fn from_parts(status: StatusCode, output: T, meta: ResponseMeta) -> Self {
        Self::new(status, output, meta)
    }

    pub(crate) fn new(status: StatusCode, output: T, meta: ResponseMeta) -> Self {
        Self {
            status,
            output,
            meta,
            dedup: Deduplicated::No,
        }
    }

    /// The typed output.
    pub fn output(&self) -> &T {
        &self.output
    }

    /// The typed output, by value.
    pub fn into_output(self) -> T {
        self.output
    }

    /// The HTTP status (2xx).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The answer's metadata.
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// The `x-fb-trace-id` header.
    pub fn fbtrace_id(&self) -> Option<&str> {
        self.meta.fbtrace_id()
    }

    /// How many attempts the call made, retries included.
    pub fn attempts(&self) -> u32 {
        self.meta.attempts()
    }

    pub(crate) fn set_attempts(&mut self, attempts: u32) {
        self.meta.set_attempts(attempts);
    }

    /// How the dedup layer answered (see [`dedup`](crate::dedup)).
    pub fn deduplicated(&self) -> &Deduplicated {
        &self.dedup
    }

    /// Whether this is the outcome of a concurrent call for the same number, shared.
    pub fn is_shared(&self) -> bool {
        self.dedup == Deduplicated::Shared
    }

    /// Whether this is the first outcome of the call's idempotency key, replayed.
    pub fn is_replayed(&self) -> bool {
        self.dedup == Deduplicated::Replayed
    }

    /// The code already sent in its window, when nothing was sent for this call.
    pub fn already_sent(&self) -> Option<&AlreadySent> {
        match &self.dedup {
            Deduplicated::AlreadySent(a) => Some(a),
            _ => None,
        }
    }

    pub(crate) fn set_deduplicated(&mut self, how: Deduplicated) {
        self.dedup = how;
    }
}

impl<T> Deref for Response<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.output
    }
}
