//! Typed operations: the [`Operation`] trait every call implements, the context the layers
//! write on it, and the verification calls with the validated values they carry.

mod status;
mod values;
mod verification;

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;

pub use self::status::{
    AccountMode, CodeVerificationStatus, NameStatus, NumberStatus, PhoneNumberInfo,
    PhoneNumberStatus, PlatformType, QualityRating, Throughput,
};
pub(crate) use self::values::{shown, NumberHasher, SixDigits};
pub use self::values::{ApiVersion, CodeMethod, Language, PhoneNumberId, VerificationCode};
pub use self::verification::{RequestCode, RequestCodeResponse, VerifyCode, VerifyCodeResponse};

/// How a body field is written: plain text in every encoding.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The parameter name (`code_method`, `language`, `code`).
    pub name: &'static str,
    /// The value, already validated.
    pub value: &'a str,
    /// Whether `value` is a JSON object: written as is in a JSON body, as text (the
    /// object's JSON) in form and multipart bodies, as Graph reads them.
    pub json: bool,
}

impl<'a> Field<'a> {
    /// A text parameter.
    pub fn text(name: &'static str, value: &'a str) -> Self {
        Self {
            name,
            value,
            json: false,
        }
    }

    /// A JSON object parameter (already serialized).
    pub fn json(name: &'static str, value: &'a str) -> Self {
        Self {
            name,
            value,
            json: true,
        }
    }
}

/// When an operation may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryMode {
    /// Retry when the server cannot have acted or says a retry is right
    /// (`request_code`, `verify_code`).
    Standard,
    /// Retry only when the request was certainly never sent (connection refused, DNS, TLS).
    OnlyIfNotSent,
    /// Sending again cannot do harm (a read): ambiguous failures (timeouts, 500/502/504)
    /// are retried too.
    Idempotent,
}

/// Which attempt of a call an operation is sent as, and the backoff wait before it. The
/// retry policy sets it on the copy it sends again; the boundary records it on the
/// attempt's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The wait that preceded this attempt.
    pub waited: std::time::Duration,
}

impl Default for Attempt {
    fn default() -> Self {
        Self {
            number: 1,
            waited: std::time::Duration::ZERO,
        }
    }
}

/// A typed Graph API call: where it goes, what it sends and what it answers.
pub trait Operation: Clone + Send + Sync + 'static {
    /// The parsed 200 answer.
    type Output: DeserializeOwned + Succeeded + Send + 'static;

    /// The operation's name, used for spans and the path's last segment (`request_code`).
    fn name(&self) -> &'static str;

    /// The number the call is about.
    fn phone_number_id(&self) -> PhoneNumberId;

    /// Calls `f` with each body field in order (each query parameter for a `GET`).
    fn fields<'a>(&'a self, f: &mut dyn FnMut(Field<'a>));

    /// The HTTP method: `POST` for every call that acts, `GET` for reads.
    fn method(&self) -> http::Method {
        http::Method::POST
    }

    /// The path's last segment after the number (`request_code`); `None` for a read of
    /// the number itself (`GET /{version}/{id}`).
    fn path_tail(&self) -> Option<&'static str> {
        Some(self.name())
    }

    /// The delivery method, when the operation has one (for spans).
    fn code_method(&self) -> Option<CodeMethod> {
        None
    }

    /// The language, when the operation has one (for spans).
    fn language(&self) -> Option<Language> {
        None
    }

    /// When this operation may be retried.
    fn retry_mode(&self) -> RetryMode {
        RetryMode::Standard
    }

    /// Which rate limits apply to it.
    fn quota_class(&self) -> QuotaClass {
        QuotaClass::Other
    }

    /// What the layers record on this call as it goes down the stack (the attempt, the
    /// deadline); `None` for operations that do not track it.
    fn context(&self) -> Option<&CallContext> {
        None
    }

    /// The call context to write to; `None` for operations that do not track it.
    fn context_mut(&mut self) -> Option<&mut CallContext> {
        None
    }

    /// What the dedup layer does with it (nothing, unless the operation says).
    fn dedup(&self) -> DedupRole<'_> {
        DedupRole::None
    }

    /// Which attempt this is (1 unless the retry policy set another).
    fn attempt(&self) -> Attempt {
        self.context().map(|c| c.attempt).unwrap_or_default()
    }

    /// Marks this copy as a later attempt; operations that do not track it ignore it.
    fn set_attempt(&mut self, attempt: Attempt) {
        if let Some(c) = self.context_mut() {
            c.attempt = attempt;
        }
    }
}

/// What the layers write on an operation as it goes down the stack: which attempt this
/// copy is, when the whole call must end (set by the `Deadline` layer), and where to count
/// the attempts handed to the HTTP service (set by the `Dedup` layer for a sending call).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CallContext {
    /// Which attempt this copy is sent as.
    pub attempt: Attempt,
    /// When the whole call must end, if it has a deadline.
    pub deadline: Option<tokio::time::Instant>,
    /// Where the boundary counts what it hands to the HTTP service.
    pub progress: Option<Arc<Progress>>,
    /// The tenant the call runs for: the one it picked, then the one the tenant layer
    /// resolved (see [`tenant`](crate::tenant)).
    pub tenant: Option<Arc<str>>,
    /// The tenant's WhatsApp Business Account, for the per-WABA limits.
    pub waba: Option<u64>,
}

/// Two contexts are equal when they describe the same attempt and deadline; the progress
/// counter is shared state, not part of the value.
impl PartialEq for CallContext {
    fn eq(&self, other: &Self) -> bool {
        self.attempt == other.attempt && self.deadline == other.deadline
    }
}

impl Eq for CallContext {}

/// Attempts of one leading call handed to the transport, and those that failed before
/// anything was written: whether a leader that goes away may have sent its code.
#[derive(Debug, Default)]
pub struct Progress {
    handed: AtomicU32,
    unsent: AtomicU32,
}

impl Progress {
    /// An attempt was handed to the HTTP service.
    pub(crate) fn handed(&self) {
        self.handed.fetch_add(1, Ordering::SeqCst);
    }

    /// An attempt failed before anything was written.
    pub(crate) fn unsent(&self) {
        self.unsent.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether an attempt may have reached the server.
    pub(crate) fn may_have_reached_server(&self) -> bool {
        self.handed.load(Ordering::SeqCst) > self.unsent.load(Ordering::SeqCst)
    }

    /// A fresh counter for a sending call: the one the last call on this thread gave
    /// back, else a new one. Every sending call needs one, and the allocation was a
    /// tenth of the dedup layer's cost.
    pub(crate) fn fresh() -> Arc<Progress> {
        SPARE_PROGRESS
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Gives a counter back for the next call on this thread, if no one else holds it.
    pub(crate) fn recycle(progress: Arc<Progress>) {
        if Arc::strong_count(&progress) != 1 || Arc::weak_count(&progress) != 0 {
            return;
        }
        // The last other holder's counts happened before its release of the count: see
        // them before starting over (what `Arc`'s own drop does before freeing). No one
        // else can see the counter until this thread hands it out again, so plain stores
        // do (a sequentially consistent store is a locked exchange on x86).
        std::sync::atomic::fence(Ordering::Acquire);
        progress.handed.store(0, Ordering::Relaxed);
        progress.unsent.store(0, Ordering::Relaxed);
        let _ = SPARE_PROGRESS.try_with(|spare| spare.set(Some(progress)));
    }
}

thread_local! {
    /// One counter kept per thread between sending calls (see [`Progress::fresh`]).
    static SPARE_PROGRESS: Cell<Option<Arc<Progress>>> = const { Cell::new(None) };
}

/// What the dedup layer does with an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DedupRole<'a> {
    /// Sends a code: single flight, the live-code window and idempotency keys.
    SendCode {
        /// SMS, VOICE or IVR.
        method: CodeMethod,
        /// The caller asked to send again: the window does not answer for it.
        resend: bool,
        /// The caller's idempotency key, if any.
        idempotency_key: Option<&'a str>,
    },
    /// Checks a code: a success ends the number's live-code window.
    CheckCode,
    /// `register` / `deregister`: never two at once for a number.
    SingleFlight,
    /// Passes through.
    None,
}

/// An answer with a `success` flag: `success: false` becomes an `unsuccessful` error.
pub trait Succeeded {
    /// Whether the API said `success: true`.
    fn succeeded(&self) -> bool;
}

impl std::str::FromStr for QuotaClass {
    type Err = crate::Error;

    /// `request_code`, `verify_code`, `registration` or `other` (also with `-`).
    fn from_str(s: &str) -> Result<Self, crate::Error> {
        let s = s.replace('-', "_");
        QuotaClass::ALL
            .into_iter()
            .find(|c| s.eq_ignore_ascii_case(c.as_str()))
            .ok_or_else(|| {
                crate::Error::invalid_input(format!(
                    "the kind of call must be request_code, verify_code, registration or other, got {}",
                    shown(&s)
                ))
            })
    }
}

/// What kind of call an operation is, for the limits that apply to it: sending codes,
/// checking them and registration never share a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaClass {
    /// Sends a code (`request_code`): the per-number quotas.
    RequestCode,
    /// Checks a code (`verify_code`): the per-number quotas and the wrong-code guard.
    VerifyCode,
    /// `register` / `deregister`: the registration budget (10 calls per 72 hours).
    Registration,
    /// Anything else: the global quota only.
    Other,
}

impl QuotaClass {
    /// The class's name in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaClass::RequestCode => "request_code",
            QuotaClass::VerifyCode => "verify_code",
            QuotaClass::Registration => "registration",
            QuotaClass::Other => "other",
        }
    }

    /// Every class, in index order.
    pub const ALL: [QuotaClass; 4] = [
        QuotaClass::RequestCode,
        QuotaClass::VerifyCode,
        QuotaClass::Registration,
        QuotaClass::Other,
    ];

    pub(crate) fn index(self) -> usize {
        match self {
            QuotaClass::RequestCode => 0,
            QuotaClass::VerifyCode => 1,
            QuotaClass::Registration => 2,
            QuotaClass::Other => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_progress_starts_over_and_a_shared_one_is_not_taken() {
        let p = Progress::fresh();
        p.handed();
        let held = p.clone();
        Progress::recycle(p);
        // Someone else still counts on it: the next call gets another.
        let next = Progress::fresh();
        assert!(!Arc::ptr_eq(&next, &held));
        assert!(held.may_have_reached_server());
        drop(next);
        Progress::recycle(held.clone());
        Progress::recycle(held);
        let again = Progress::fresh();
        assert!(!again.may_have_reached_server(), "counts start over");
        again.handed();
        again.unsent();
        assert!(!again.may_have_reached_server());
    }
}
