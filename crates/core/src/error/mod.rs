//! The one error type of the crate, and Meta's error body.
//!
//! [`Error`] answers the caller's next question: what happened ([`Error::kind`]), what Meta
//! said ([`Error::graph`], [`Error::meaning`]), whether to wait ([`Error::retry_after`]) and
//! whether a code may already have been sent ([`Error::may_have_reached_server`]).

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

mod code;
mod graph;
mod kind;
mod meaning;

pub use self::code::GraphCode;
pub use self::graph::GraphApiError;
pub use self::kind::{ErrorKind, TimeoutKind};
pub(crate) use self::meaning::REGISTRATION_BLOCK;
pub use self::meaning::{Meaning, Throttle};
use crate::meta::ResponseMeta;

type Source = Box<dyn StdError + Send + Sync>;
/// Whether a request may have reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Refused locally or failed before a byte was written.
    NotSent,
    /// Handed to the connection: the server may have acted.
    Maybe,
    /// The server answered.
    Answered,
}

/// The error of every call: what happened ([`kind`](Self::kind)), what Meta said
/// ([`graph`](Self::graph), [`meaning`](Self::meaning)), whether to wait
/// ([`retry_after`](Self::retry_after)) and whether a code may already have been sent
/// ([`may_have_reached_server`](Self::may_have_reached_server)).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    status: Option<StatusCode>,
    graph: Option<GraphApiError>,
    meta: ResponseMeta,
    retry_after: Option<Duration>,
    reach: Reach,
    timeout: Option<TimeoutKind>,
    body_snippet: Option<String>,
    source: Option<Source>,
    /// How the dedup layer answered: shared, replayed (or neither).
    dedup: DedupMark,
    /// Why a precondition failed (`on_premise`, `name_not_approved`).
    reason: Option<&'static str>,
}

/// How the dedup layer answered a failed call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum DedupMark {
    #[default]
    No,
    Shared,
    Replayed,
}

impl Error {
    fn new(kind: ErrorKind, message: String, reach: Reach) -> Self {
        let mut meta = ResponseMeta::default();
        meta.set_attempts(u32::from(reach != Reach::NotSent));
        Self {
            inner: Box::new(Inner {
                kind,
                message,
                status: None,
                graph: None,
                meta,
                retry_after: None,
                reach,
                timeout: None,
                body_snippet: None,
                source: None,
                dedup: DedupMark::No,
                reason: None,
            }),
        }
    }

    /// A request refused because a code may already have gone out: an earlier call for the
    /// number may have reached Meta. `kind` is that call's (a timeout, a lost connection).
    pub(crate) fn maybe_sent(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, message.into(), Reach::Maybe)
    }

    /// A failure of `kind` before anything was sent: another call's, shared.
    pub(crate) fn not_sent(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, message.into(), Reach::NotSent)
    }

    /// A step the number's status says cannot work now, with a short `reason`
    /// (`on_premise`, `name_not_approved`); nothing was sent.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Precondition, message.into(), Reach::NotSent);
        e.inner.reason = Some(reason);
        e
    }

    /// Why a precondition failed (`on_premise`, `name_not_approved`), for `precondition`
    /// errors.
    pub fn reason(&self) -> Option<&'static str> {
        self.inner.reason
    }

    /// A value refused locally; nothing was sent. `message` says what is accepted.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message.into(), Reach::NotSent)
    }

    /// A call refused locally by a rate limit, retryable after `retry_after`.
    pub fn rate_limited_locally(message: impl Into<String>, retry_after: Duration) -> Self {
        let mut e = Self::new(ErrorKind::RateLimited, message.into(), Reach::NotSent);
        e.inner.retry_after = Some(retry_after);
        e
    }

    /// A Graph error answer: `status` and the parsed body.
    pub fn from_graph(status: StatusCode, graph: GraphApiError, meta: ResponseMeta) -> Self {
        let kind = graph
            .meaning()
            .and_then(Meaning::kind_override)
            .unwrap_or_else(|| ErrorKind::from_status(status));
        let mut e = Self::new(kind, graph.message.clone(), Reach::Answered);
        e.inner.status = Some(status);
        e.inner.meta = meta;
        e.inner.graph = Some(graph);
        e
    }

    /// An answer that could not be understood; keeps the status and the first 200 bytes.
    pub fn protocol(
        status: Option<StatusCode>,
        message: impl Into<String>,
        body: &[u8],
        meta: ResponseMeta,
    ) -> Self {
        let reach = if status.is_some() {
            Reach::Answered
        } else {
            Reach::Maybe
        };
        let mut e = Self::new(ErrorKind::Protocol, message.into(), reach);
        e.inner.status = status;
        e.inner.meta = meta;
        let cut = &body[..body.len().min(200)];
        e.inner.body_snippet = Some(String::from_utf8_lossy(cut).into_owned());
        e
    }

    /// HTTP 200 with `success: false`.
    pub(crate) fn unsuccessful(status: StatusCode, meta: ResponseMeta) -> Self {
        let mut e = Self::new(
            ErrorKind::Unsuccessful,
            "the API answered success: false".into(),
            Reach::Answered,
        );
        e.inner.status = Some(status);
        e.inner.meta = meta;
        e
    }

    /// A timeout. An attempt timeout may fire after the request was written.
    pub fn timeout(which: TimeoutKind, after: Duration) -> Self {
        let message = match which {
            TimeoutKind::Attempt => format!("attempt timed out after {after:?}"),
            TimeoutKind::Deadline => format!("deadline of {after:?} exceeded"),
        };
        let mut e = Self::new(ErrorKind::Timeout, message, Reach::Maybe);
        e.inner.timeout = Some(which);
        e
    }

    /// The deadline passed while the call waited for a concurrent call for its number,
    /// which may have sent a code meanwhile.
    pub(crate) fn deadline_while_shared() -> Self {
        let mut e = Self::new(
            ErrorKind::Timeout,
            "the deadline passed while waiting for a concurrent call for this number, which may have sent a code".into(),
            Reach::Maybe,
        );
        e.inner.timeout = Some(TimeoutKind::Deadline);
        e.mark_shared();
        e
    }

    /// A connection failure; `sent` says whether the request may have been written.
    pub fn transport(source: impl Into<Source>, sent: bool) -> Self {
        let message = if sent {
            "connection failed after the request was sent"
        } else {
            "connection failed before the request was sent"
        };
        let reach = if sent { Reach::Maybe } else { Reach::NotSent };
        Self::new(ErrorKind::Transport, message.into(), reach).with_source(source)
    }

    /// Attaches the underlying cause, exposed through [`source`](StdError::source).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// Meta's error body, when the answer had one.
    pub fn graph(&self) -> Option<&GraphApiError> {
        self.inner.graph.as_ref()
    }

    /// The classification of Meta's error code, when it is a known one.
    pub fn meaning(&self) -> Option<Meaning> {
        self.graph().and_then(GraphApiError::meaning)
    }

    /// The trace id: from the body, else the `x-fb-trace-id` header.
    pub fn fbtrace_id(&self) -> Option<&str> {
        self.graph()
            .and_then(|g| g.fbtrace_id.as_deref())
            .or_else(|| self.inner.meta.fbtrace_id())
    }

    /// Whether Meta flagged the error as transient.
    pub fn is_transient(&self) -> Option<bool> {
        self.graph().and_then(|g| g.is_transient)
    }

    /// How long to wait before calling again: a local limiter's answer, else the
    /// server's `Retry-After` or usage-header hint.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner
            .retry_after
            .or_else(|| self.inner.meta.wait_hint())
    }

    /// How many attempts were made; 0 when the call was refused locally.
    pub fn attempts(&self) -> u32 {
        self.inner.meta.attempts()
    }

    /// Whether the request may have reached the server (so a code may have been sent).
    pub fn may_have_reached_server(&self) -> bool {
        self.inner.reach != Reach::NotSent
    }

    /// Whether the server answered (any status).
    pub fn is_answer(&self) -> bool {
        self.inner.reach == Reach::Answered
    }

    /// Which timeout fired, for `timeout` errors.
    pub fn timeout_kind(&self) -> Option<TimeoutKind> {
        self.inner.timeout
    }

    /// The response metadata (trace and request ids, usage headers).
    pub fn meta(&self) -> &ResponseMeta {
        &self.inner.meta
    }

    /// The first 200 bytes of a body that could not be understood.
    pub fn body_snippet(&self) -> Option<&str> {
        self.inner.body_snippet.as_deref()
    }

    /// The message: Meta's, or what went wrong locally.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Whether the kind is [`ErrorKind::RateLimited`].
    pub fn is_rate_limited(&self) -> bool {
        self.kind() == ErrorKind::RateLimited
    }

    /// Whether the kind is [`ErrorKind::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// Whether Meta throttled the call, and what it said about waiting: a 429 of any code,
    /// or a throttle code (4, 613, 80007, 130429, 136024, 133016) whatever the status.
    /// `None` for anything else, and for local refusals (nothing was answered).
    pub fn throttle(&self) -> Option<Throttle> {
        if !self.is_answer() {
            return None;
        }
        let meaning = self.meaning();
        let throttled = self.status().is_some_and(|s| s.as_u16() == 429)
            || meaning.is_some_and(Meaning::is_throttle);
        if !throttled {
            return None;
        }
        let documented = match meaning {
            Some(Meaning::RegistrationRateLimited) => Some(meaning::REGISTRATION_BLOCK),
            _ => None,
        };
        Some(Throttle {
            hint: self.retry_after().or(documented),
            app_wide: meaning == Some(Meaning::AppRateLimited) && self.meta().app_usage().is_some(),
        })
    }

    /// Whether the call was refused locally (invalid input or a local limit).
    pub fn is_local(&self) -> bool {
        self.inner.reach == Reach::NotSent && self.inner.kind != ErrorKind::Transport
    }

    pub(crate) fn set_attempts(&mut self, attempts: u32) {
        self.inner.meta.set_attempts(attempts);
    }

    pub(crate) fn set_retry_after(&mut self, wait: Duration) {
        self.inner.retry_after = Some(wait);
    }

    /// Marks the outcome of a concurrent call for the same number, shared.
    pub(crate) fn mark_shared(&mut self) {
        self.inner.dedup = DedupMark::Shared;
    }

    /// Marks the first outcome of the call's idempotency key, replayed.
    pub(crate) fn mark_replayed(&mut self) {
        self.inner.dedup = DedupMark::Replayed;
    }

    /// Whether this is the outcome of a concurrent call for the same number, shared.
    pub fn is_shared(&self) -> bool {
        self.inner.dedup == DedupMark::Shared
    }

    /// Whether this is the first outcome of the call's idempotency key, replayed.
    pub fn is_replayed(&self) -> bool {
        self.inner.dedup == DedupMark::Replayed
    }

    /// Marks that an earlier attempt of the call may have reached the server, whatever
    /// this last one did: a call's error answers for the whole call.
    pub(crate) fn set_may_have_reached_server(&mut self) {
        if self.inner.reach == Reach::NotSent {
            self.inner.reach = Reach::Maybe;
        }
    }

    /// Turns an answer into a local `rate_limited` refusal to wait `retry_after` (a server
    /// hint longer than the time left); Meta's body and ids stay.
    pub(crate) fn into_rate_limited(mut self, retry_after: Duration) -> Self {
        self.inner.kind = ErrorKind::RateLimited;
        self.inner.retry_after = Some(retry_after);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        match i.kind {
            ErrorKind::InvalidInput => write!(f, "invalid input: {}", i.message)?,
            ErrorKind::BadRequest => f.write_str("bad request")?,
            ErrorKind::Auth => f.write_str("authentication failed")?,
            ErrorKind::Permission => f.write_str("permission denied")?,
            ErrorKind::NotFound => f.write_str("not found")?,
            ErrorKind::Unprocessable => f.write_str("unprocessable")?,
            ErrorKind::RateLimited => f.write_str("rate limited")?,
            ErrorKind::Server => f.write_str("server error")?,
            ErrorKind::Timeout => write!(f, "timeout: {}", i.message)?,
            ErrorKind::Transport => write!(f, "transport error: {}", i.message)?,
            ErrorKind::Protocol => write!(f, "unexpected answer: {}", i.message)?,
            ErrorKind::Unsuccessful => {
                f.write_str("unsuccessful: the API answered success: false")?
            }
            ErrorKind::WrongCode => f.write_str("wrong code")?,
            ErrorKind::Precondition => write!(f, "precondition failed: {}", i.message)?,
        }
        if let Some(status) = i.status {
            if i.kind != ErrorKind::Unsuccessful {
                write!(f, " (HTTP {}", status.as_u16())?;
                if let Some(g) = &i.graph {
                    write!(f, ", code {}", g.code)?;
                    if let Some(sub) = g.error_subcode {
                        write!(f, "/{sub}")?;
                    }
                }
                f.write_str(")")?;
            }
        }
        if i.graph.is_some() || (i.kind == ErrorKind::RateLimited && i.status.is_none()) {
            write!(f, ": {}", i.message)?;
        }
        if i.kind == ErrorKind::RateLimited {
            if let Some(wait) = self.retry_after() {
                write!(f, "; retry after {}", crate::duration::format_wait(wait))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let mut d = f.debug_struct("wa_verify_core::Error");
        d.field("kind", &i.kind).field("message", &i.message);
        if let Some(s) = i.status {
            d.field("status", &s.as_u16());
        }
        if let Some(g) = &i.graph {
            d.field("graph", g);
        }
        if let Some(t) = self.fbtrace_id() {
            d.field("fbtrace_id", &t);
        }
        if let Some(r) = self.retry_after() {
            d.field("retry_after", &r);
        }
        d.field("attempts", &self.attempts())
            .field("reach", &i.reach);
        if let Some(s) = &i.body_snippet {
            d.field("body_snippet", s);
        }
        if let Some(s) = &i.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl From<crate::duration::InvalidDuration> for Error {
    fn from(e: crate::duration::InvalidDuration) -> Self {
        Error::invalid_input(e.to_string())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(status: u16, body: &str) -> Error {
        let g = GraphApiError::from_body(body.as_bytes()).expect("graph body");
        Error::from_graph(
            StatusCode::from_u16(status).unwrap(),
            g,
            ResponseMeta::default(),
        )
    }

    #[test]
    fn error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn parses_every_documented_field_and_keeps_unknown_ones() {
        let body = r#"{"error":{"message":"Request code error","type":"OAuthException","code":136024,
            "error_subcode":2388091,"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam","is_transient":false,
            "error_user_title":"Request code error","error_user_msg":"try again after a while",
            "error_data":{"messaging_product":"whatsapp","details":"wait"},"href":"https://x",
            "new_field":[1,2]}}"#;
        let g = GraphApiError::from_body(body.as_bytes()).unwrap();
        assert_eq!(g.message, "Request code error");
        assert_eq!(g.error_type, "OAuthException");
        assert_eq!((g.code, g.error_subcode), (136024, Some(2388091)));
        assert_eq!(g.fbtrace_id.as_deref(), Some("Az8or2yhqkZfEZ-_4Qn_Bam"));
        assert_eq!(g.is_transient, Some(false));
        assert_eq!(g.error_user_title.as_deref(), Some("Request code error"));
        assert_eq!(g.error_user_msg.as_deref(), Some("try again after a while"));
        assert_eq!(g.error_data.as_ref().unwrap()["details"], "wait");
        assert_eq!(g.href.as_deref(), Some("https://x"));
        assert_eq!(g.extra["new_field"], serde_json::json!([1, 2]));
        let again = GraphApiError::from_body(g.to_body().as_bytes()).unwrap();
        assert_eq!(again, g);
    }

    #[test]
    fn body_without_code_is_not_a_graph_error() {
        assert!(GraphApiError::from_body(br#"{"error":"nope"}"#).is_none());
        assert!(GraphApiError::from_body(b"<html>").is_none());
    }

    #[test]
    fn status_gives_kind_when_code_is_not_overriding() {
        let body = |code: i64| format!(r#"{{"error":{{"message":"m","type":"t","code":{code}}}}}"#);
        assert_eq!(graph(400, &body(100)).kind(), ErrorKind::BadRequest);
        assert_eq!(graph(422, &body(100)).kind(), ErrorKind::Unprocessable);
        assert_eq!(graph(403, &body(200)).kind(), ErrorKind::Permission);
        assert_eq!(graph(404, &body(803)).kind(), ErrorKind::NotFound);
        assert_eq!(graph(500, &body(2)).kind(), ErrorKind::Server);
        assert_eq!(graph(502, &body(99999)).kind(), ErrorKind::Server);
    }

    #[test]
    fn throttle_wrong_code_and_token_codes_override_status() {
        let body = |code: i64| format!(r#"{{"error":{{"message":"m","type":"t","code":{code}}}}}"#);
        for code in [4, 80007, 130429, 136024, 133016] {
            assert_eq!(
                graph(400, &body(code)).kind(),
                ErrorKind::RateLimited,
                "{code}"
            );
        }
        assert_eq!(graph(400, &body(136025)).kind(), ErrorKind::WrongCode);
        assert_eq!(graph(400, &body(190)).kind(), ErrorKind::Auth);
    }

    #[test]
    fn display_is_one_line_with_the_key_facts() {
        let e = graph(
            429,
            r#"{"error":{"message":"Application request limit reached","type":"OAuthException","code":4,"error_subcode":2446079}}"#,
        );
        assert_eq!(
            e.to_string(),
            "rate limited (HTTP 429, code 4/2446079): Application request limit reached"
        );
        let local = Error::rate_limited_locally("per-number quota", Duration::from_secs(3));
        assert_eq!(
            local.to_string(),
            "rate limited: per-number quota; retry after 3s"
        );
        assert_eq!(local.attempts(), 0);
        assert!(local.is_local());
    }

    #[test]
    fn fbtrace_id_falls_back_to_header() {
        let mut h = http::HeaderMap::new();
        h.insert("x-fb-trace-id", "HeaderTrace".parse().unwrap());
        let meta = ResponseMeta::from_headers(&h, std::time::SystemTime::now());
        let e = Error::protocol(Some(StatusCode::BAD_GATEWAY), "html", b"<html>", meta);
        assert_eq!(e.fbtrace_id(), Some("HeaderTrace"));
        assert_eq!(e.body_snippet(), Some("<html>"));
    }
}
