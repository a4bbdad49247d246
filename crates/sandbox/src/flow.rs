//! The per-number flow: codes sent, checked, expired and blocked; registration's state
//! machine and Meta's 72-hour budget.

use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use crate::answers::{app_limited, bad_param, graph_error, usage_headers, Reply};
use crate::app::App;
use crate::body::Params;
use crate::config::QuotaDialect;
use crate::outbox::{now_rfc3339, OutboxEntry};
use crate::wire;

pub(crate) fn request_code(app: &App, id: &str, trace: &str, params: &Params) -> Reply {
    let Some(method) = params.get("code_method") else {
        return bad_param("The parameter code_method is required: SMS, VOICE or IVR");
    };
    // Graph is strict here: the spec's enum is upper case.
    if !wire::is_code_method(method) {
        return bad_param("Invalid parameter: code_method must be SMS, VOICE or IVR");
    }
    let Some(language) = params.get("language") else {
        return bad_param("The parameter language is required, e.g. en_US or en");
    };
    if !wire::is_language(language) {
        return bad_param("Invalid parameter: language must be like en_US, en or fil");
    }
    if app.config.request_code_failing.iter().any(|n| n == id) {
        return request_code_error(
            2_388_091,
            "Request code failed. Please wait 1 hour before trying again.",
        );
    }
    let now = Instant::now();
    let spent = app.config.quotas.per_number.and_then(|quota| {
        let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
        state.entry(id).requests.admit(quota, now).err()
    });
    if let Some(wait) = spent {
        if app.config.pre_verified.iter().any(|p| p == id) {
            // spec: request_code on a pre-verified number, 422.
            return Reply::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                graph_error(
                    "Too many verification code requests",
                    "OAuthException",
                    613,
                    None,
                    None,
                ),
            );
        }
        return match app.config.quotas.quota_error {
            QuotaDialect::Spec => app_limited(id, wait),
            QuotaDialect::Observed => request_code_error(
                2_388_367,
                "You have reached the request code volume limit for this phone number. Please try again later.",
            ),
        };
    }
    let code = app.new_code();
    let expires = now + app.config.codes.ttl;
    {
        let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
        // A new request replaces the previous code.
        state.entry(id).code = Some((code.clone(), expires));
    }
    app.outbox.push(OutboxEntry {
        phone_number_id: id.to_owned(),
        code_method: method.clone(),
        language: language.clone(),
        code,
        sent_at: now_rfc3339(),
        fbtrace_id: trace.to_owned(),
        operation: "request_code".to_owned(),
    });
    Reply::ok(serde_json::json!({ "success": true }))
}

/// Meta's 400 136024 "Request code error" with `subcode`, as captured live:
/// `is_transient: false`, a user title and message, and `error_data.details`.
fn request_code_error(subcode: i64, details: &str) -> Reply {
    let mut e = graph_error(
        "Request code error",
        "OAuthException",
        136_024,
        Some(subcode),
        Some(false),
    );
    e.error_user_title = Some("Request code error".into());
    e.error_user_msg = Some(details.into());
    e.error_data = Some(serde_json::json!({
        "messaging_product": "whatsapp",
        "details": details,
    }));
    Reply::error(StatusCode::BAD_REQUEST, e)
}

pub(crate) fn verify_code(app: &App, id: &str, params: &Params) -> Reply {
    let Some(code) = params.get("code") else {
        return bad_param("The parameter code is required: six digits");
    };
    if !wire::is_six_digits(code) {
        return bad_param("Invalid verification code format");
    }
    let now = Instant::now();
    let cfg = &app.config.codes;
    let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
    let s = state.entry(id);
    if let Some(until) = s.blocked_until {
        if until > now {
            let mut r = Reply::error(
                StatusCode::TOO_MANY_REQUESTS,
                graph_error(
                    "Too many failed verification attempts; this number is temporarily blocked",
                    "OAuthException",
                    4,
                    Some(2_446_079),
                    None,
                ),
            );
            usage_headers(&mut r, id, until - now);
            return r;
        }
        s.blocked_until = None;
        s.wrong = 0;
    }
    let right = match &s.code {
        Some((expected, expires)) => *expires > now && expected == code,
        None => false,
    };
    if right {
        s.code = None;
        s.wrong = 0;
        s.verified = true;
        return Reply::ok(serde_json::json!({ "success": true, "id": id }));
    }
    s.wrong += 1;
    if s.wrong >= cfg.max_wrong.max(1) {
        s.blocked_until = Some(now + cfg.block_for);
        s.code = None;
    }
    let mut e = graph_error(
        "Verify code error",
        "OAuthException",
        136_025,
        Some(2_388_093),
        Some(false),
    );
    e.error_user_title = Some("Verify code error".into());
    e.error_user_msg =
        Some("The code you entered is wrong or has expired. Check it and try again.".into());
    Reply::error(StatusCode::BAD_REQUEST, e)
}

/// Meta's register/deregister budget: 10 calls per number in a moving 72 hours.
const REGISTRATION_CALLS: usize = 10;
const REGISTRATION_WINDOW: Duration = Duration::from_secs(72 * 3600);

/// `register` and `deregister`: the number's state machine and Meta's 72-hour budget.
pub(crate) fn registration(app: &App, id: &str, op: &str, trace: &str, params: &Params) -> Reply {
    if op == "register" {
        if params.get("messaging_product").map(String::as_str) != Some("whatsapp") {
            return bad_param("The parameter messaging_product is required and must be whatsapp");
        }
        let pin_ok = params.get("pin").is_some_and(|p| wire::is_six_digits(p));
        if !pin_ok {
            return bad_param("Invalid PIN format. PIN must be exactly 6 digits");
        }
        if params
            .get("tier")
            .is_some_and(|t| t != "PROD" && t != "SANDBOX")
        {
            return bad_param("Invalid parameter: tier must be PROD or SANDBOX");
        }
        if params
            .get("data_localization_region")
            .is_some_and(|r| !wire::REGIONS.contains(&r.as_str()))
        {
            return bad_param(
                "Invalid parameter: data_localization_region is not a supported region",
            );
        }
        if let Some(b) = params.get("backup") {
            let ok = serde_json::from_str::<serde_json::Value>(b).is_ok_and(|v| {
                v.get("password").is_some_and(serde_json::Value::is_string)
                    && v.get("data").is_some_and(serde_json::Value::is_string)
            });
            if !ok {
                return bad_param("Invalid parameter: backup must have a password and data");
            }
        }
    }
    let now = Instant::now();
    let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
    let s = state.entry(id);
    if let Some(until) = s.registration_blocked_until.filter(|u| *u > now) {
        let mut r = registration_limited();
        usage_headers(&mut r, id, until - now);
        return r;
    }
    while s
        .registrations
        .front()
        .is_some_and(|t| *t + REGISTRATION_WINDOW <= now)
    {
        s.registrations.pop_front();
    }
    if s.registrations.len() >= REGISTRATION_CALLS {
        s.registration_blocked_until = Some(now + REGISTRATION_WINDOW);
        return registration_limited();
    }
    s.registrations.push_back(now);
    let ok = if op == "register" {
        if !s.verified || s.registered {
            return Reply::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                graph_error(
                    "Phone number is already registered or in invalid state for registration",
                    "GraphMethodException",
                    100,
                    None,
                    None,
                ),
            );
        }
        s.registered = true;
        true
    } else {
        if !s.registered {
            return bad_param("Phone number not registered on the WhatsApp Business Platform.");
        }
        s.registered = false;
        true
    };
    drop(state);
    app.outbox.push(OutboxEntry {
        phone_number_id: id.to_owned(),
        code_method: String::new(),
        language: String::new(),
        // Never the PIN: the outbox records that the call happened, not its secrets.
        code: String::new(),
        sent_at: now_rfc3339(),
        fbtrace_id: trace.to_owned(),
        operation: op.to_owned(),
    });
    Reply::ok(serde_json::json!({ "success": ok }))
}

fn registration_limited() -> Reply {
    let mut e = graph_error(
        "Account register deregister rate limit exceeded",
        "OAuthException",
        133_016,
        None,
        Some(false),
    );
    e.error_user_title = Some("Too many registration attempts".into());
    e.error_user_msg = Some(
        "This number was registered or deregistered 10 times in 72 hours and is blocked for 72 hours."
            .into(),
    );
    Reply::error(StatusCode::BAD_REQUEST, e)
}
