//! The OpenTelemetry instruments behind [`Metrics`](super::Metrics), created once per meter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::{KeyValue, Value};

use super::CallSummary;
use crate::error::Error;
use crate::rate_limit::{AnyStore, Scope, StoreObserver, StoreView};

/// OpenTelemetry's advice for `http.client.request.duration` (seconds).
const DURATION_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

pub(super) struct Instruments {
    stores: Stores,
    request_duration: Histogram<f64>,
    call_duration: Histogram<f64>,
    call_attempts: Histogram<u64>,
    codes_requested: Counter<u64>,
    codes_wrong: Counter<u64>,
    throttles: Counter<u64>,
    cooldowns_started: Counter<u64>,
    refusals: Counter<u64>,
    waits: Counter<u64>,
    dedup: Counter<u64>,
}

impl Instruments {
    pub(super) fn new(meter: &Meter) -> Self {
        let counter = |name: &'static str, unit: &'static str, what: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(what)
                .build()
        };
        let seconds = |name: &'static str, what: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(what)
                .with_boundaries(DURATION_BOUNDS.to_vec())
                .build()
        };
        let stores = Stores::default();
        observe(meter, &stores);
        Self {
            stores,
            request_duration: seconds(
                "http.client.request.duration",
                "Duration of HTTP client requests (one per attempt).",
            ),
            call_duration: seconds(
                "wa_verify.call.duration",
                "Duration of a call through the whole stack, retries and waits included.",
            ),
            call_attempts: meter
                .u64_histogram("wa_verify.call.attempts")
                .with_unit("{attempt}")
                .with_description("Attempts a call sent upstream.")
                .with_boundaries(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 8.0])
                .build(),
            codes_requested: counter(
                "wa_verify.codes.requested",
                "{code}",
                "Codes Meta confirmed it sent.",
            ),
            codes_wrong: counter(
                "wa_verify.codes.wrong",
                "{code}",
                "verify_code answers saying the code was wrong.",
            ),
            throttles: counter(
                "wa_verify.throttles",
                "{answer}",
                "Answers in which Meta throttled the call, by Graph code and subcode.",
            ),
            cooldowns_started: counter(
                "wa_verify.cooldowns.started",
                "{cooldown}",
                "Cooldowns learned from Meta's throttling answers.",
            ),
            refusals: counter(
                "wa_verify.limiter.refusals",
                "{call}",
                "Calls the local limiter refused.",
            ),
            waits: counter(
                "wa_verify.limiter.waits",
                "{call}",
                "Calls that waited for their slot.",
            ),
            dedup: counter(
                "wa_verify.dedup.calls",
                "{call}",
                "Calls the dedup layer answered without sending.",
            ),
        }
    }

    pub(super) fn attempt(
        &self,
        took: Duration,
        method: &'static str,
        server: &Arc<str>,
        result: Result<u16, &Error>,
    ) {
        let mut attrs = [
            KeyValue::new("http.request.method", method),
            KeyValue::new("server.address", Value::String(server.clone().into())),
            KeyValue::new("http.response.status_code", 0),
            KeyValue::new("error.type", ""),
        ];
        let n = match result {
            Ok(status) => {
                attrs[2] = KeyValue::new("http.response.status_code", i64::from(status));
                3
            }
            Err(e) => {
                if let Some(t) = e.throttle().and(e.graph()) {
                    let mut code = vec![KeyValue::new("error.code", t.code)];
                    if let Some(sub) = t.error_subcode {
                        code.push(KeyValue::new("error.subcode", sub));
                    }
                    self.throttles.add(1, &code);
                }
                match e.status() {
                    Some(s) => {
                        attrs[2] =
                            KeyValue::new("http.response.status_code", i64::from(s.as_u16()));
                        attrs[3] = KeyValue::new("error.type", e.kind().as_str());
                        4
                    }
                    None => {
                        attrs[2] = KeyValue::new("error.type", e.kind().as_str());
                        3
                    }
                }
            }
        };
        self.request_duration
            .record(took.as_secs_f64(), &attrs[..n]);
    }

    pub(super) fn call(
        &self,
        took: Duration,
        operation: &'static str,
        code_method: Option<&'static str>,
        s: CallSummary,
    ) {
        let attrs = [
            KeyValue::new("operation", operation),
            KeyValue::new("outcome", s.outcome),
        ];
        self.call_duration.record(took.as_secs_f64(), &attrs);
        self.call_attempts.record(u64::from(s.attempts), &attrs);
        if let Some(how) = s.dedup {
            self.dedup.add(1, &[KeyValue::new("outcome", how)]);
        }
        if s.code_sent {
            let method = code_method.unwrap_or("SMS");
            self.codes_requested
                .add(1, &[KeyValue::new("code_method", method)]);
        }
        if s.wrong_code {
            self.codes_wrong.add(1, &[]);
        }
    }

    pub(super) fn limiter(&self, scope: Scope, refused: bool) {
        let attrs = [KeyValue::new("scope", scope.as_str())];
        if refused {
            self.refusals.add(1, &attrs);
        } else {
            self.waits.add(1, &attrs);
        }
    }

    pub(super) fn cooldown_started(&self, scope: &'static str) {
        self.cooldowns_started
            .add(1, &[KeyValue::new("scope", scope)]);
    }

    /// Adds `store` to those the observable instruments read (each client's store; a
    /// store no client holds any more drops out at the next collection).
    pub(super) fn observe_store(&self, store: &AnyStore) {
        self.stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(store.observer());
    }
}

/// The stores the observable instruments read, shared with their callbacks.
type Stores = Arc<Mutex<Vec<StoreObserver>>>;

/// Every live store's view, the dead ones dropped.
fn views(stores: &Stores) -> Vec<StoreView> {
    let mut stores = stores
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Vec::with_capacity(stores.len());
    stores.retain(|read| match read() {
        Some(v) => {
            out.push(v);
            true
        }
        None => false,
    });
    out
}

/// Registers the instruments read from the stores when a reader collects: once per
/// meter, so several clients sharing one [`Metrics`](super::Metrics) add up.
fn observe(meter: &Meter, stores: &Stores) {
    let s = stores.clone();
    meter
        .u64_observable_gauge("wa_verify.cooldowns.active")
        .with_unit("{cooldown}")
        .with_description("Cooldowns this replica knows of that have not ended.")
        .with_callback(move |o| {
            o.observe(views(&s).iter().map(|v| v.active_cooldowns).sum(), &[]);
        })
        .build();
    let s = stores.clone();
    meter
        .u64_observable_counter("wa_verify.store.fallbacks")
        .with_unit("{check}")
        .with_description("Checks answered by on_store_error instead of the shared store.")
        .with_callback(move |o| o.observe(views(&s).iter().map(|v| v.fallbacks).sum(), &[]))
        .build();
    let by_scope = |pick: fn(&StoreView) -> [(Scope, u64); 3]| {
        let s = stores.clone();
        move |o: &dyn opentelemetry::metrics::AsyncInstrument<u64>| {
            let views = views(&s);
            for (i, (scope, _)) in pick(&StoreView::EMPTY).into_iter().enumerate() {
                let n = views.iter().map(|v| pick(v)[i].1).sum();
                o.observe(n, &[KeyValue::new("scope", scope.as_str())]);
            }
        }
    };
    meter
        .u64_observable_counter("wa_verify.limiter.shadow_refusals")
        .with_unit("{call}")
        .with_description("Calls a quota would have refused, let through in shadow mode.")
        .with_callback(by_scope(|v| v.shadow))
        .build();
    meter
        .u64_observable_counter("wa_verify.limiter.near_limit")
        .with_unit("{call}")
        .with_description("Calls that left a quota at least 80% used.")
        .with_callback(by_scope(|v| v.near))
        .build();
}
