//! Human and JSON rendering of outcomes and errors, and their exit codes.

use std::str::FromStr;
use std::time::SystemTime;

use serde_json::{json, Value};
use wa_verify_core::{Error, ErrorKind, Response};

use crate::signals::Signal;

/// Exit code: the API said `success: true`.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit code: every failure after a request may have been sent, or of the tool itself.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit code: usage errors and input refused before anything was sent.
pub(crate) const EXIT_USAGE: u8 = 2;

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Format {
    /// For a person.
    #[default]
    Text,
    /// Exactly one JSON object on stdout.
    Json,
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err(Error::invalid_input(format!(
                "--output must be text or json, got {s:?}"
            ))),
        }
    }
}

/// The exit code for an error: 2 when nothing was sent because the input was refused.
pub(crate) fn exit_code(e: &Error) -> u8 {
    if e.kind() == ErrorKind::InvalidInput {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// The error object of the JSON output.
pub(crate) fn error_json(e: &Error) -> Value {
    let g = e.graph();
    json!({
        "kind": e.kind().as_str(),
        "status": e.status().map(|s| s.as_u16()),
        "code": g.map(|g| g.code),
        "error_subcode": g.and_then(|g| g.error_subcode),
        "type": g.map(|g| g.error_type.clone()),
        "message": g.map_or_else(|| e.to_string(), |g| g.message.clone()),
        "fbtrace_id": e.fbtrace_id(),
        "is_transient": e.is_transient(),
        "retry_after_ms": e.retry_after().map(|d| d.as_millis() as u64),
        "meaning": e.meaning().map(|m| m.as_str()),
        "error_user_title": g.and_then(|g| g.error_user_title.clone()),
        "error_user_msg": g.and_then(|g| g.error_user_msg.clone()),
        "error_data": g.and_then(|g| g.error_data.clone()),
        "href": g.and_then(|g| g.href.clone()),
        "extra": g.map(|g| Value::Object(g.extra.clone())),
        "may_have_reached_server": e.may_have_reached_server(),
        "reason": e.reason(),
        "causes": causes(e),
    })
}

/// The error's cause chain, outermost first (the TLS reason, the OS error): what the
/// text output prints as "caused by". Our errors and their sources never hold a secret.
pub(crate) fn causes(e: &Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out
}

/// Prints a usage error (a missing, unknown or bad flag) and returns exit code 2. In JSON
/// it is one object like every other error, so scripts parse every exit the same way.
pub(crate) fn usage(format: Format, message: &str) -> u8 {
    match format {
        Format::Json => println!(
            "{}",
            json!({
                "success": false,
                "attempts": 0,
                "fbtrace_id": null,
                "error": {
                    "kind": "invalid_input",
                    "message": message,
                    "may_have_reached_server": false,
                    "causes": [],
                },
            })
        ),
        Format::Text => eprintln!("error: {message}"),
    }
    EXIT_USAGE
}

/// Prints the outcome of a call a signal stopped, and returns 130 (SIGINT) or 143.
pub(crate) fn cancelled(
    format: Format,
    operation: &str,
    signal: Signal,
    may_have_reached_server: bool,
) -> u8 {
    let message = if may_have_reached_server {
        format!(
            "cancelled by {} after the request was sent: it may have reached Meta, so a code may have been sent; check before asking again",
            signal.name()
        )
    } else {
        format!("cancelled by {} before anything was sent", signal.name())
    };
    match format {
        Format::Json => println!(
            "{}",
            json!({
                "success": false,
                "operation": operation,
                "fbtrace_id": null,
                "error": {
                    "kind": "cancelled",
                    "message": message,
                    "signal": signal.name(),
                    "may_have_reached_server": may_have_reached_server,
                    "causes": [],
                },
            })
        ),
        Format::Text => eprintln!("error: {message}"),
    }
    signal.exit_code()
}

/// Prints an input refused before any request and returns exit code 2.
pub(crate) fn refused(format: Format, e: &Error) -> u8 {
    match format {
        Format::Json => println!(
            "{}",
            json!({"success": false, "attempts": 0, "fbtrace_id": null, "error": error_json(e)})
        ),
        Format::Text => eprintln!("error: {e}"),
    }
    exit_code(e)
}

/// " (attempts: N, fbtrace_id: X)".
pub(crate) fn details(attempts: u32, fbtrace_id: Option<&str>) -> String {
    match fbtrace_id {
        Some(t) => format!(" (attempts: {attempts}, fbtrace_id: {t})"),
        None => format!(" (attempts: {attempts})"),
    }
}

/// Prints a call's outcome and returns its exit code; `fields` adds one field of the
/// answer to the JSON (`"status": {...}`).
pub(crate) fn outcome<T>(
    format: Format,
    operation: &str,
    result: &Result<Response<T>, Error>,
    text: impl FnOnce(&Response<T>) -> String,
    fields: impl FnOnce(&Response<T>) -> Option<(&'static str, Value)>,
) -> u8 {
    match result {
        Ok(r) => {
            let mut extra = json!({
                "attempts": r.attempts(),
                "fbtrace_id": r.fbtrace_id(),
                "already_sent": r.already_sent().is_some(),
                "shared": r.is_shared(),
                "replayed": r.is_replayed(),
            });
            if let (Some((name, value)), Some(map)) = (fields(r), extra.as_object_mut()) {
                map.insert(name.to_owned(), value);
            }
            if let (Some(a), Some(map)) = (r.already_sent(), extra.as_object_mut()) {
                map.insert("sent_at".into(), rfc3339(a.sent_at).into());
                map.insert("expires_at".into(), rfc3339(a.expires_at).into());
                map.insert("method".into(), a.method.as_str().into());
            }
            success(format, operation, extra, || text(r))
        }
        Err(e) => failure(format, operation, e),
    }
}

/// A time as RFC 3339 in UTC with milliseconds: `2026-12-02T16:00:41.123Z`, the form the
/// sandbox's outbox uses for `sent_at`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    wa_verify_sandbox::rfc3339(t)
}

/// Prints a success: one JSON object `{"success": true, "operation", ...extra,
/// "error": null}`, or `text` on stdout. Returns exit code 0.
pub(crate) fn success(
    format: Format,
    operation: &str,
    extra: Value,
    text: impl FnOnce() -> String,
) -> u8 {
    match format {
        Format::Json => {
            let mut out = json!({"success": true, "operation": operation});
            if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
                out.extend(extra);
                out.insert("error".to_owned(), Value::Null);
            }
            println!("{out}");
        }
        Format::Text => println!("{}", text()),
    }
    EXIT_OK
}

/// Prints a failure: one JSON object with the error, or the error for a person on
/// stderr. Returns its exit code.
pub(crate) fn failure(format: Format, operation: &str, e: &Error) -> u8 {
    match format {
        Format::Json => println!(
            "{}",
            json!({
                "success": false,
                "operation": operation,
                "attempts": e.attempts(),
                "fbtrace_id": e.fbtrace_id(),
                "already_sent": false,
                "shared": e.is_shared(),
                "replayed": e.is_replayed(),
                "error": error_json(e),
            })
        ),
        Format::Text => eprintln!("{}", error_text(e)),
    }
    exit_code(e)
}

/// Prints a report (`bench`): the JSON object itself, or `text` for a person.
pub(crate) fn report(format: Format, report: &Value, text: impl FnOnce() -> String) -> u8 {
    match format {
        Format::Json => println!("{report}"),
        Format::Text => println!("{}", text()),
    }
    EXIT_OK
}

/// The error for a person: what happened, what Meta said, what to do, what to quote.
pub(crate) fn error_text(e: &Error) -> String {
    let mut out = format!("error: {e}");
    if let Some(g) = e.graph() {
        if let Some(title) = &g.error_user_title {
            out.push_str(&format!("\n  {title}"));
        }
        if let Some(msg) = &g.error_user_msg {
            out.push_str(&format!("\n  {msg}"));
        }
    }
    let next = match (e.meaning(), e.kind()) {
        (Some(m), _) => Some(m.advice().to_owned()),
        (None, ErrorKind::RateLimited) => Some("rate limited: wait before calling again".to_owned()),
        (None, ErrorKind::Auth) => Some("check the token: it is missing, expired or invalid".to_owned()),
        (None, ErrorKind::Timeout | ErrorKind::Transport) if e.may_have_reached_server() => Some(
            "the request may have reached Meta: a code may have been sent; check before asking again".to_owned(),
        ),
        _ => None,
    };
    if let Some(next) = next {
        out.push_str(&format!("\n  what to do: {next}"));
    }
    if let Some(wait) = e.retry_after() {
        out.push_str(&format!(
            "\n  retry after: {}",
            wa_verify_core::config::duration::format(wait)
        ));
    }
    if let Some(t) = e.fbtrace_id() {
        out.push_str(&format!("\n  fbtrace_id: {t} (quote it to Meta support)"));
    }
    if e.is_shared() {
        out.push_str("\n  shared: this is the outcome of a concurrent call for the same number");
    }
    if e.is_replayed() {
        out.push_str("\n  replayed: this is the first outcome of this idempotency key");
    }
    out.push_str(&format!("\n  attempts: {}", e.attempts()));
    for cause in causes(e) {
        out.push_str(&format!("\n  caused by: {cause}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn rfc3339_writes_utc_dates() {
        let at = |s: u64, ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(s * 1000 + ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day), 2026-12-02 16:00:41.123.
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_796_227_241, 123), "2026-12-02T16:00:41.123Z");
    }
}
