//! What every answer carries besides its body: trace ids, usage headers and wait hints.

use std::time::{Duration, SystemTime};

use http::header::{HeaderName, RETRY_AFTER};
use http::{HeaderMap, HeaderValue};

// Typed names: looking them up does not parse a string per request.
const TRACE_ID: HeaderName = HeaderName::from_static("x-fb-trace-id");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-fb-request-id");
const BUSINESS_USAGE: HeaderName = HeaderName::from_static("x-business-use-case-usage");
const APP_USAGE: HeaderName = HeaderName::from_static("x-app-usage");

/// The longest wait a server hint may ask for: Meta's longest documented block (72 hours);
/// anything above is clamped, so a hostile or broken header cannot park a caller for years.
pub(crate) const MAX_HINT: Duration = Duration::from_secs(72 * 3600);

/// Metadata of one HTTP answer, successful or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseMeta {
    // Header values, not Strings: cloning one shares its bytes, no allocation per answer.
    fbtrace_id: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    /// Present only when the answer had a hint or a usage header: boxed, so the common
    /// answer, moved a few times through every layer, is half the size.
    hints: Option<Box<Hints>>,
    attempts: u32,
}

/// The waits an answer asked for, and the usage headers they came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Hints {
    retry_after: Option<Duration>,
    regain_access: Option<Duration>,
    business_use_case_usage: Option<String>,
    app_usage: Option<String>,
}

impl ResponseMeta {
    /// Like [`from_headers`](Self::from_headers), reading the wall clock only when a
    /// `Retry-After` needs it (most answers have none).
    pub(crate) fn read(headers: &HeaderMap) -> Self {
        let now = if headers.contains_key(RETRY_AFTER) {
            SystemTime::now()
        } else {
            SystemTime::UNIX_EPOCH
        };
        Self::from_headers(headers, now)
    }

    /// Reads the headers Meta sends: `x-fb-trace-id`, `x-fb-request-id`, `Retry-After`,
    /// `X-Business-Use-Case-Usage` and `X-App-Usage`. Malformed values are ignored.
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Self {
        let text = |name: &HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let business_use_case_usage = text(&BUSINESS_USAGE);
        let app_usage = text(&APP_USAGE);
        let regain_access = [&business_use_case_usage, &app_usage]
            .into_iter()
            .flatten()
            .filter_map(|h| regain_access(h))
            .max();
        let hints = Hints {
            retry_after: text(&RETRY_AFTER).and_then(|v| retry_after(&v, now)),
            regain_access,
            business_use_case_usage,
            app_usage,
        };
        Self {
            fbtrace_id: visible(headers, &TRACE_ID),
            request_id: visible(headers, &REQUEST_ID),
            hints: (hints != Hints::default()).then(|| Box::new(hints)),
            attempts: 1,
        }
    }

    /// The `x-fb-trace-id` header: quote it to Meta support.
    pub fn fbtrace_id(&self) -> Option<&str> {
        self.fbtrace_id.as_ref().and_then(|v| v.to_str().ok())
    }

    /// The `x-fb-request-id` header.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_ref().and_then(|v| v.to_str().ok())
    }

    /// The `Retry-After` header (seconds or HTTP date), clamped to 72 hours.
    pub fn retry_after(&self) -> Option<Duration> {
        self.hints.as_ref().and_then(|h| h.retry_after)
    }

    /// The largest `estimated_time_to_regain_access` (minutes on the wire) in the usage
    /// headers, clamped to 72 hours.
    pub fn regain_access(&self) -> Option<Duration> {
        self.hints.as_ref().and_then(|h| h.regain_access)
    }

    /// The longest wait the server asked for, from either hint.
    pub fn wait_hint(&self) -> Option<Duration> {
        self.retry_after().max(self.regain_access())
    }

    /// The raw `X-Business-Use-Case-Usage` header.
    pub fn business_use_case_usage(&self) -> Option<&str> {
        self.hints.as_ref()?.business_use_case_usage.as_deref()
    }

    /// The raw `X-App-Usage` header.
    pub fn app_usage(&self) -> Option<&str> {
        self.hints.as_ref()?.app_usage.as_deref()
    }

    /// How many attempts the call made, retries included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The trace id of an answer given again (shared, replayed).
    pub(crate) fn set_fbtrace_id(&mut self, id: Option<&str>) {
        self.fbtrace_id = id.and_then(|t| HeaderValue::from_str(t).ok());
    }

    pub(crate) fn set_attempts(&mut self, attempts: u32) {
        self.attempts = attempts;
    }
}

/// A header whose value is visible ASCII and not blank, shared rather than copied.
fn visible(headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    headers
        .get(name)
        .filter(|v| v.to_str().is_ok_and(|s| !s.trim().is_empty()))
        .cloned()
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        // Saturate rather than fail on absurd digit strings; the clamp below bounds it.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_HINT))
}

/// The largest `estimated_time_to_regain_access` anywhere in a usage header (minutes).
pub(crate) fn regain_access(header: &str) -> Option<Duration> {
    fn walk(v: &serde_json::Value) -> Option<f64> {
        match v {
            serde_json::Value::Object(map) => map
                .iter()
                .filter_map(|(k, v)| match (k.as_str(), v) {
                    ("estimated_time_to_regain_access", serde_json::Value::Number(n)) => n.as_f64(),
                    _ => walk(v),
                })
                .reduce(f64::max),
            serde_json::Value::Array(items) => items.iter().filter_map(walk).reduce(f64::max),
            _ => None,
        }
    }
    let minutes = walk(&serde_json::from_str(header).ok()?)?;
    if !minutes.is_finite() || minutes <= 0.0 {
        return (minutes == 0.0).then_some(Duration::ZERO);
    }
    Some(Duration::from_secs_f64(
        (minutes * 60.0).min(MAX_HINT.as_secs_f64()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every answer is moved a few times through every layer: the hints most answers do
    /// not have stay out of line.
    #[test]
    fn an_answer_without_hints_is_small_and_has_none() {
        assert!(std::mem::size_of::<ResponseMeta>() <= 96);
        let mut headers = HeaderMap::new();
        headers.insert(TRACE_ID, HeaderValue::from_static("AbC123"));
        let meta = ResponseMeta::from_headers(&headers, SystemTime::UNIX_EPOCH);
        assert!(meta.hints.is_none());
        assert_eq!(meta.fbtrace_id(), Some("AbC123"));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let meta = ResponseMeta::from_headers(&headers, SystemTime::UNIX_EPOCH);
        assert_eq!(meta.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(meta.wait_hint(), Some(Duration::from_secs(7)));
        assert_eq!(meta.app_usage(), None);
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(retry_after("3", at(0)), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 120 ", at(0)), Some(Duration::from_secs(120)));
    }

    #[test]
    fn retry_after_as_http_date() {
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            retry_after(date, at(784_111_770)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(date, at(784_111_800)), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_ignored_and_huge_is_clamped() {
        assert_eq!(retry_after("soon", at(0)), None);
        assert_eq!(retry_after("", at(0)), None);
        assert_eq!(retry_after("-5", at(0)), None);
        assert_eq!(
            retry_after("99999999999999999999999", at(0)),
            Some(MAX_HINT)
        );
    }

    #[test]
    fn usage_header_regain_access_in_minutes() {
        let h = r#"{"102345":[{"type":"whatsapp","call_count":100,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":5},{"type":"x","estimated_time_to_regain_access":2}]}"#;
        assert_eq!(regain_access(h), Some(Duration::from_secs(300)));
        assert_eq!(regain_access(r#"{"call_count":5}"#), None);
        assert_eq!(regain_access("not json"), None);
        assert_eq!(
            regain_access(r#"{"a":[{"estimated_time_to_regain_access":1e300}]}"#),
            Some(MAX_HINT)
        );
    }

    #[test]
    fn meta_reads_every_header() {
        let mut h = HeaderMap::new();
        h.insert("x-fb-trace-id", "AbCdEfGhIjKlMnOpQrStUvW".parse().unwrap());
        h.insert("x-fb-request-id", "req-1".parse().unwrap());
        h.insert("retry-after", "7".parse().unwrap());
        h.insert(
            "x-app-usage",
            r#"{"call_count":100,"total_time":20,"total_cputime":20}"#
                .parse()
                .unwrap(),
        );
        h.insert(
            "x-business-use-case-usage",
            r#"{"1":[{"estimated_time_to_regain_access":1}]}"#.parse().unwrap(),
        );
        let m = ResponseMeta::from_headers(&h, at(0));
        assert_eq!(m.fbtrace_id(), Some("AbCdEfGhIjKlMnOpQrStUvW"));
        assert_eq!(m.request_id(), Some("req-1"));
        assert_eq!(m.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(m.regain_access(), Some(Duration::from_secs(60)));
        assert_eq!(m.wait_hint(), Some(Duration::from_secs(60)));
        assert!(m.app_usage().unwrap().contains("call_count"));
        assert_eq!(m.attempts(), 1);
    }
}
