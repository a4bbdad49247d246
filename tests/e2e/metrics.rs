//! Metrics: `/metrics` scraped from real `bench` and `sandbox` processes, checked against
//! the run's JSON report and the sandbox's own counts. See: issue 23.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use wa_verify_sandbox::{FaultKind, SandboxConfig, SandboxHandle};

use crate::support::*;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};

/// The provider takes its reader by value; the test keeps reading it.
#[derive(Clone, Debug)]
struct Shared(std::sync::Arc<ManualReader>);

impl MetricReader for Shared {
    fn register_pipeline(&self, p: std::sync::Weak<opentelemetry_sdk::metrics::Pipeline>) {
        self.0.register_pipeline(p);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, t: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(t)
    }
    fn temporality(
        &self,
        kind: opentelemetry_sdk::metrics::InstrumentKind,
    ) -> opentelemetry_sdk::metrics::Temporality {
        self.0.temporality(kind)
    }
}

/// A provider whose metrics the test collects, and every `u64` counter's points after a
/// collection, as (name, attributes, value).
fn sdk() -> (SdkMeterProvider, std::sync::Arc<ManualReader>) {
    let reader = std::sync::Arc::new(ManualReader::builder().build());
    let provider = SdkMeterProvider::builder()
        .with_reader(Shared(reader.clone()))
        .build();
    (provider, reader)
}

fn u64_counters(reader: &ManualReader) -> BTreeMap<String, Vec<(String, u64)>> {
    let mut rm = ResourceMetrics::default();
    reader.collect(&mut rm).unwrap();
    let mut counters: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for m in rm.scope_metrics().flat_map(|s| s.metrics()) {
        if let AggregatedMetrics::U64(MetricData::Sum(sum)) = m.data() {
            for p in sum.data_points() {
                let attrs: Vec<String> = p
                    .attributes()
                    .map(|kv| format!("{}={}", kv.key, kv.value))
                    .collect();
                counters
                    .entry(m.name().to_owned())
                    .or_default()
                    .push((attrs.join(","), p.value()));
            }
        }
    }
    counters
}

/// One sample of Prometheus text: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The scraped text: its samples and the `# TYPE` of each family.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let mut samples = Vec::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap_or_else(|e| panic!("{e}: {line}")),
            });
        }
        Self {
            text,
            samples,
            types,
        }
    }

    /// The sum of `name`'s samples whose labels include every pair of `having`.
    fn sum(&self, name: &str, having: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                having
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| s.name == name)
    }

    fn kind(&self, family: &str) -> &str {
        self.types.get(family).map_or_else(
            || panic!("no # TYPE for {family}:\n{}", self.text),
            String::as_str,
        )
    }
}

/// A `bench` run against `sb` that serves its metrics and keeps serving after its report:
/// the report, the final scrape, then the process is ended.
async fn bench_and_scrape(sb: &SandboxHandle, extra: &[&str]) -> (serde_json::Value, Scrape) {
    let mut args = vec![
        "bench",
        "--output",
        "json",
        "--metrics-listen",
        "127.0.0.1:0",
        "--metrics-hold",
        "120s",
    ];
    args.extend_from_slice(extra);
    let mut child = against(sb, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (url, report) = tokio::time::timeout(Duration::from_secs(120), read_run(&mut child))
        .await
        .expect("the bench ran and reported within 120 s");
    let res = plain("GET", &url, &[], "").await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(res.status, 200);
    let content_type = res.header("content-type").unwrap_or_default().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = String::from_utf8(res.body.to_vec()).unwrap();
    (report, Scrape::parse(text))
}

/// The metrics URL from the bench's stderr, then its one-line JSON report from stdout.
async fn read_run(child: &mut Child) -> (String, serde_json::Value) {
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut err = BufReader::new(stderr);
        let mut url = None;
        // Bounded: the line comes before the run starts.
        for _ in 0..100 {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(u) = line.trim().strip_prefix("wa-verify: metrics at ") {
                url = Some(u.to_owned());
                break;
            }
        }
        let url = url.expect("the bench printed its metrics URL on stderr");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        // Keep draining stderr so the process never blocks on it.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut err.take(1 << 20), &mut std::io::sink());
        });
        let report = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
        (url, report)
    })
    .await
    .unwrap()
}

fn n(v: &serde_json::Value) -> f64 {
    v.as_u64().unwrap_or_else(|| panic!("a count: {v}")) as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_metrics_have_the_names_units_and_attributes_and_match_the_json_report() {
    // Some answers are Meta's 429 (with a wait longer than the call's deadline, so each
    // ends its call), and a per-number quota refuses some calls locally.
    let mut config = SandboxConfig::default();
    config.faults.probability = 0.05;
    config.faults.kinds = vec![FaultKind::RateLimited429];
    config.faults.retry_after_secs = 3600;
    let sb = sandbox(config).await;
    let (r, m) = bench_and_scrape(
        &sb,
        &[
            "--numbers",
            "40",
            "--first-number-id",
            "7700000000",
            "--duration",
            "1s",
            "--concurrency",
            "8",
            "--per-number-rate",
            "20/s",
            "--per-number-burst",
            "2",
        ],
    )
    .await;
    // Names, kinds and units (the unit is the name's suffix in Prometheus).
    for (family, kind) in [
        ("http_client_request_duration_seconds", "histogram"),
        ("wa_verify_call_duration_seconds", "histogram"),
        ("wa_verify_call_attempts", "histogram"),
        ("wa_verify_codes_requested_total", "counter"),
        ("wa_verify_throttles_total", "counter"),
        ("wa_verify_cooldowns_started_total", "counter"),
        ("wa_verify_cooldowns_active", "gauge"),
        ("wa_verify_limiter_refusals_total", "counter"),
        ("wa_verify_limiter_shadow_refusals_total", "counter"),
        ("wa_verify_limiter_near_limit_total", "counter"),
        ("wa_verify_store_fallbacks_total", "counter"),
    ] {
        assert_eq!(m.kind(family), kind, "{family}");
    }
    // OpenTelemetry's HTTP client attributes on every attempt.
    let attempts: Vec<_> = m.of("http_client_request_duration_seconds_count").collect();
    assert!(!attempts.is_empty());
    for s in &attempts {
        assert_eq!(s.labels["http_request_method"], "POST", "{s:?}");
        assert_eq!(s.labels["server_address"], "127.0.0.1", "{s:?}");
        let status = &s.labels["http_response_status_code"];
        assert!(status == "200" || status == "429", "{s:?}");
        assert_eq!(
            s.labels.contains_key("error_type"),
            status != "200",
            "{s:?}"
        );
    }
    for s in m.of("wa_verify_call_duration_seconds_count") {
        assert_eq!(s.labels["operation"], "request_code", "{s:?}");
        assert!(s.labels.contains_key("outcome"), "{s:?}");
    }
    // The values are the report's.
    assert_eq!(
        m.sum("wa_verify_call_duration_seconds_count", &[]),
        n(&r["calls"])
    );
    assert_eq!(m.sum("wa_verify_call_attempts_count", &[]), n(&r["calls"]));
    assert_eq!(m.sum("wa_verify_call_attempts_sum", &[]), n(&r["requests"]));
    assert_eq!(
        m.sum("http_client_request_duration_seconds_count", &[]),
        n(&r["requests"])
    );
    let upstream_429 = n(&r["rate_limit"]["upstream_429"]);
    assert!(upstream_429 > 0.0, "5% of answers are 429: {r}");
    assert_eq!(
        m.sum(
            "http_client_request_duration_seconds_count",
            &[("http_response_status_code", "429")]
        ),
        upstream_429
    );
    assert_eq!(
        m.sum("wa_verify_throttles_total", &[("error_code", "4")]),
        upstream_429
    );
    let refusals = n(&r["rate_limit"]["local_refusals"]);
    assert!(
        refusals > 0.0,
        "the quota and the learned cooldowns refuse some: {r}"
    );
    assert_eq!(m.sum("wa_verify_limiter_refusals_total", &[]), refusals);
    assert_eq!(
        m.sum(
            "wa_verify_call_duration_seconds_count",
            &[("outcome", "success")]
        ),
        n(&r["succeeded"])
    );
    assert_eq!(
        m.sum("wa_verify_codes_requested_total", &[("code_method", "SMS")]),
        n(&r["succeeded"])
    );
    // Each 429 taught a cooldown of its number.
    assert_eq!(
        m.sum("wa_verify_cooldowns_started_total", &[("scope", "number")]),
        upstream_429
    );
    // What the sandbox itself counted.
    let st = sb.stats();
    assert_eq!(
        st.by_status.get("429").copied().unwrap_or(0) as f64,
        upstream_429
    );
    assert_eq!(st.requests as f64, n(&r["requests"]));
    assert_eq!(st.codes_sent as f64, n(&r["succeeded"]));
    // No number id in any attribute (nor anywhere else in the text).
    for id in 7_700_000_000u64..7_700_000_040 {
        assert!(!m.text.contains(&id.to_string()), "{id} in the metrics");
    }
    // Graph codes and subcodes (7 digits, like 2446079) are the only long numbers.
    for s in &m.samples {
        for (k, v) in s.labels.iter().filter(|(k, _)| !k.starts_with("error_")) {
            assert!(
                v.len() < 7 || !v.bytes().all(|b| b.is_ascii_digit()),
                "an id-like value in {k}: {s:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_shadow_mode_every_call_is_sent_and_the_refusals_it_would_make_are_counted() {
    let sb = sandbox(SandboxConfig::default()).await;
    let dir = std::env::temp_dir().join(format!("wa-verify-shadow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shadow.toml");
    std::fs::write(&file, "[rate_limit]\nmode = \"shadow\"\n").unwrap();
    let (r, m) = bench_and_scrape(
        &sb,
        &[
            "--config",
            file.to_str().unwrap(),
            "--numbers",
            "4",
            "--duration",
            "1s",
            "--concurrency",
            "8",
            "--per-number-rate",
            "2/s",
            "--per-number-burst",
            "1",
        ],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let calls = n(&r["calls"]);
    // Every call went out: nothing refused, the sandbox answered each one.
    assert_eq!(n(&r["rate_limit"]["local_refusals"]), 0.0, "{r}");
    assert_eq!(n(&r["succeeded"]), calls, "{r}");
    assert_eq!(n(&r["requests"]), calls, "{r}");
    assert_eq!(sb.stats().requests as f64, calls);
    assert_eq!(m.sum("wa_verify_limiter_refusals_total", &[]), 0.0);
    // Enforced, 4 numbers at 2/s with a burst of 1 would let at most 4 × (1 + 2 × 2) go
    // in a run of under 2 s (a wide margin): the rest are counted as shadow refusals.
    let would_go = 4.0 * (1.0 + 2.0 * (r["duration_s"].as_f64().unwrap().ceil() + 1.0));
    let shadowed = m.sum(
        "wa_verify_limiter_shadow_refusals_total",
        &[("scope", "number")],
    );
    assert!(calls > would_go, "the run is long enough to bind: {r}");
    assert!(shadowed >= calls - would_go, "{shadowed} of {calls}: {r}");
    assert!(
        shadowed < calls,
        "the first calls of each number were allowed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_serves_its_own_counters() {
    let mut child = wa(&[
        "sandbox",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ])
    .env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN)
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut r = BufReader::new(stdout);
        let mut lines = Vec::new();
        for _ in 0..2 {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            lines.push(line.trim().to_owned());
        }
        // Keep reading, so the sandbox never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        lines
    })
    .await
    .unwrap();
    let base = lines[0].rsplit(' ').next().unwrap().to_owned();
    let metrics = lines[1]
        .strip_prefix("metrics at ")
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_owned();
    let auth = format!("Bearer {FAKE_TOKEN}");
    let send = |id: &'static str| {
        let (base, auth) = (base.clone(), auth.clone());
        async move {
            plain(
                "POST",
                &format!("{base}/v23.0/{id}/request_code"),
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                r#"{"code_method":"SMS","language":"en_US"}"#,
            )
            .await
            .unwrap()
            .status
        }
    };
    assert_eq!(send("1234567890").await, 200);
    assert_eq!(send("12ab").await, 400);
    let res = plain("GET", &metrics, &[], "").await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let m = Scrape::parse(String::from_utf8(res.body.to_vec()).unwrap());
    assert_eq!(
        m.sum("wa_verify_sandbox_answers_total", &[("status", "200")]),
        1.0
    );
    assert_eq!(
        m.sum("wa_verify_sandbox_answers_total", &[("status", "400")]),
        1.0
    );
    assert_eq!(m.sum("wa_verify_sandbox_errors_total", &[]), 1.0);
    assert_eq!(m.sum("wa_verify_sandbox_codes_sent_total", &[]), 1.0);
    assert!(!m.text.contains("1234567890"), "no number id: {}", m.text);
}

/// The domain counters of a library client, read through the SDK as an app would: codes
/// sent, a dedup answer, a wrong code, Meta's throttle and the cooldown it taught.
#[tokio::test(flavor = "multi_thread")]
async fn a_library_client_counts_codes_dedup_answers_wrong_codes_and_throttles() {
    let mut config = SandboxConfig::default();
    config.number_faults.insert(
        "4402".to_owned(),
        wa_verify_sandbox::NumberFault::always(FaultKind::RateLimited429),
    );
    config.faults.retry_after_secs = 3600;
    let sb = sandbox(config).await;
    let (provider, reader) = sdk();
    let c = wa_verify_core::Client::builder()
        .config(client_config(sb.base_url()))
        .token(token())
        .meter(&provider.meter("test"))
        .build()
        .unwrap();
    c.request_code(request("4401")).await.unwrap();
    let again = c.request_code(request("4401")).await.unwrap();
    assert!(again.already_sent().is_some());
    let wrong = c.verify_code(verify("4401", "000000")).await.unwrap_err();
    assert_eq!(
        wrong.kind(),
        wa_verify_core::ErrorKind::WrongCode,
        "{wrong}"
    );
    let throttled = c.request_code(request("4402")).await.unwrap_err();
    assert_eq!(throttled.status().map(|s| s.as_u16()), Some(429));

    let counters = u64_counters(&reader);
    let get = |name: &str| counters.get(name).cloned().unwrap_or_default();
    assert_eq!(
        get("wa_verify.codes.requested"),
        [("code_method=SMS".to_owned(), 1)]
    );
    assert_eq!(
        get("wa_verify.dedup.calls"),
        [("outcome=already_sent".to_owned(), 1)]
    );
    assert_eq!(get("wa_verify.codes.wrong"), [(String::new(), 1)]);
    assert_eq!(
        get("wa_verify.throttles"),
        [("error.code=4,error.subcode=2446079".to_owned(), 1)]
    );
    assert_eq!(
        get("wa_verify.cooldowns.started"),
        [("scope=number".to_owned(), 1)]
    );
    let text = format!("{counters:?}");
    assert!(!text.contains("4401") && !text.contains("4402"), "{text}");
}

/// Two clients sharing one `Metrics`: the store-read instruments are registered once and
/// add both stores up; a client's store drops out once the client is gone.
#[tokio::test(flavor = "multi_thread")]
async fn clients_sharing_one_metrics_add_up_and_a_dropped_one_drops_out() {
    let sb = sandbox(SandboxConfig::default()).await;
    let (provider, reader) = sdk();
    let metrics = wa_verify_core::metrics::Metrics::new(&provider.meter("test"));
    let client = || {
        let mut config = sending_config(sb.base_url());
        config.rate_limit.per_number = vec!["1/h"
            .parse::<wa_verify_core::rate_limit::Rate>()
            .map(|r| wa_verify_core::rate_limit::Quota::new(r, 1))
            .unwrap()];
        config.rate_limit.mode = wa_verify_core::rate_limit::LimitMode::Shadow;
        wa_verify_core::Client::builder()
            .config(config)
            .token(token())
            .metrics(metrics.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (client(), client());
    // Each sends three codes to one number: two would have been refused, in each store.
    for c in [&a, &b] {
        for _ in 0..3 {
            c.request_code(request("4501")).await.unwrap();
        }
    }
    let shadow = |r: &ManualReader| {
        u64_counters(r)
            .get("wa_verify.limiter.shadow_refusals")
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == "scope=number")
            .map(|x| x.1)
    };
    assert_eq!(shadow(&reader), Some(4), "2 + 2, under one name");
    assert_eq!(sb.stats().codes_sent, 6, "shadow mode sent every call");
    drop(b);
    assert_eq!(
        shadow(&reader),
        Some(2),
        "the dropped client's store is gone"
    );
    drop(a);
}
