//! `--metrics-listen`: the stack's OpenTelemetry metrics (and a sandbox's own counters)
//! served as Prometheus text at `/metrics`, through prometheus-client's encoder.
//!
//! The bridge: an OpenTelemetry SDK `ManualReader` is collected on each scrape and every
//! data point is handed to prometheus-client as a custom collector, with OpenTelemetry's
//! names translated the way Prometheus expects (`.` → `_`, the unit as a suffix, `_total`
//! on counters).

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use wa_verify_sandbox::Stats;

/// The SDK side: a meter provider whose reader the exporter collects on each scrape.
pub(crate) struct Exporter {
    provider: SdkMeterProvider,
    registry: Registry,
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

/// Lends the provider a reader the collector keeps too (the provider takes its reader
/// by value).
#[derive(Clone, Debug)]
struct Shared(Arc<ManualReader>);

impl MetricReader for Shared {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

impl Exporter {
    /// A provider, and a registry that collects it.
    pub(crate) fn new() -> Self {
        let reader = Arc::new(ManualReader::builder().build());
        let provider = SdkMeterProvider::builder()
            .with_reader(Shared(reader.clone()))
            .build();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(OtelCollector(reader)));
        Self { provider, registry }
    }

    /// Serves a sandbox's own counters beside the client's.
    pub(crate) fn add_sandbox(&mut self, stats: Box<dyn Fn() -> Stats + Send + Sync>) {
        self.registry
            .register_collector(Box::new(SandboxCollector(stats)));
    }

    /// A registry serving only a sandbox's counters.
    pub(crate) fn sandbox_only(stats: Box<dyn Fn() -> Stats + Send + Sync>) -> Arc<Registry> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SandboxCollector(stats)));
        Arc::new(registry)
    }

    /// The meter the client records in.
    pub(crate) fn meter(&self) -> Meter {
        self.provider.meter("wa-verify")
    }

    /// What `/metrics` serves: the registry, from now on shared with the server (the
    /// collectors read live state, so later values still show).
    pub(crate) fn registry(&mut self) -> Arc<Registry> {
        Arc::new(std::mem::take(&mut self.registry))
    }
}

/// Binds `addr` (loopback only) and serves `registry` at `GET /metrics` until the
/// returned task is dropped or aborted.
pub(crate) async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), String> {
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--metrics-listen must be a loopback address (127.0.0.1:PORT or [::1]:PORT), got {addr}"
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics-listen {addr}: cannot listen: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move { scrape(&registry) }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}

fn scrape(registry: &Registry) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut body = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut body, registry) {
        Ok(()) => (
            [(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode the metrics\n",
        )
            .into_response(),
    }
}

// ===== OpenTelemetry → prometheus-client =====

#[derive(Debug)]
struct OtelCollector(Arc<ManualReader>);

/// A Prometheus name from an OpenTelemetry one: every character outside
/// `[a-zA-Z0-9_:]` becomes `_`.
fn prom_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The Prometheus unit suffix of an OpenTelemetry unit: `s` is seconds; annotations in
/// braces (`{call}`) and `1` have none.
fn prom_unit(unit: &str) -> Option<Unit> {
    match unit {
        "s" => Some(Unit::Seconds),
        "By" => Some(Unit::Bytes),
        "" | "1" => None,
        u if u.starts_with('{') => None,
        u => Some(Unit::Other(prom_name(u))),
    }
}

fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>) -> Vec<(String, String)> {
    attrs
        .map(|kv| {
            let v = match &kv.value {
                Value::String(s) => s.as_str().to_owned(),
                other => other.to_string(),
            };
            (prom_name(kv.key.as_str()), v)
        })
        .collect()
}

impl Collector for OtelCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let mut rm = ResourceMetrics::default();
        if self.0.collect(&mut rm).is_err() {
            return Ok(());
        }
        for scope in rm.scope_metrics() {
            for m in scope.metrics() {
                let name = prom_name(m.name());
                let unit = prom_unit(m.unit());
                let help = m.description();
                match m.data() {
                    AggregatedMetrics::U64(d) => {
                        encode_data(&mut encoder, &name, help, unit.as_ref(), d, |v| v as f64)?
                    }
                    AggregatedMetrics::I64(d) => {
                        encode_data(&mut encoder, &name, help, unit.as_ref(), d, |v| v as f64)?
                    }
                    AggregatedMetrics::F64(d) => {
                        encode_data(&mut encoder, &name, help, unit.as_ref(), d, |v| v)?
                    }
                }
            }
        }
        Ok(())
    }
}

fn encode_data<T: Copy>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    data: &MetricData<T>,
    f: impl Fn(T) -> f64,
) -> Result<(), fmt::Error> {
    match data {
        MetricData::Sum(sum) if sum.is_monotonic() => {
            let mut e = encoder.encode_descriptor(name, help, unit, MetricType::Counter)?;
            for p in sum.data_points() {
                let l = labels(p.attributes());
                e.encode_family(&l)?
                    .encode_counter::<Vec<(String, String)>, f64, f64>(&f(p.value()), None)?;
            }
        }
        MetricData::Sum(sum) => {
            let mut e = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
            for p in sum.data_points() {
                let l = labels(p.attributes());
                e.encode_family(&l)?.encode_gauge(&f(p.value()))?;
            }
        }
        MetricData::Gauge(g) => {
            let mut e = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
            for p in g.data_points() {
                let l = labels(p.attributes());
                e.encode_family(&l)?.encode_gauge(&f(p.value()))?;
            }
        }
        MetricData::Histogram(h) => {
            let mut e = encoder.encode_descriptor(name, help, unit, MetricType::Histogram)?;
            for p in h.data_points() {
                let l = labels(p.attributes());
                let bounds = p.bounds().chain(std::iter::once(f64::INFINITY));
                let buckets: Vec<(f64, u64)> = bounds.zip(p.bucket_counts()).collect();
                e.encode_family(&l)?
                    .encode_histogram::<Vec<(String, String)>>(
                        f(p.sum()),
                        p.count(),
                        &buckets,
                        None,
                    )?;
            }
        }
        // Not made by this crate's instruments.
        MetricData::ExponentialHistogram(_) => {}
    }
    Ok(())
}

// ===== the sandbox's own counters =====

/// The sandbox's counts, read on each scrape: what the server answered, independent of
/// any client's metrics.
struct SandboxCollector(Box<dyn Fn() -> Stats + Send + Sync>);

impl fmt::Debug for SandboxCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SandboxCollector")
    }
}

impl Collector for SandboxCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let s = (self.0)();
        let counter = |encoder: &mut DescriptorEncoder<'_>,
                       name: &str,
                       help: &str,
                       key: &str,
                       values: &std::collections::BTreeMap<String, u64>|
         -> Result<(), fmt::Error> {
            let mut e = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (v, n) in values {
                let l = vec![(key.to_owned(), v.clone())];
                e.encode_family(&l)?
                    .encode_counter::<Vec<(String, String)>, u64, f64>(n, None)?;
            }
            Ok(())
        };
        counter(
            &mut encoder,
            "wa_verify_sandbox_answers",
            "Answers the sandbox gave, by HTTP status (dropped: closed without one).",
            "status",
            &s.by_status,
        )?;
        counter(
            &mut encoder,
            "wa_verify_sandbox_errors",
            "Error answers the sandbox gave, by Graph code.",
            "code",
            &s.by_error_code,
        )?;
        let mut e = encoder.encode_descriptor(
            "wa_verify_sandbox_codes_sent",
            "Verification codes the sandbox sent.",
            None,
            MetricType::Counter,
        )?;
        e.encode_counter::<NoLabelSet, u64, f64>(&s.codes_sent, None)?;
        let mut e = encoder.encode_descriptor(
            "wa_verify_sandbox_requests",
            "Requests the sandbox answered on the API paths.",
            None,
            MetricType::Counter,
        )?;
        e.encode_counter::<NoLabelSet, u64, f64>(&s.requests, None)
    }
}
