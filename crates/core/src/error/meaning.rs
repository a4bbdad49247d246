//! The Graph error codes these calls answer, each with what a caller should do.
//!
//! Collected from Meta's error-code table and error bodies captured from the live API;
//! the spec's own examples are a subset. Unknown codes have no meaning and fall back to
//! the HTTP status.

use std::fmt;
use std::time::Duration;

use super::kind::ErrorKind;

/// How long Meta blocks a number's registration after 133016 (its documented 72 hours).
pub(crate) const REGISTRATION_BLOCK: Duration = Duration::from_secs(72 * 3600);

/// What a throttling answer says about waiting, read once here so the rate limiter (its
/// cooldowns) and the retry policy (its waits) agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Throttle {
    /// Meta's wait: its hint (`Retry-After`, `estimated_time_to_regain_access`), else the
    /// block it documents for the code (72 hours for 133016); `None` when it gave neither.
    pub hint: Option<Duration>,
    /// Whether Meta throttled the whole app (code 4 with an `X-App-Usage` header) rather
    /// than this number.
    pub app_wide: bool,
}

impl Throttle {
    /// Meta's wait, or `default` when it gave none.
    pub fn wait_or(self, default: Duration) -> Duration {
        self.hint.unwrap_or(default)
    }
}

/// A known Graph error code, classified by what a caller should do about it.
///
/// ```
/// use wa_verify_core::Meaning;
/// let m = Meaning::from_code(136024, Some(2388367)).unwrap();
/// assert_eq!(m, Meaning::RequestCodeVolumeLimit);
/// assert_eq!(m.as_str(), "request_code_volume_limit");
/// // A subcode means something only with its code: 2388093 under 100 is no wrong code.
/// assert_eq!(Meaning::from_code(100, Some(2388093)), Some(Meaning::InvalidParameter));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Meaning {
    /// 1: an unknown error; temporary, but a code may already have gone out.
    UnknownError,
    /// 2: the service is temporarily unavailable; a code may already have gone out.
    ServiceUnavailable,
    /// 4: the app's request limit was reached.
    AppRateLimited,
    /// 10 and 200–299: the app lacks a permission for this number.
    PermissionDenied,
    /// 100: a parameter is invalid or missing.
    InvalidParameter,
    /// 190: the access token is expired or invalid (the subcode says which).
    AccessTokenInvalid,
    /// 368: temporarily blocked for a policy violation.
    PolicyBlocked,
    /// 613: too many verification code requests (the spec's 422 for pre-verified
    /// numbers): a throttle.
    TooManyCodeRequests,
    /// 80007: the WhatsApp Business Account's rate limit was reached.
    BusinessRateLimited,
    /// 130429: the Cloud API throughput limit was reached.
    ThroughputRateLimited,
    /// 131000: something went wrong on Meta's side; a code may already have gone out.
    ServiceError,
    /// 131016: the service is overloaded; a code may already have gone out.
    ServiceOverloaded,
    /// 133005: the two-step verification PIN does not match.
    PinMismatch,
    /// 133006: the number must be verified again before registering.
    ReverificationNeeded,
    /// 133008: too many PIN guesses; `error_data.details` says how long to wait.
    TooManyPinGuesses,
    /// 133009: PIN guessed too fast; `error_data.details` says how long to wait.
    PinGuessedTooFast,
    /// 133010: the number is not registered.
    NotRegistered,
    /// 133015: the number was deleted recently; wait 5 minutes before registering.
    RegisterTooSoon,
    /// 133016: 10 register/deregister calls per number per 72 hours; blocked for 72 hours.
    RegistrationRateLimited,
    /// Another code in 133005–133016: a registration error.
    RegistrationError,
    /// 136024 with a subcode other than the two below, "Request code error": a throttle
    /// sent with `is_transient: false` and "try again after a while" (default cooldown 1 h).
    RequestCodeThrottled,
    /// 136024/2388091, "Request code failed … wait 1 hour": temporary, though it has been
    /// seen to recur for over a day (default cooldown 1 h).
    RequestCodeFailedTemporarily,
    /// 136024/2388367, the request-code volume limit: hours to a day, and asking early may
    /// restart it (default cooldown 24 h).
    RequestCodeVolumeLimit,
    /// 136025 (subcode 2388093), "Verify code error": the code entered is wrong.
    WrongCode,
}

impl Meaning {
    /// The meaning of a Graph `code` and, where it changes what to do, its subcode: a
    /// subcode counts only together with its code.
    pub fn from_code(code: i64, subcode: Option<i64>) -> Option<Self> {
        Some(match (code, subcode) {
            (136024, Some(2388091)) => Meaning::RequestCodeFailedTemporarily,
            (136024, Some(2388367)) => Meaning::RequestCodeVolumeLimit,
            _ => return Self::from_code_only(code),
        })
    }

    fn from_code_only(code: i64) -> Option<Self> {
        Some(match code {
            1 => Meaning::UnknownError,
            2 => Meaning::ServiceUnavailable,
            4 => Meaning::AppRateLimited,
            10 | 200..=299 => Meaning::PermissionDenied,
            100 => Meaning::InvalidParameter,
            190 => Meaning::AccessTokenInvalid,
            368 => Meaning::PolicyBlocked,
            613 => Meaning::TooManyCodeRequests,
            80007 => Meaning::BusinessRateLimited,
            130429 => Meaning::ThroughputRateLimited,
            131000 => Meaning::ServiceError,
            131016 => Meaning::ServiceOverloaded,
            133005 => Meaning::PinMismatch,
            133006 => Meaning::ReverificationNeeded,
            133008 => Meaning::TooManyPinGuesses,
            133009 => Meaning::PinGuessedTooFast,
            133010 => Meaning::NotRegistered,
            133015 => Meaning::RegisterTooSoon,
            133016 => Meaning::RegistrationRateLimited,
            133007 | 133011..=133014 => Meaning::RegistrationError,
            136024 => Meaning::RequestCodeThrottled,
            136025 => Meaning::WrongCode,
            _ => return None,
        })
    }

    /// The snake_case name used in JSON output and spans.
    pub fn as_str(self) -> &'static str {
        match self {
            Meaning::UnknownError => "unknown_error",
            Meaning::ServiceUnavailable => "service_unavailable",
            Meaning::AppRateLimited => "app_rate_limited",
            Meaning::PermissionDenied => "permission_denied",
            Meaning::InvalidParameter => "invalid_parameter",
            Meaning::AccessTokenInvalid => "access_token_invalid",
            Meaning::PolicyBlocked => "policy_blocked",
            Meaning::TooManyCodeRequests => "too_many_code_requests",
            Meaning::BusinessRateLimited => "business_rate_limited",
            Meaning::ThroughputRateLimited => "throughput_rate_limited",
            Meaning::ServiceError => "service_error",
            Meaning::ServiceOverloaded => "service_overloaded",
            Meaning::PinMismatch => "pin_mismatch",
            Meaning::ReverificationNeeded => "reverification_needed",
            Meaning::TooManyPinGuesses => "too_many_pin_guesses",
            Meaning::PinGuessedTooFast => "pin_guessed_too_fast",
            Meaning::NotRegistered => "not_registered",
            Meaning::RegisterTooSoon => "register_too_soon",
            Meaning::RegistrationRateLimited => "registration_rate_limited",
            Meaning::RegistrationError => "registration_error",
            Meaning::RequestCodeThrottled => "request_code_throttled",
            Meaning::RequestCodeFailedTemporarily => "request_code_failed_temporarily",
            Meaning::RequestCodeVolumeLimit => "request_code_volume_limit",
            Meaning::WrongCode => "wrong_code",
        }
    }

    /// What to do next, in a few words for a person.
    pub fn advice(self) -> &'static str {
        match self {
            Meaning::UnknownError | Meaning::ServiceError => {
                "temporary Meta error; a code may already have been sent: check before asking again"
            }
            Meaning::ServiceUnavailable | Meaning::ServiceOverloaded => {
                "Meta is temporarily unavailable; try again in a few minutes"
            }
            Meaning::AppRateLimited
            | Meaning::BusinessRateLimited
            | Meaning::ThroughputRateLimited => "rate limited by Meta: wait before calling again",
            Meaning::RequestCodeThrottled | Meaning::RequestCodeFailedTemporarily => {
                "Meta is refusing codes for this number for now: wait an hour or more; asking early may restart the wait"
            }
            Meaning::RequestCodeVolumeLimit => {
                "too many codes requested for this number: wait up to a day; asking early may restart the wait (attempts in WhatsApp Manager count too)"
            }
            Meaning::TooManyCodeRequests => {
                "too many code requests for this number: wait 10 minutes or more before asking again"
            }
            Meaning::PermissionDenied => {
                "check that the token's app has whatsapp_business_management permission for this number"
            }
            Meaning::InvalidParameter => "check the parameters: one is invalid or missing",
            Meaning::AccessTokenInvalid => "check the token: it is expired or invalid",
            Meaning::PolicyBlocked => "temporarily blocked for a policy violation: wait and review Meta's policies",
            Meaning::PinMismatch => "the two-step verification PIN is wrong",
            Meaning::ReverificationNeeded => "verify the number again (request_code, verify_code) before registering",
            Meaning::TooManyPinGuesses | Meaning::PinGuessedTooFast => {
                "too many PIN attempts: wait as error_data says before trying again"
            }
            Meaning::NotRegistered => "the number is not registered",
            Meaning::RegisterTooSoon => "wait 5 minutes before registering this number",
            Meaning::RegistrationRateLimited => {
                "10 register/deregister calls in 72 hours reached: the number is blocked for 72 hours"
            }
            Meaning::RegistrationError => "registration failed: see the message",
            Meaning::WrongCode => "the code is wrong: check it and try again, or request a new one",
        }
    }

    /// The kind this code forces whatever the HTTP status, when it changes what the caller
    /// must do: throttles are `rate_limited`, a wrong code `wrong_code`, a token error `auth`.
    pub fn kind_override(self) -> Option<ErrorKind> {
        match self {
            Meaning::AppRateLimited
            | Meaning::BusinessRateLimited
            | Meaning::ThroughputRateLimited
            | Meaning::RequestCodeThrottled
            | Meaning::RequestCodeFailedTemporarily
            | Meaning::RequestCodeVolumeLimit
            | Meaning::TooManyCodeRequests
            | Meaning::RegistrationRateLimited => Some(ErrorKind::RateLimited),
            Meaning::WrongCode => Some(ErrorKind::WrongCode),
            Meaning::AccessTokenInvalid => Some(ErrorKind::Auth),
            _ => None,
        }
    }

    /// Whether this is a throttle: the number or app must not be called until a wait passes.
    pub fn is_throttle(self) -> bool {
        self.kind_override() == Some(ErrorKind::RateLimited)
    }

    /// Temporary failures after which a code may already have been sent (1, 2, 131000,
    /// 131016): retried only with `is_transient: true` or when ambiguous retries are on.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            Meaning::UnknownError
                | Meaning::ServiceUnavailable
                | Meaning::ServiceError
                | Meaning::ServiceOverloaded
        )
    }
}

impl fmt::Display for Meaning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;
    use crate::error::{Error, GraphApiError};
    use crate::meta::ResponseMeta;
    use crate::operation::RetryMode;
    use crate::retry::{classify, RetryClass};

    fn answer(status: u16, code: i64) -> Error {
        let g = GraphApiError::new("m", "OAuthException", code);
        Error::from_graph(
            StatusCode::from_u16(status).unwrap(),
            g,
            ResponseMeta::default(),
        )
    }

    /// One test per known code: its meaning, its kind at HTTP 400, and the retry decision.
    macro_rules! code_cases {
        ($($name:ident: $code:expr => $meaning:ident, $kind:ident, $class:ident;)*) => {$(
            #[test]
            fn $name() {
                let e = answer(400, $code);
                assert_eq!(e.meaning(), Some(Meaning::$meaning));
                assert_eq!(e.kind(), ErrorKind::$kind);
                assert_eq!(classify(RetryMode::Standard, &e), RetryClass::$class);
                assert!(!Meaning::$meaning.advice().is_empty());
                assert_eq!(Meaning::$meaning.as_str().to_lowercase(), Meaning::$meaning.as_str());
            }
        )*};
    }

    code_cases! {
        code_1_unknown_error_is_ambiguous: 1 => UnknownError, BadRequest, Ambiguous;
        code_2_service_unavailable_is_ambiguous: 2 => ServiceUnavailable, BadRequest, Ambiguous;
        code_4_app_throttle_is_rate_limited: 4 => AppRateLimited, RateLimited, Never;
        code_10_is_permission: 10 => PermissionDenied, BadRequest, Never;
        code_100_invalid_parameter: 100 => InvalidParameter, BadRequest, Never;
        code_190_token_is_auth: 190 => AccessTokenInvalid, Auth, Never;
        code_200_is_permission: 200 => PermissionDenied, BadRequest, Never;
        code_299_is_permission: 299 => PermissionDenied, BadRequest, Never;
        code_368_policy_block: 368 => PolicyBlocked, BadRequest, Never;
        // See: issue 16 (613 was not treated as a throttle).
        code_613_too_many_code_requests: 613 => TooManyCodeRequests, RateLimited, Never;
        code_80007_business_throttle: 80007 => BusinessRateLimited, RateLimited, Never;
        code_130429_throughput_throttle: 130429 => ThroughputRateLimited, RateLimited, Never;
        code_131000_service_error_is_ambiguous: 131000 => ServiceError, BadRequest, Ambiguous;
        code_131016_overloaded_is_ambiguous: 131016 => ServiceOverloaded, BadRequest, Ambiguous;
        code_133005_pin_mismatch: 133005 => PinMismatch, BadRequest, Never;
        code_133006_reverification: 133006 => ReverificationNeeded, BadRequest, Never;
        code_133008_too_many_pin_guesses: 133008 => TooManyPinGuesses, BadRequest, Never;
        code_133009_pin_too_fast: 133009 => PinGuessedTooFast, BadRequest, Never;
        code_133010_not_registered: 133010 => NotRegistered, BadRequest, Never;
        code_133015_wait_5_minutes: 133015 => RegisterTooSoon, BadRequest, Never;
        code_133016_registration_throttle: 133016 => RegistrationRateLimited, RateLimited, Never;
        code_136024_request_code_throttle: 136024 => RequestCodeThrottled, RateLimited, Never;
        code_136025_wrong_code: 136025 => WrongCode, WrongCode, Never;
    }

    fn with_subcode(code: i64, subcode: i64) -> Error {
        let mut g = GraphApiError::new("m", "OAuthException", code);
        g.error_subcode = Some(subcode);
        Error::from_graph(StatusCode::BAD_REQUEST, g, ResponseMeta::default())
    }

    #[test]
    fn subcodes_of_136024_say_how_long_and_count_only_with_their_code() {
        for (sub, want) in [
            (2388091, Meaning::RequestCodeFailedTemporarily),
            (2388367, Meaning::RequestCodeVolumeLimit),
            (42, Meaning::RequestCodeThrottled),
        ] {
            let e = with_subcode(136024, sub);
            assert_eq!(e.meaning(), Some(want), "{sub}");
            assert_eq!(e.kind(), ErrorKind::RateLimited);
            assert_eq!(classify(RetryMode::Standard, &e), RetryClass::Never);
            assert!(want.is_throttle());
        }
        // 2388093 is verify_code's wrong-code subcode, but only under 136025.
        assert_eq!(
            with_subcode(100, 2388093).meaning(),
            Some(Meaning::InvalidParameter)
        );
        assert_eq!(
            with_subcode(136025, 2388093).meaning(),
            Some(Meaning::WrongCode)
        );
        assert_eq!(
            with_subcode(100, 2388367).meaning(),
            Some(Meaning::InvalidParameter)
        );
    }

    #[test]
    fn permission_codes_at_403_are_permission() {
        assert_eq!(answer(403, 200).kind(), ErrorKind::Permission);
    }

    #[test]
    fn code_2_marked_transient_is_retried_even_at_400() {
        let mut g = GraphApiError::new("m", "OAuthException", 2);
        g.is_transient = Some(true);
        let e = Error::from_graph(StatusCode::BAD_REQUEST, g, ResponseMeta::default());
        assert_eq!(classify(RetryMode::Standard, &e), RetryClass::Retry);
    }

    #[test]
    fn throttles_at_429_are_retried_but_136024_never() {
        assert_eq!(
            classify(RetryMode::Standard, &answer(429, 4)),
            RetryClass::Retry
        );
        assert_eq!(
            classify(RetryMode::Standard, &answer(429, 136024)),
            RetryClass::Never
        );
    }

    #[test]
    fn unknown_codes_fall_back_to_the_status() {
        let e = answer(422, 424242);
        assert_eq!(e.meaning(), None);
        assert_eq!(e.kind(), ErrorKind::Unprocessable);
        assert_eq!(
            classify(RetryMode::Standard, &answer(502, 424242)),
            RetryClass::Ambiguous
        );
    }
}
