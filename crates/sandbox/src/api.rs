//! The emulated endpoints: the flow of request_code and verify_code, and Graph's answers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;
use wa_verify_core::rate_limit::{Acquire, Admission, MemoryStore, QuotaClass, RateLimitStore};
use wa_verify_core::{
    ApiVersion, CodeMethod, GraphApiError, Language, PhoneNumberId, VerificationCode,
};

use crate::body::{self, Params};
use crate::config::{QuotaDialect, SandboxConfig};
use crate::faults::{Fault, FaultBody, FaultKind, Rng};
use crate::outbox::{now_rfc3339, Outbox, OutboxEntry, StatsCell};

/// Marks a response that must not be sent: the server closes the connection instead.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropConnection;

#[derive(Debug, Default)]
struct NumberState {
    code: Option<(String, Instant)>,
    wrong: u32,
    blocked_until: Option<Instant>,
    verified: bool,
    registered: bool,
    /// register/deregister calls in the moving 72 hours, and Meta's 72-hour block.
    registrations: std::collections::VecDeque<Instant>,
    registration_blocked_until: Option<Instant>,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) config: SandboxConfig,
    token: String,
    numbers: Option<HashSet<String>>,
    not_permitted: HashSet<String>,
    not_eligible: HashSet<String>,
    per_number: Option<MemoryStore>,
    app_quota: Option<MemoryStore>,
    rng: Rng,
    state: Mutex<HashMap<String, NumberState>>,
    number_faults: Mutex<HashMap<String, (Fault, Option<u32>)>>,
    pub(crate) outbox: Outbox,
    pub(crate) stats: StatsCell,
    shutdown: watch::Receiver<bool>,
}

impl App {
    pub(crate) fn new(
        config: SandboxConfig,
        token: String,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let set = |v: &[String]| v.iter().cloned().collect::<HashSet<_>>();
        Self {
            numbers: (!config.numbers.is_empty()).then(|| set(&config.numbers)),
            not_permitted: set(&config.not_permitted),
            not_eligible: set(&config.not_eligible),
            per_number: config
                .quotas
                .per_number
                .map(|q| MemoryStore::new(&[q], None)),
            app_quota: config.quotas.app.map(|q| MemoryStore::new(&[], Some(q))),
            rng: Rng::new(config.faults.seed),
            state: Mutex::new(HashMap::new()),
            number_faults: Mutex::new(
                config
                    .number_faults
                    .iter()
                    .map(|(id, f)| {
                        let fault = Fault {
                            kind: f.kind,
                            status: f.status.unwrap_or(500),
                            body: f.body.unwrap_or_default(),
                        };
                        (id.clone(), (fault, f.times))
                    })
                    .collect(),
            ),
            outbox: Outbox::with_max(config.outbox.max_entries),
            stats: StatsCell::default(),
            token,
            shutdown,
            config,
        }
    }

    fn trace_id(&self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut s = String::with_capacity(23);
        let mut bits = 0u64;
        for i in 0..23 {
            if i % 10 == 0 {
                bits = self.rng.next_u64();
            }
            s.push(char::from(ALPHABET[(bits & 63) as usize]));
            bits >>= 6;
        }
        s
    }

    fn new_code(&self) -> String {
        format!("{:06}", self.rng.below(1_000_000))
    }

    fn fault_for(&self, id: &str) -> Option<Fault> {
        let mut faults = self.number_faults.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((kind, times)) = faults.get_mut(id) {
            let kind = *kind;
            match times {
                None => return Some(kind),
                Some(0) => {}
                Some(n) => {
                    *n -= 1;
                    return Some(kind);
                }
            }
        }
        drop(faults);
        self.config.faults.draw(&self.rng)
    }

    /// The counts, with `codes_sent` from the outbox (verifications send nothing).
    pub(crate) fn snapshot(&self) -> crate::outbox::Stats {
        let mut s = self.stats.snapshot();
        s.codes_sent = self.outbox.sent();
        s
    }

    async fn wait_for_shutdown(&self) {
        let mut rx = self.shutdown.clone();
        // An error means the handle is gone: shut down as well.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// One answer in the making: status, Graph error code (for stats), whether a code went out.
struct Reply {
    response: Response,
    status: Option<u16>,
    /// An error body still to be written, so it can carry the answer's trace id.
    graph: Option<GraphApiError>,
}

impl Reply {
    fn ok(body: serde_json::Value) -> Self {
        Self {
            response: Json(body).into_response(),
            status: Some(200),
            graph: None,
        }
    }

    fn error(status: StatusCode, error: GraphApiError) -> Self {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        Self {
            response,
            status: Some(status.as_u16()),
            graph: Some(error),
        }
    }

    fn raw(response: Response) -> Self {
        Self {
            status: Some(response.status().as_u16()),
            response,
            graph: None,
        }
    }

    fn dropped() -> Self {
        let mut response = Response::new(Body::empty());
        response.extensions_mut().insert(DropConnection);
        Self {
            response,
            status: None,
            graph: None,
        }
    }

    /// Writes the error body with the trace id, and the trace headers every answer has.
    fn finish(self, trace: &str) -> Response {
        let Reply {
            mut response,
            graph,
            ..
        } = self;
        if response.extensions().get::<DropConnection>().is_some() {
            return response;
        }
        if let Some(mut graph) = graph {
            graph.fbtrace_id = Some(trace.to_owned());
            *response.body_mut() = Body::from(graph.to_body());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Ok(v) = HeaderValue::from_str(trace) {
            let h = response.headers_mut();
            h.insert("x-fb-trace-id", v.clone());
            h.insert("x-fb-request-id", v);
        }
        response
    }
}

fn graph_error(
    message: &str,
    kind: &str,
    code: i64,
    subcode: Option<i64>,
    transient: Option<bool>,
) -> GraphApiError {
    let mut e = GraphApiError::new(message, kind, code);
    e.error_subcode = subcode;
    e.is_transient = transient;
    e
}

fn bad_param(message: impl AsRef<str>) -> Reply {
    Reply::error(
        StatusCode::BAD_REQUEST,
        graph_error(
            &format!("(#100) {}", message.as_ref()),
            "OAuthException",
            100,
            None,
            None,
        ),
    )
}

fn usage_headers(reply: &mut Reply, id: &str, wait: Duration) {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let minutes = secs.div_ceil(60).max(1);
    let h = reply.response.headers_mut();
    h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    let usage = format!(
        r#"{{"{id}":[{{"type":"whatsapp_business_api","call_count":100,"total_cputime":0,"total_time":0,"estimated_time_to_regain_access":{minutes}}}]}}"#
    );
    if let Ok(v) = HeaderValue::from_str(&usage) {
        h.insert("x-business-use-case-usage", v);
    }
}

fn app_limited(id: &str, wait: Duration) -> Reply {
    let mut r = Reply::error(
        StatusCode::TOO_MANY_REQUESTS,
        graph_error(
            "(#4) Application request limit reached",
            "OAuthException",
            4,
            Some(2_446_079),
            Some(true),
        ),
    );
    usage_headers(&mut r, id, wait);
    r
}

fn fault_reply(app: &App, fault: Fault) -> Reply {
    match fault.kind {
        FaultKind::Answer => answer(fault.status, fault.body),
        FaultKind::Transient500 => Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            graph_error(
                "An unexpected error occurred. Please retry your request later.",
                "GraphMethodException",
                2,
                None,
                Some(true),
            ),
        ),
        FaultKind::Server500 => Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            graph_error("An unknown error occurred", "OAuthException", 1, None, None),
        ),
        FaultKind::BadGateway502 => Reply::error(
            StatusCode::BAD_GATEWAY,
            graph_error("An unknown error occurred", "OAuthException", 1, None, None),
        ),
        FaultKind::GatewayTimeout504 => Reply::error(
            StatusCode::GATEWAY_TIMEOUT,
            graph_error(
                "Service temporarily unavailable",
                "OAuthException",
                2,
                None,
                None,
            ),
        ),
        FaultKind::Unavailable503 => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                "<html><head><title>503 Service Unavailable</title></head><body>Service Unavailable</body></html>",
            )
                .into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            Reply::raw(response)
        }
        FaultKind::RateLimited429 => {
            let mut r = Reply::error(
                StatusCode::TOO_MANY_REQUESTS,
                graph_error(
                    "(#4) Application request limit reached",
                    "OAuthException",
                    4,
                    Some(2_446_079),
                    Some(true),
                ),
            );
            r.response.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from(app.config.faults.retry_after_secs),
            );
            r
        }
        FaultKind::TruncatedBody => {
            use futures_util::StreamExt;
            let head = futures_util::stream::once(async { Ok(Bytes::from_static(b"{\"succ")) });
            let cut = futures_util::stream::once(async {
                // Pending once, so hyper flushes the head and first bytes before the cut.
                tokio::task::yield_now().await;
                Err::<Bytes, _>(std::io::Error::other("sandbox: truncated body"))
            });
            let mut response = Response::new(Body::from_stream(head.chain(cut)));
            let h = response.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(CONTENT_LENGTH, HeaderValue::from_static("16"));
            Reply::raw(response)
        }
        FaultKind::OversizedBody => {
            let mut body = String::with_capacity(1 << 20);
            body.push_str("{\"success\":true,\"padding\":\"");
            body.extend(std::iter::repeat_n('x', 1 << 20));
            body.push_str("\"}");
            let mut response = Response::new(Body::from(body));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Reply::raw(response)
        }
        FaultKind::DropBeforeSend | FaultKind::DropAfterSend | FaultKind::Hang => Reply::dropped(),
        FaultKind::Latency => Reply::dropped(),
    }
}

/// The spec's error body for a status: type, code, and `is_transient` where it gives one.
fn spec_error(status: u16) -> GraphApiError {
    match status {
        401 => graph_error(
            "Invalid OAuth access token",
            "OAuthException",
            190,
            Some(463),
            None,
        ),
        403 => graph_error(
            "Your app doesn't have permission to access this phone number",
            "OAuthException",
            200,
            Some(1_349_174),
            None,
        ),
        404 => graph_error(
            "Phone number not found",
            "GraphMethodException",
            803,
            None,
            None,
        ),
        422 => graph_error(
            "Phone number is not eligible for verification at this time",
            "GraphMethodException",
            100,
            None,
            None,
        ),
        429 => graph_error(
            "Application request limit reached",
            "OAuthException",
            4,
            Some(2_446_079),
            Some(true),
        ),
        500 => graph_error(
            "An unexpected error occurred. Please retry your request",
            "GraphMethodException",
            2,
            None,
            Some(true),
        ),
        502 | 504 => graph_error("An unknown error occurred", "OAuthException", 1, None, None),
        503 => graph_error(
            "Service temporarily unavailable",
            "OAuthException",
            2,
            None,
            None,
        ),
        _ => graph_error("Invalid parameter", "OAuthException", 100, None, None),
    }
}

/// The spec's error answer for a status.
fn spec_reply(status: u16) -> Reply {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    Reply::error(code, spec_error(status))
}

/// An `answer` fault: `status` with the chosen body.
fn answer(status: u16, body: FaultBody) -> Reply {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let raw = |content_type: &'static str, body: Body| {
        let mut response = Response::new(body);
        *response.status_mut() = code;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Reply::raw(response)
    };
    match body {
        FaultBody::Graph => Reply::error(code, spec_error(status)),
        FaultBody::Html => raw(
            "text/html",
            Body::from("<html><body><h1>Error</h1>An error occurred.</body></html>"),
        ),
        FaultBody::Empty => raw("application/json", Body::empty()),
        FaultBody::Truncated => {
            use futures_util::StreamExt;
            let head =
                futures_util::stream::once(async { Ok(Bytes::from_static(b"{\"error\":{\"mess")) });
            let cut = futures_util::stream::once(async {
                tokio::task::yield_now().await;
                Err::<Bytes, _>(std::io::Error::other("sandbox: truncated body"))
            });
            let mut r = raw("application/json", Body::from_stream(head.chain(cut)));
            r.response
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from_static("64"));
            r
        }
    }
}

/// `POST /{version}/{phone_number_id}/{operation}`.
pub(crate) async fn api(
    State(app): State<Arc<App>>,
    Path((version, id, op)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = app.stats.enter();
    let trace = app.trace_id();
    let operation = match op.as_str() {
        "request_code" | "verify_code" | "register" | "deregister" => op.as_str(),
        _ => "other",
    };
    let call = Call {
        app: &app,
        version: &version,
        id: &id,
        op: &op,
        trace: &trace,
    };
    let reply = call.handle(uri.query(), &headers, body).await;
    let code = reply.graph.as_ref().map(|g| g.code);
    app.stats.record(operation, reply.status, code);
    reply.finish(&trace)
}

/// One API call's context.
struct Call<'a> {
    app: &'a App,
    version: &'a str,
    id: &'a str,
    op: &'a str,
    trace: &'a str,
}

impl Call<'_> {
    async fn handle(&self, query: Option<&str>, headers: &HeaderMap, body: Bytes) -> Reply {
        let Call {
            app,
            version,
            id,
            op,
            trace,
        } = *self;
        let fault = app.fault_for(id);
        // A 2xx `answer` stands for a server that acted and then answered oddly.
        let acts_first =
            |f: &Fault| f.kind.acts_first() || (f.kind == FaultKind::Answer && f.status < 300);
        match fault {
            Some(Fault {
                kind: FaultKind::Hang,
                ..
            }) => {
                app.wait_for_shutdown().await;
                return Reply::dropped();
            }
            Some(Fault {
                kind: FaultKind::Latency,
                ..
            }) => tokio::time::sleep(app.config.faults.latency).await,
            Some(f) if !acts_first(&f) => return fault_reply(app, f),
            _ => {}
        }
        let params = match body::params(headers, query, body).await {
            Ok(p) => p,
            Err(e) => return bad_param(format!("Invalid parameter: {}", e.0)),
        };
        if !authorized(app, headers, &params) {
            return spec_reply(401);
        }
        if version.parse::<ApiVersion>().is_err() {
            return bad_param(format!(
                "Unsupported API version {version:?}: use the form v23.0"
            ));
        }
        if id.parse::<PhoneNumberId>().is_err() {
            return bad_param("Invalid parameter: phone number id must be digits");
        }
        if !matches!(
            op,
            "request_code" | "verify_code" | "register" | "deregister"
        ) {
            return bad_param(format!("Unsupported post request: unknown edge {op:?}"));
        }
        if app.numbers.as_ref().is_some_and(|n| !n.contains(id)) {
            return spec_reply(404);
        }
        if app.not_permitted.contains(id) {
            return spec_reply(403);
        }
        if app.not_eligible.contains(id) {
            return spec_reply(422);
        }
        if let Some(store) = &app.app_quota {
            if let Acquire::Ready(Admission::Wait { wait, .. }) =
                store.acquire(None, QuotaClass::Other)
            {
                return app_limited(id, wait);
            }
        }
        let reply = match op {
            "request_code" => request_code(app, id, trace, &params),
            "verify_code" => verify_code(app, id, &params),
            _ => registration(app, id, op, trace, &params),
        };
        match fault {
            Some(f)
                if acts_first(&f) && f.kind != FaultKind::Latency && reply.status == Some(200) =>
            {
                fault_reply(app, f)
            }
            _ => reply,
        }
    }
}

fn authorized(app: &App, headers: &HeaderMap, params: &Params) -> bool {
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let token = from_header.or_else(|| params.get("access_token").map(String::as_str));
    token.is_some_and(|t| constant_time_eq(t.as_bytes(), app.token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn request_code(app: &App, id: &str, trace: &str, params: &Params) -> Reply {
    let Some(method) = params.get("code_method") else {
        return bad_param("The parameter code_method is required: SMS or VOICE");
    };
    // Graph is strict here: the spec's enum is upper case.
    let method = match method.as_str() {
        "SMS" | "VOICE" => method.parse::<CodeMethod>().unwrap_or_default(),
        _ => return bad_param("Invalid parameter: code_method must be SMS or VOICE"),
    };
    let Some(language) = params.get("language") else {
        return bad_param("The parameter language is required, e.g. en_US or en");
    };
    let Ok(language) = language.parse::<Language>() else {
        return bad_param("Invalid parameter: language must be like en_US or en");
    };
    if let Some(store) = &app.per_number {
        let key = id.parse::<PhoneNumberId>().map(|p| p.key()).ok();
        if let Acquire::Ready(Admission::Wait { wait, .. }) =
            store.acquire(key, QuotaClass::RequestCode)
        {
            return match app.config.quotas.quota_error {
                QuotaDialect::Spec => app_limited(id, wait),
                QuotaDialect::Observed => {
                    let mut e = graph_error(
                        "Request code error",
                        "OAuthException",
                        136_024,
                        Some(2_388_091),
                        Some(false),
                    );
                    e.error_user_title = Some("Request code error".into());
                    e.error_user_msg = Some(
                        "You have requested a code too many times. Please try again after a while."
                            .into(),
                    );
                    e.error_data = Some(serde_json::json!({
                        "messaging_product": "whatsapp",
                        "details": "Too many code requests. Try again after a while."
                    }));
                    Reply::error(StatusCode::BAD_REQUEST, e)
                }
            };
        }
    }
    let code = app.new_code();
    let expires = Instant::now() + app.config.codes.ttl;
    {
        let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
        let s = state.entry(id.to_owned()).or_default();
        // A new request replaces the previous code.
        s.code = Some((code.clone(), expires));
    }
    app.outbox.push(OutboxEntry {
        phone_number_id: id.to_owned(),
        code_method: method.as_str().to_owned(),
        language: language.as_str().to_owned(),
        code,
        sent_at: now_rfc3339(),
        fbtrace_id: trace.to_owned(),
        operation: "request_code".to_owned(),
    });
    Reply::ok(serde_json::json!({ "success": true }))
}

fn verify_code(app: &App, id: &str, params: &Params) -> Reply {
    let Some(code) = params.get("code") else {
        return bad_param("The parameter code is required: six digits");
    };
    let Ok(code) = code.parse::<VerificationCode>() else {
        return bad_param("Invalid verification code format");
    };
    let now = Instant::now();
    let cfg = &app.config.codes;
    let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
    let s = state.entry(id.to_owned()).or_default();
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
        Some((expected, expires)) => *expires > now && expected.as_str() == code.expose(),
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
fn registration(app: &App, id: &str, op: &str, trace: &str, params: &Params) -> Reply {
    if op == "register" {
        if params.get("messaging_product").map(String::as_str) != Some("whatsapp") {
            return bad_param("The parameter messaging_product is required and must be whatsapp");
        }
        let pin_ok = params
            .get("pin")
            .is_some_and(|p| p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit()));
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
            .is_some_and(|r| !wa_verify_core::onboarding::REGIONS.contains(&r.as_str()))
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
    let s = state.entry(id.to_owned()).or_default();
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

/// `GET /__sandbox/outbox[?phone_number_id=ID]`.
pub(crate) async fn outbox(State(app): State<Arc<App>>, Query(q): Query<OutboxQuery>) -> Response {
    let entries = match &q.phone_number_id {
        Some(id) => app.outbox.entries_for(id),
        None => app.outbox.entries(),
    };
    Json(entries).into_response()
}

/// The outbox's filter.
#[derive(Debug, Deserialize)]
pub(crate) struct OutboxQuery {
    phone_number_id: Option<String>,
}

/// `GET /__sandbox/stats`.
pub(crate) async fn stats(State(app): State<Arc<App>>) -> Response {
    Json(app.snapshot()).into_response()
}
