//! Which failures may be sent again: the table of DESIGN.md as one pure function.

use http::StatusCode;

use crate::error::{Error, ErrorKind, Meaning};
use crate::operation::RetryMode;

/// What a failure says about sending the same request again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryClass {
    /// The server cannot have acted, or says a retry is right: safe to resend.
    Retry,
    /// The server may have acted (a code may have gone out): resend only when allowed.
    Ambiguous,
    /// Resending cannot help.
    Never,
}

impl RetryClass {
    /// A short reason, for the retry decision's trace event.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryClass::Retry => "retryable",
            RetryClass::Ambiguous => "ambiguous",
            RetryClass::Never => "not_retryable",
        }
    }
}

/// Classifies a failure of an operation retried under `mode`.
///
/// - retry: HTTP 429, `is_transient: true`, 503, a connection that failed before the
///   request was written;
/// - ambiguous: an attempt timeout, a connection lost after the write, 500/502/504 and
///   the temporary codes 1, 2, 131000, 131016 without `is_transient: true`, a garbled 2xx;
/// - never: local refusals, other 4xx, `success: false`, and the throttles 136024, 613
///   and 133016 whatever the status or `is_transient` say.
///
/// Under [`RetryMode::OnlyIfNotSent`] only a failure before the write is retried; under
/// [`RetryMode::Idempotent`] (reads) ambiguous failures are retried too.
pub fn classify(mode: RetryMode, error: &Error) -> RetryClass {
    if error.is_local() {
        return RetryClass::Never;
    }
    if !error.may_have_reached_server() {
        return RetryClass::Retry;
    }
    if mode == RetryMode::OnlyIfNotSent {
        return RetryClass::Never;
    }
    let Some(status) = error.status() else {
        return match error.kind() {
            // Attempt timeouts and connections lost after the write.
            ErrorKind::Timeout | ErrorKind::Transport | ErrorKind::Protocol => ambiguous(mode),
            _ => RetryClass::Never,
        };
    };
    let meaning = error.meaning();
    if matches!(
        meaning,
        Some(
            Meaning::RequestCodeThrottled
                | Meaning::RequestCodeFailedTemporarily
                | Meaning::RequestCodeVolumeLimit
                | Meaning::TooManyCodeRequests
                | Meaning::RegistrationRateLimited
        )
    ) {
        // Meta sends 136024 with is_transient: false and "try again after a while":
        // an automatic retry would only extend the block.
        return RetryClass::Never;
    }
    if error.kind() == ErrorKind::Unsuccessful {
        return RetryClass::Never;
    }
    if error.is_transient() == Some(true)
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::SERVICE_UNAVAILABLE
    {
        return RetryClass::Retry;
    }
    if meaning.is_some_and(Meaning::is_temporary) || status.is_server_error() {
        return ambiguous(mode);
    }
    if status.is_success() {
        // A 2xx we could not read: the server acted, we do not know how.
        return ambiguous(mode);
    }
    RetryClass::Never
}

/// An ambiguous failure: a read may simply be sent again.
fn ambiguous(mode: RetryMode) -> RetryClass {
    match mode {
        RetryMode::Idempotent => RetryClass::Retry,
        _ => RetryClass::Ambiguous,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::{GraphApiError, TimeoutKind};
    use crate::meta::ResponseMeta;

    fn answer(status: u16, code: i64, transient: Option<bool>) -> Error {
        let mut g = GraphApiError::new("m", "OAuthException", code);
        g.is_transient = transient;
        Error::from_graph(
            StatusCode::from_u16(status).unwrap(),
            g,
            ResponseMeta::default(),
        )
    }

    fn std(e: &Error) -> RetryClass {
        classify(RetryMode::Standard, e)
    }

    #[test]
    fn retries_429() {
        assert_eq!(std(&answer(429, 4, None)), RetryClass::Retry);
    }

    #[test]
    fn retries_transient_500() {
        assert_eq!(std(&answer(500, 2, Some(true))), RetryClass::Retry);
    }

    #[test]
    fn retries_503_even_with_html() {
        assert_eq!(std(&answer(503, 2, None)), RetryClass::Retry);
        let html = Error::protocol(
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "html",
            b"<html>",
            ResponseMeta::default(),
        );
        assert_eq!(std(&html), RetryClass::Retry);
    }

    #[test]
    fn retries_connect_failure() {
        let e = Error::transport(std::io::Error::other("refused"), false);
        assert_eq!(std(&e), RetryClass::Retry);
    }

    #[test]
    fn connection_lost_after_write_is_ambiguous() {
        let e = Error::transport(std::io::Error::other("reset"), true);
        assert_eq!(std(&e), RetryClass::Ambiguous);
    }

    #[test]
    fn attempt_timeout_is_ambiguous() {
        let e = Error::timeout(TimeoutKind::Attempt, Duration::from_secs(1));
        assert_eq!(std(&e), RetryClass::Ambiguous);
    }

    #[test]
    fn non_transient_500_502_504_are_ambiguous() {
        for s in [500, 502, 504] {
            assert_eq!(std(&answer(s, 1, None)), RetryClass::Ambiguous, "{s}");
            assert_eq!(
                std(&answer(s, 99999, Some(false))),
                RetryClass::Ambiguous,
                "{s}"
            );
        }
    }

    #[test]
    fn never_retries_client_errors() {
        for (s, code) in [(400, 100), (401, 190), (403, 200), (404, 803), (422, 100)] {
            assert_eq!(std(&answer(s, code, None)), RetryClass::Never, "{s}");
        }
    }

    #[test]
    fn retries_client_error_marked_transient() {
        assert_eq!(std(&answer(400, 2, Some(true))), RetryClass::Retry);
    }

    #[test]
    fn never_retries_request_code_throttle_whatever_the_status() {
        for s in [400, 429, 500] {
            assert_eq!(
                std(&answer(s, 136024, Some(true))),
                RetryClass::Never,
                "{s}"
            );
        }
    }

    #[test]
    fn temporary_codes_without_transient_are_ambiguous() {
        for code in [1, 2, 131000, 131016] {
            assert_eq!(
                std(&answer(400, code, None)),
                RetryClass::Ambiguous,
                "{code}"
            );
        }
    }

    #[test]
    fn never_retries_local_refusals() {
        assert_eq!(std(&Error::invalid_input("x")), RetryClass::Never);
        let limited = Error::rate_limited_locally("q", Duration::from_secs(1));
        assert_eq!(std(&limited), RetryClass::Never);
    }

    #[test]
    fn idempotent_reads_retry_ambiguous_failures_but_never_throttles() {
        let m = RetryMode::Idempotent;
        for s in [500, 502, 504] {
            assert_eq!(classify(m, &answer(s, 1, None)), RetryClass::Retry, "{s}");
        }
        let lost = Error::transport(std::io::Error::other("reset"), true);
        assert_eq!(classify(m, &lost), RetryClass::Retry);
        let timeout = Error::timeout(TimeoutKind::Attempt, Duration::from_secs(1));
        assert_eq!(classify(m, &timeout), RetryClass::Retry);
        assert_eq!(classify(m, &answer(400, 100, None)), RetryClass::Never);
        assert_eq!(classify(m, &answer(400, 136024, None)), RetryClass::Never);
    }

    #[test]
    fn only_if_not_sent_retries_connect_failures_only() {
        let m = RetryMode::OnlyIfNotSent;
        assert_eq!(classify(m, &answer(429, 4, Some(true))), RetryClass::Never);
        assert_eq!(classify(m, &answer(503, 2, Some(true))), RetryClass::Never);
        let e = Error::transport(std::io::Error::other("refused"), false);
        assert_eq!(classify(m, &e), RetryClass::Retry);
    }
}
