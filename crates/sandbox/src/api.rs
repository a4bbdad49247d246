//! The endpoints: routing of each call through faults, auth, validation and quotas to the
//! flow, plus the outbox and stats endpoints.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::time::Instant;

use crate::answers::{
    app_limited, bad_param, body_timeout, fault_reply, method_not_allowed, not_found, spec_reply,
    too_large, waba_limited, Reply,
};
use crate::app::App;
use crate::body::{self, Params};
use crate::faults::{Fault, FaultKind};
use crate::flow::{registration, request_code, status, verify_code};
use crate::wire;

/// Every request: the API, the admin endpoints, and a Graph-shaped answer with a trace
/// id for everything else (404, 405, 413, a bad path encoding).
pub(crate) async fn dispatch(State(app): State<Arc<App>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let trace = app.trace_id();
    let Some(segments) = path_segments(parts.uri.path()) else {
        return bad_param("Invalid path: its percent-encoding is not valid UTF-8").finish(&trace);
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = &parts.method;
    match segments.as_slice() {
        ["__sandbox", endpoint @ ("outbox" | "stats")] => {
            if method != Method::GET {
                return method_not_allowed(method).finish(&trace);
            }
            if app.config.admin.require_token && !authorized(&app, &parts.headers, &Params::new()) {
                return spec_reply(401).finish(&trace);
            }
            match *endpoint {
                "outbox" => outbox(&app, parts.uri.query()).finish(&trace),
                _ => Reply::ok(serde_json::to_value(app.snapshot()).unwrap_or_default())
                    .finish(&trace),
            }
        }
        [version, id] if !version.starts_with("__") => {
            if method != Method::GET {
                let reply = method_not_allowed(method);
                app.stats
                    .record("other", reply.status, reply.graph.as_ref().map(|g| g.code));
                return reply.finish(&trace);
            }
            let _in_flight = app.stats.enter();
            api(
                &app,
                version,
                id,
                "",
                &parts.uri,
                &parts.headers,
                Bytes::new(),
                &trace,
            )
            .await
        }
        [version, id, op] if !version.starts_with("__") => {
            if method != Method::POST {
                let reply = method_not_allowed(method);
                app.stats
                    .record("other", reply.status, reply.graph.as_ref().map(|g| g.code));
                return reply.finish(&trace);
            }
            // In flight from here: a request still sending its body counts.
            let _in_flight = app.stats.enter();
            let body = match read_body(&app, body).await {
                Ok(b) => b,
                Err(reply) => {
                    app.stats
                        .record("other", reply.status, reply.graph.as_ref().map(|g| g.code));
                    return reply.finish(&trace);
                }
            };
            api(
                &app,
                version,
                id,
                op,
                &parts.uri,
                &parts.headers,
                body,
                &trace,
            )
            .await
        }
        _ => not_found(parts.uri.path()).finish(&trace),
    }
}

/// The path's segments, percent-decoded; `None` when a segment does not decode to UTF-8.
fn path_segments(path: &str) -> Option<Vec<String>> {
    path.trim_matches('/')
        .split('/')
        .map(|seg| {
            let bytes: Vec<u8> = percent_decode(seg.as_bytes())?;
            String::from_utf8(bytes).ok()
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The body, read within the body timeout and the size cap.
async fn read_body(app: &App, body: Body) -> Result<Bytes, Reply> {
    let server = &app.config.server;
    let limited = http_body_util::Limited::new(body, server.max_body_bytes);
    match tokio::time::timeout(server.body_timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(too_large(server.max_body_bytes))
        }
        // The client closed the connection mid-body: nobody is left to answer.
        Ok(Err(_)) => Err(Reply::dropped()),
        Err(_) => Err(body_timeout(server.body_timeout)),
    }
}

/// `POST /{version}/{phone_number_id}/{operation}`, and `GET /{version}/{phone_number_id}`
/// (`op` empty).
#[allow(clippy::too_many_arguments)]
async fn api(
    app: &App,
    version: &str,
    id: &str,
    op: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    trace: &str,
) -> Response {
    let operation = match op {
        "request_code" | "verify_code" | "register" | "deregister" => op,
        "" => "status",
        _ => "other",
    };
    let call = Call {
        app,
        version,
        id,
        op,
        trace,
    };
    let reply = call.handle(uri.query(), headers, body).await;
    let code = reply.graph.as_ref().map(|g| g.code);
    app.stats.record(operation, reply.status, code);
    reply.finish(trace)
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
        match authorize(app, headers, &params) {
            None => return spec_reply(401),
            Some(Who::Admin) => {}
            Some(Who::Tenant(t)) => {
                app.stats.tenant_used(&app.config.tenants[t].id);
                // A tenant's token acts on its own numbers only.
                if app.tenant_by_number.get(id) != Some(&t) {
                    return spec_reply(403);
                }
            }
        }
        if !wire::is_version(version) {
            return bad_param(format!(
                "Unsupported API version {version:?}: use the form v23.0"
            ));
        }
        if !wire::is_phone_number_id(id) {
            return bad_param("Invalid parameter: phone number id must be digits");
        }
        if !matches!(
            op,
            "request_code" | "verify_code" | "register" | "deregister" | ""
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
        if let Some(quota) = app.config.quotas.app {
            let mut calls = app.app_calls();
            if let Err(wait) = calls.admit(quota, Instant::now()) {
                return app_limited(app.usage_key(id), wait);
            }
        }
        if let Some(waba) = app.waba_of(id) {
            if let Err(wait) = app.admit_waba(waba, Instant::now()) {
                return waba_limited(waba, wait);
            }
        }
        let reply = match op {
            "" => status(app, id, &params),
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

/// Whose token a request carries: the sandbox's own (every number), or a tenant's.
enum Who {
    Admin,
    Tenant(usize),
}

fn authorize(app: &App, headers: &HeaderMap, params: &Params) -> Option<Who> {
    let token = bearer(headers, params)?;
    if constant_time_eq(token.as_bytes(), app.token.as_bytes()) {
        return Some(Who::Admin);
    }
    app.config
        .tenants
        .iter()
        .position(|t| constant_time_eq(token.as_bytes(), t.token.as_bytes()))
        .map(Who::Tenant)
}

fn bearer<'a>(headers: &'a HeaderMap, params: &'a Params) -> Option<&'a str> {
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    from_header.or_else(|| params.get("access_token").map(String::as_str))
}

/// The admin endpoints: the sandbox's own token only.
fn authorized(app: &App, headers: &HeaderMap, params: &Params) -> bool {
    bearer(headers, params).is_some_and(|t| constant_time_eq(t.as_bytes(), app.token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The most entries one outbox answer holds; `limit` may ask for fewer.
const OUTBOX_PAGE: usize = 1000;

/// `GET /__sandbox/outbox[?phone_number_id=ID][&offset=N][&limit=N]`: entries oldest
/// first, a page at a time (at most 1000), with the total in `x-sandbox-total`.
fn outbox(app: &App, query: Option<&str>) -> Reply {
    let q: OutboxQuery = query.and_then(outbox_query).unwrap_or_default();
    let entries = match &q.phone_number_id {
        Some(id) => app.outbox.entries_for(id),
        None => app.outbox.entries(),
    };
    let total = entries.len();
    let limit = q.limit.unwrap_or(OUTBOX_PAGE).min(OUTBOX_PAGE);
    let page: Vec<_> = entries
        .into_iter()
        .skip(q.offset.unwrap_or(0))
        .take(limit)
        .collect();
    let mut reply = Reply::ok(serde_json::to_value(page).unwrap_or_default());
    reply
        .response
        .headers_mut()
        .insert("x-sandbox-total", http::HeaderValue::from(total));
    reply
}

/// The outbox's filter and page.
#[derive(Debug, Default, Deserialize)]
struct OutboxQuery {
    phone_number_id: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

fn outbox_query(q: &str) -> Option<OutboxQuery> {
    let mut out = OutboxQuery::default();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        match &*k {
            "phone_number_id" => out.phone_number_id = Some(v.into_owned()),
            "offset" => out.offset = Some(v.parse().ok()?),
            "limit" => out.limit = Some(v.parse().ok()?),
            _ => {}
        }
    }
    Some(out)
}
