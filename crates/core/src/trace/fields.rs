//! The span of a call and the names of its fields.

use tracing::field::Empty;
use tracing::Span;

use crate::dedup::Deduplicated;
use crate::error::Error;
use crate::metrics::CallSummary;
use crate::operation::{ApiVersion, Attempt, Operation};
use crate::response::Response;

/// The phone number id.
pub const PHONE_NUMBER_ID: &str = "phone_number_id";
/// `SMS` or `VOICE`.
pub const CODE_METHOD: &str = "code_method";
/// The language of the code message.
pub const LANGUAGE: &str = "language";
/// The Graph API version.
pub const API_VERSION: &str = "api_version";
/// How many attempts the call made.
pub const ATTEMPTS: &str = "attempts";
/// `success` or the error kind.
pub const OUTCOME: &str = "outcome";
/// The HTTP status (OpenTelemetry).
pub const STATUS_CODE: &str = "http.response.status_code";
/// The error kind (OpenTelemetry `error.type`).
pub const ERROR_TYPE: &str = "error.type";
/// Meta's error code.
pub const ERROR_CODE: &str = "error.code";
/// Meta's error subcode.
pub const ERROR_SUBCODE: &str = "error.subcode";
/// Meta's `is_transient`.
pub const IS_TRANSIENT: &str = "error.is_transient";
/// The meaning of a known Graph code.
pub const MEANING: &str = "error.meaning";
/// The trace id to quote to Meta support.
pub const FBTRACE_ID: &str = "fbtrace_id";
/// How long to wait before calling again.
pub const RETRY_AFTER_MS: &str = "retry_after_ms";

macro_rules! call_span {
    ($name:literal) => {
        tracing::info_span!(
            $name,
            phone_number_id = Empty,
            code_method = Empty,
            language = Empty,
            api_version = Empty,
            attempts = Empty,
            outcome = Empty,
            "http.response.status_code" = Empty,
            "error.type" = Empty,
            "error.code" = Empty,
            "error.subcode" = Empty,
            "error.is_transient" = Empty,
            "error.meaning" = Empty,
            fbtrace_id = Empty,
            retry_after_ms = Empty,
        )
    };
}

/// The span of one attempt, a child of the call's span, with the backoff wait before it.
/// The boundary opens it around each request it sends.
pub fn attempt_span(attempt: Attempt) -> Span {
    tracing::info_span!(
        "attempt",
        attempt = attempt.number,
        backoff_wait_ms = attempt.waited.as_millis() as u64,
        "http.response.status_code" = Empty,
    )
}

/// The span for one call of `op`, named after the operation.
pub fn call_span<O: Operation>(op: &O, version: Option<ApiVersion>) -> Span {
    // Span names are static metadata, so each known operation gets its own call site.
    let span = match op.name() {
        "request_code" => call_span!("request_code"),
        "verify_code" => call_span!("verify_code"),
        "register" => call_span!("register"),
        "deregister" => call_span!("deregister"),
        "phone_number_status" => call_span!("phone_number_status"),
        _ => call_span!("graph_call"),
    };
    if span.is_disabled() {
        return span;
    }
    span.record(PHONE_NUMBER_ID, op.phone_number_id().as_str());
    if let Some(m) = op.code_method() {
        span.record(CODE_METHOD, m.as_str());
    }
    if let Some(l) = op.language() {
        span.record(LANGUAGE, l.as_str());
    }
    if let Some(v) = version {
        span.record(API_VERSION, v.as_str());
    }
    span
}

/// Writes a call's outcome on its span.
pub trait RecordOutcome {
    /// Records the fields this outcome knows.
    fn record(&self, span: &Span);

    /// What the metrics count of this outcome (nothing by default).
    fn summary(&self) -> CallSummary {
        CallSummary::default()
    }
}

impl<T> RecordOutcome for Response<T> {
    fn summary(&self) -> CallSummary {
        let dedup = match self.deduplicated() {
            Deduplicated::No => None,
            Deduplicated::Shared => Some("shared"),
            Deduplicated::AlreadySent(_) => Some("already_sent"),
            Deduplicated::Replayed => Some("replayed"),
        };
        CallSummary {
            outcome: "success",
            attempts: self.attempts(),
            dedup,
            code_sent: dedup.is_none(),
            wrong_code: false,
        }
    }

    fn record(&self, span: &Span) {
        span.record(OUTCOME, "success");
        span.record(ATTEMPTS, self.attempts());
        span.record(STATUS_CODE, self.status().as_u16());
        if let Some(id) = self.fbtrace_id() {
            span.record(FBTRACE_ID, id);
        }
    }
}

impl RecordOutcome for Error {
    fn summary(&self) -> CallSummary {
        let dedup = if self.is_shared() {
            Some("shared")
        } else if self.is_replayed() {
            Some("replayed")
        } else {
            None
        };
        CallSummary {
            outcome: self.kind().as_str(),
            attempts: self.attempts(),
            dedup,
            code_sent: false,
            wrong_code: dedup.is_none()
                && self.is_answer()
                && self.meaning() == Some(crate::error::Meaning::WrongCode),
        }
    }

    fn record(&self, span: &Span) {
        span.record(OUTCOME, self.kind().as_str());
        span.record(ERROR_TYPE, self.kind().as_str());
        span.record(ATTEMPTS, self.attempts());
        if let Some(s) = self.status() {
            span.record(STATUS_CODE, s.as_u16());
        }
        if let Some(g) = self.graph() {
            span.record(ERROR_CODE, g.code);
            if let Some(sub) = g.error_subcode {
                span.record(ERROR_SUBCODE, sub);
            }
            if let Some(t) = g.is_transient {
                span.record(IS_TRANSIENT, t);
            }
        }
        if let Some(m) = self.meaning() {
            span.record(MEANING, m.as_str());
        }
        if let Some(id) = self.fbtrace_id() {
            span.record(FBTRACE_ID, id);
        }
        if let Some(wait) = self.retry_after() {
            span.record(RETRY_AFTER_MS, wait.as_millis() as u64);
        }
    }
}
