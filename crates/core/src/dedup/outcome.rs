//! A call's outcome as the dedup store keeps it: enough to give followers, repeated
//! requests and replays the same answer, in memory or in Redis.

use std::time::Duration;

use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::mark::Deduplicated;
use crate::error::{Error, ErrorKind, GraphApiError};
use crate::meta::ResponseMeta;
use crate::response::Response;

/// What one sending call came to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Meta confirmed (`{"success": true}`).
    Sent {
        fbtrace_id: Option<String>,
        attempts: u32,
    },
    /// Meta answered with an error (or a body that could not be read).
    Answer {
        status: u16,
        graph: Option<Box<GraphApiError>>,
        message: String,
        fbtrace_id: Option<String>,
        attempts: u32,
    },
    /// The request may have reached Meta, and no answer says what happened.
    MaybeSent {
        kind: String,
        message: String,
        attempts: u32,
    },
    /// Nothing left the process: a local refusal, or a connection that failed before the
    /// request was written. Shared with followers, never stored for a key or a window.
    NotSent {
        kind: String,
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// The leader was cancelled before its request was written: nothing was sent, and
    /// there is no outcome to share (a follower sends itself).
    Dropped,
}

impl Outcome {
    /// The outcome of a call's result.
    pub(crate) fn of<T>(result: &Result<Response<T>, Error>) -> Self {
        match result {
            Ok(r) => Outcome::Sent {
                fbtrace_id: r.fbtrace_id().map(str::to_owned),
                attempts: r.attempts(),
            },
            Err(e) if e.is_answer() => Outcome::Answer {
                status: e.status().map_or(0, |s| s.as_u16()),
                graph: e.graph().cloned().map(Box::new),
                message: e.message().to_owned(),
                fbtrace_id: e.fbtrace_id().map(str::to_owned),
                attempts: e.attempts(),
            },
            Err(e) if e.may_have_reached_server() => Outcome::MaybeSent {
                kind: e.kind().as_str().to_owned(),
                message: e.message().to_owned(),
                attempts: e.attempts(),
            },
            Err(e) => Outcome::NotSent {
                kind: e.kind().as_str().to_owned(),
                message: e.message().to_owned(),
                retry_after_ms: e
                    .retry_after()
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            },
        }
    }

    /// The outcome of a leader that went away: it may have sent, or certainly did not.
    pub(crate) fn abandoned(may_have_reached_server: bool) -> Self {
        if may_have_reached_server {
            Outcome::MaybeSent {
                kind: ErrorKind::Transport.as_str().to_owned(),
                message: "an earlier call for this number was cancelled after its request may have been sent".to_owned(),
                attempts: 1,
            }
        } else {
            Outcome::Dropped
        }
    }

    /// The answer to a request within the window of a code that may have gone out.
    pub(crate) fn maybe_in_window() -> Self {
        Outcome::MaybeSent {
            kind: ErrorKind::Transport.as_str().to_owned(),
            message: "a code may already have been sent to this number within its window (an earlier call's outcome is unknown); nothing was sent: check, or ask to send again (resend)".to_owned(),
            attempts: 0,
        }
    }

    /// The answer this outcome gives another caller, marked `how`.
    pub(crate) fn answer<T: DeserializeOwned>(
        &self,
        how: Deduplicated,
        retry_after: Option<Duration>,
    ) -> Result<Response<T>, Error> {
        let mut meta = ResponseMeta::default();
        let result = match self {
            Outcome::NotSent {
                kind,
                message,
                retry_after_ms,
            } => {
                let mut e =
                    Error::not_sent(ErrorKind::from_str_or(kind, ErrorKind::Transport), message);
                if let Some(ms) = retry_after_ms {
                    e.set_retry_after(Duration::from_millis(*ms));
                }
                Err(e)
            }
            Outcome::Dropped => Err(Error::rate_limited_locally(
                "a concurrent call for this number was given up before it sent anything; nothing was sent, try again",
                Duration::ZERO,
            )),
            Outcome::Sent {
                fbtrace_id,
                attempts,
            } => {
                meta.set_fbtrace_id(fbtrace_id.as_deref());
                meta.set_attempts(*attempts);
                // Every output of a deduplicated operation reads `{"success": true}`.
                match serde_json::from_str::<T>(r#"{"success":true}"#) {
                    Ok(output) => Ok(Response::new(StatusCode::OK, output, meta)),
                    Err(e) => Err(Error::invalid_input(format!(
                        "this operation's answer cannot be shared: {e}"
                    ))),
                }
            }
            Outcome::Answer {
                status,
                graph,
                message,
                fbtrace_id,
                attempts,
            } => {
                meta.set_fbtrace_id(fbtrace_id.as_deref());
                let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
                let mut e = match graph {
                    Some(g) => Error::from_graph(status, (**g).clone(), meta),
                    None => Error::protocol(Some(status), message.clone(), b"", meta),
                };
                e.set_attempts(*attempts);
                Err(e)
            }
            Outcome::MaybeSent {
                kind,
                message,
                attempts,
            } => {
                let mut e = Error::maybe_sent(ErrorKind::from_str_or(kind, ErrorKind::Transport), message);
                e.set_attempts(*attempts);
                if let Some(wait) = retry_after {
                    e.set_retry_after(wait);
                }
                Err(e)
            }
        };
        match result {
            Ok(mut r) => {
                r.set_deduplicated(how);
                Ok(r)
            }
            Err(mut e) => {
                match how {
                    Deduplicated::Shared => e.mark_shared(),
                    Deduplicated::Replayed => e.mark_replayed(),
                    Deduplicated::No | Deduplicated::AlreadySent(_) => {}
                }
                Err(e)
            }
        }
    }
}

/// A call's result as a store needs it, without building an [`Outcome`] unless asked:
/// the in-process store reads what it needs from the result itself.
pub(crate) trait AsOutcome {
    /// The outcome, for followers and idempotency keys.
    fn outcome(&self) -> Outcome;
    /// What it says about a code: `Some(true)` Meta confirmed one, `Some(false)` one may
    /// have gone out (no answer, or a 2xx whose body could not be read: Meta acted but did
    /// not say how), `None` none did (an error answer, or nothing sent).
    fn code_sent(&self) -> Option<bool>;
    /// The trace id of Meta's answer, if any.
    fn fbtrace_id(&self) -> Option<&str>;
    /// Whether Meta answered (a success or an error): what an idempotency key keeps.
    fn is_answer(&self) -> bool;
}

impl<T> AsOutcome for Result<Response<T>, Error> {
    fn outcome(&self) -> Outcome {
        Outcome::of(self)
    }

    fn code_sent(&self) -> Option<bool> {
        match self {
            Ok(_) => Some(true),
            Err(e) if e.is_answer() => e.status().is_some_and(|s| s.is_success()).then_some(false),
            Err(e) => e.may_have_reached_server().then_some(false),
        }
    }

    fn fbtrace_id(&self) -> Option<&str> {
        match self {
            Ok(r) => r.fbtrace_id(),
            Err(e) => e.fbtrace_id(),
        }
    }

    fn is_answer(&self) -> bool {
        self.as_ref().map_or_else(Error::is_answer, |_| true)
    }
}

impl AsOutcome for Outcome {
    fn outcome(&self) -> Outcome {
        self.clone()
    }

    fn code_sent(&self) -> Option<bool> {
        match self {
            Outcome::Sent { .. } => Some(true),
            Outcome::MaybeSent { .. } => Some(false),
            Outcome::Answer { status, .. } if (200..300).contains(status) => Some(false),
            Outcome::Answer { .. } | Outcome::NotSent { .. } | Outcome::Dropped => None,
        }
    }

    fn fbtrace_id(&self) -> Option<&str> {
        match self {
            Outcome::Sent { fbtrace_id, .. } | Outcome::Answer { fbtrace_id, .. } => {
                fbtrace_id.as_deref()
            }
            _ => None,
        }
    }

    fn is_answer(&self) -> bool {
        matches!(self, Outcome::Sent { .. } | Outcome::Answer { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::RequestCodeResponse;

    #[test]
    fn outcomes_survive_json_and_give_the_same_answer() {
        let graph = GraphApiError::new("Request code error", "OAuthException", 136_024);
        let answer = Outcome::Answer {
            status: 400,
            graph: Some(Box::new(graph)),
            message: "Request code error".into(),
            fbtrace_id: Some("T1".into()),
            attempts: 1,
        };
        for outcome in [
            Outcome::Sent {
                fbtrace_id: Some("T0".into()),
                attempts: 2,
            },
            answer,
            Outcome::abandoned(true),
        ] {
            let text = serde_json::to_string(&outcome).unwrap();
            let back: Outcome = serde_json::from_str(&text).unwrap();
            assert_eq!(back, outcome);
        }
        let sent = Outcome::Sent {
            fbtrace_id: Some("T0".into()),
            attempts: 2,
        };
        let r = sent
            .answer::<RequestCodeResponse>(Deduplicated::Shared, None)
            .unwrap();
        assert_eq!((r.fbtrace_id(), r.attempts()), (Some("T0"), 2));
        assert!(r.is_shared());
        let e = Outcome::abandoned(true)
            .answer::<RequestCodeResponse>(Deduplicated::Shared, Some(Duration::from_secs(9)))
            .unwrap_err();
        assert!(e.may_have_reached_server() && e.is_shared());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
        let e = Outcome::abandoned(false)
            .answer::<RequestCodeResponse>(Deduplicated::Shared, None)
            .unwrap_err();
        assert!(!e.may_have_reached_server() && e.is_shared());
        let refused = Error::rate_limited_locally("limit", Duration::from_secs(3));
        let e = Outcome::of::<RequestCodeResponse>(&Err(refused))
            .answer::<RequestCodeResponse>(Deduplicated::Shared, None)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(!e.may_have_reached_server());
    }
}
