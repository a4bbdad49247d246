//! What kind of failure happened: the caller's next question, as a small `Copy` enum.

use std::fmt;

use http::StatusCode;

/// What kind of failure happened, i.e. what the caller may do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// HTTP 400: a parameter was refused.
    BadRequest,
    /// HTTP 401 or Graph code 190: the token is missing, invalid or expired.
    Auth,
    /// HTTP 403: the app may not act on this number.
    Permission,
    /// HTTP 404: the number is unknown.
    NotFound,
    /// HTTP 422: the number is not eligible right now.
    Unprocessable,
    /// HTTP 429, a Graph throttle code, or a local limit: wait before calling again.
    RateLimited,
    /// HTTP 5xx.
    Server,
    /// An attempt timeout or the overall deadline fired.
    Timeout,
    /// The connection failed (refused, DNS, TLS, reset).
    Transport,
    /// The answer was not understood (HTML, empty, truncated, oversized, wrong JSON).
    Protocol,
    /// HTTP 200 with `success: false`.
    Unsuccessful,
    /// Refused locally before anything was sent.
    InvalidInput,
    /// Graph code 136025: the verification code is wrong.
    WrongCode,
    /// The number's status says the step cannot work now (on the WhatsApp Business app or
    /// On-Premises API, or a display name not approved); nothing was sent. See
    /// [`Error::reason`](crate::Error::reason).
    Precondition,
}

impl ErrorKind {
    /// The snake_case name used in JSON output and spans (`rate_limited`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Auth => "auth",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unprocessable => "unprocessable",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transport => "transport",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Unsuccessful => "unsuccessful",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::WrongCode => "wrong_code",
            ErrorKind::Precondition => "precondition",
        }
    }

    /// The kind named `name` (as [`as_str`](Self::as_str) writes it), else `fallback`.
    pub(crate) fn from_str_or(name: &str, fallback: ErrorKind) -> ErrorKind {
        const ALL: [ErrorKind; 14] = [
            ErrorKind::BadRequest,
            ErrorKind::Auth,
            ErrorKind::Permission,
            ErrorKind::NotFound,
            ErrorKind::Unprocessable,
            ErrorKind::RateLimited,
            ErrorKind::Server,
            ErrorKind::Timeout,
            ErrorKind::Transport,
            ErrorKind::Protocol,
            ErrorKind::Unsuccessful,
            ErrorKind::InvalidInput,
            ErrorKind::WrongCode,
            ErrorKind::Precondition,
        ];
        ALL.into_iter()
            .find(|k| k.as_str() == name)
            .unwrap_or(fallback)
    }

    /// The kind an HTTP error status stands for when the body has no overriding code.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => ErrorKind::Auth,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            422 => ErrorKind::Unprocessable,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            // 400 and every other 4xx.
            400..=499 => ErrorKind::BadRequest,
            _ => ErrorKind::Protocol,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which timeout fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// One attempt took longer than the attempt timeout.
    Attempt,
    /// The whole call, backoff sleeps included, passed its deadline.
    Deadline,
}
