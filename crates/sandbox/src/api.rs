//! The endpoints: routing of each call through faults, auth, validation and quotas to the
//! flow, plus the outbox and stats endpoints.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::{HeaderMap, Uri};
use serde::Deserialize;
use tokio::sync::watch;
use wa_verify_core::rate_limit::{Acquire, Admission, MemoryStore, QuotaClass, RateLimitStore};
use wa_verify_core::{ApiVersion, PhoneNumberId};

use crate::answers::{app_limited, bad_param, fault_reply, spec_reply, Reply};
use crate::body::{self, Params};
use crate::config::SandboxConfig;
use crate::faults::{Fault, FaultKind, Rng};
use crate::flow::{registration, request_code, verify_code, NumberState};
use crate::outbox::{Outbox, StatsCell};

/// Marks a response that must not be sent: the server closes the connection instead.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropConnection;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) config: SandboxConfig,
    pub(crate) token: String,
    numbers: Option<HashSet<String>>,
    not_permitted: HashSet<String>,
    not_eligible: HashSet<String>,
    pub(crate) per_number: Option<MemoryStore>,
    pub(crate) app_quota: Option<MemoryStore>,
    rng: Rng,
    pub(crate) state: Mutex<HashMap<String, NumberState>>,
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

    pub(crate) fn new_code(&self) -> String {
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
