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
            QuotaDialect::Spec => app_limited(app.usage_key(id), wait),
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
            usage_headers(&mut r, app.usage_key(id), until - now);
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
        usage_headers(&mut r, app.usage_key(id), until - now);
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
    let configured = app.config.number_status.get(id);
    let is = |f: fn(&crate::config::NumberStatus) -> &Option<String>, v: &str| {
        configured.and_then(|c| f(c).as_deref()) == Some(v)
    };
    let ok = if op == "register" {
        // What Meta answers for a number on the WhatsApp Business app or On-Premises API,
        // and for a display name still in review (as captured live).
        if is(|c| &c.platform_type, "ON_PREMISE") {
            return bad_param("Register endpoint is not available for SMB businesses.");
        }
        let name_ok = configured
            .and_then(|c| c.name_status.as_deref())
            .is_none_or(|n| matches!(n, "APPROVED" | "AVAILABLE_WITHOUT_REVIEW" | "NAME_APPROVED"));
        if !name_ok {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                graph_error(
                    "Cannot Create Certificate",
                    "OAuthException",
                    100,
                    Some(2_388_001),
                    None,
                ),
            );
        }
        let verified = s.verified || is(|c| &c.code_verification_status, "VERIFIED");
        if !verified || s.registered {
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
        s.deregistered = false;
        true
    } else {
        if !s.registered {
            return bad_param("Phone number not registered on the WhatsApp Business Platform.");
        }
        s.registered = false;
        s.deregistered = true;
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

/// The fields `GET /{version}/{id}` answers when `fields` is absent (the spec's default
/// set).
const DEFAULT_FIELDS: &[&str] = &[
    "id",
    "display_phone_number",
    "verified_name",
    "code_verification_status",
    "quality_rating",
    "platform_type",
    "throughput",
    "name_status",
    "status",
];

/// `GET /{version}/{id}[?fields=a,b]`: the number's status, following its flow unless
/// configured in `[number_status."ID"]`. Unknown fields are left out, as Graph does with
/// fields a node does not have.
pub(crate) fn status(app: &App, id: &str, params: &Params) -> Reply {
    let asked: Vec<&str> = match params.get("fields") {
        Some(f) => f
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect(),
        None => DEFAULT_FIELDS.to_vec(),
    };
    if asked.iter().any(|f| !wire::is_field_name(f)) {
        return bad_param("Invalid parameter: fields must be names like status,name_status");
    }
    let (verified, registered, deregistered) = {
        let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
        let s = state.entry(id);
        (s.verified, s.registered, s.deregistered)
    };
    // A code verified in the flow wins over the configured state.
    let configured = app.config.number_status.get(id);
    let pick = |f: fn(&crate::config::NumberStatus) -> &Option<String>, flow: &str| {
        configured
            .and_then(|c| f(c).clone())
            .unwrap_or_else(|| flow.to_owned())
    };
    let connection = if registered {
        "CONNECTED"
    } else if deregistered {
        "DISCONNECTED"
    } else {
        "PENDING"
    };
    let mut out = serde_json::Map::new();
    for field in asked {
        let value = match field {
            "id" => serde_json::json!(id),
            "display_phone_number" => {
                serde_json::json!(format!("+1 555-{:0>4}", &id[id.len().saturating_sub(4)..]))
            }
            "verified_name" => serde_json::json!("Sandbox Business"),
            "code_verification_status" => serde_json::json!(if verified {
                "VERIFIED".to_owned()
            } else {
                pick(|c| &c.code_verification_status, "NOT_VERIFIED")
            }),
            "quality_rating" => serde_json::json!("GREEN"),
            "platform_type" => serde_json::json!(pick(|c| &c.platform_type, "CLOUD_API")),
            "throughput" => serde_json::json!({"level": "STANDARD"}),
            "name_status" => serde_json::json!(pick(|c| &c.name_status, "APPROVED")),
            "status" => serde_json::json!(pick(|c| &c.status, connection)),
            "is_pin_enabled" => serde_json::json!(registered),
            "is_official_business_account" => serde_json::json!(false),
            "account_mode" => serde_json::json!("SANDBOX"),
            _ => continue,
        };
        out.insert(field.to_owned(), value);
    }
    Reply::ok(serde_json::Value::Object(out))
}
