//! Layer overhead: the full default stack and each layer alone, over an in-memory HTTP
//! service, against the bare `Graph` boundary over the same service (ns per call), and
//! the heap allocations each makes per call (counted by an instrumented allocator).

mod support;

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tower::{Layer, ServiceExt};
use wa_verify_core::auth::AuthLayer;
use wa_verify_core::dedup::{DedupConfig, DedupLayer};
use wa_verify_core::graph::GraphLayer;
use wa_verify_core::rate_limit::{MemoryStore, RateLimitLayer};
use wa_verify_core::retry::{RetryLayer, RetryPolicy};
use wa_verify_core::timeout::{AttemptTimeoutLayer, DeadlineLayer};
use wa_verify_core::trace::TraceLayer;
use wa_verify_core::{CodeMethod, Language, PhoneNumberId, RequestCode};

use support::{full_stack, full_stack_metered, never_binding, op, Canned, FAKE_TOKEN};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Prints the allocations and bytes `call` makes per call, over 10 000 calls after 1 000
/// warm-up calls (pools, maps and lazily built state are in place by then).
fn allocations<F: std::future::Future>(
    rt: &tokio::runtime::Runtime,
    name: &str,
    mut call: impl FnMut(u64) -> F,
) {
    rt.block_on(async {
        for i in 0..1_000 {
            black_box(call(i).await);
        }
        let region = Region::new(GLOBAL);
        for i in 1_000..11_000 {
            black_box(call(i).await);
        }
        let c = region.change();
        println!(
            "allocations per call: {name}: {:.2} ({:.0} bytes)",
            c.allocations as f64 / 10_000.0,
            c.bytes_allocated as f64 / 10_000.0
        );
    });
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

macro_rules! bench_service {
    ($group:expr, $rt:expr, $name:expr, $svc:expr) => {{
        let svc = $svc;
        allocations(&$rt, $name, |i| {
            let call = svc.clone().oneshot(op(i));
            async move { call.await.unwrap() }
        });
        let mut i = 0u64;
        $group.bench_function(BenchmarkId::new($name, "canned_200"), |b| {
            b.to_async(&$rt).iter(|| {
                i += 1;
                let call = svc.clone().oneshot(black_box(op(i)));
                async move { black_box(call.await.unwrap()) }
            })
        });
    }};
}

fn layer_overhead(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("layer_overhead");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    let graph = || GraphLayer::new("http://127.0.0.1:1".parse().unwrap()).layer(Canned);
    bench_service!(g, rt, "bare_graph", graph());
    bench_service!(g, rt, "full_stack", full_stack());
    // Metrics' cost: a no-op provider (every instrument a no-op), then the SDK with a
    // manual reader (what `--metrics-listen` collects on each scrape).
    use opentelemetry::metrics::MeterProvider as _;
    let noop = opentelemetry::metrics::NoopMeterProvider::new().meter("bench");
    bench_service!(g, rt, "full_stack_metrics_noop", full_stack_metered(&noop));
    let sdk = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(opentelemetry_sdk::metrics::ManualReader::builder().build())
        .build();
    bench_service!(
        g,
        rt,
        "full_stack_metrics_sdk",
        full_stack_metered(&sdk.meter("bench"))
    );
    bench_service!(g, rt, "trace", TraceLayer::new().layer(graph()));
    bench_service!(
        g,
        rt,
        "deadline",
        DeadlineLayer::new(Some(Duration::from_secs(30))).layer(graph())
    );
    bench_service!(
        g,
        rt,
        "retry",
        RetryLayer::new(RetryPolicy::default()).layer(graph())
    );
    let store = MemoryStore::new(&[never_binding()], Some(never_binding()));
    bench_service!(
        g,
        rt,
        "rate_limit",
        RateLimitLayer::new(store).layer(graph())
    );
    bench_service!(
        g,
        rt,
        "attempt_timeout",
        AttemptTimeoutLayer::new(Some(Duration::from_secs(10))).layer(graph())
    );
    // Dedup on its happy path: a number not seen within its window. A 1 ms window and
    // 2^20 numbers keep the state at its steady size (expired windows are swept).
    let mut config = DedupConfig::default();
    config.window = Duration::from_millis(1);
    let dedup = DedupLayer::in_memory(config).layer(graph());
    // The full stack with dedup off and on, each call for a number not seen within the
    // window (1 ms here, over 2^20 numbers): the happy path, where every call sends.
    for on in [false, true] {
        let mut config = support::stack_config("http://127.0.0.1:1");
        config.dedup.enabled = on;
        config.dedup.window = Duration::from_millis(1);
        let client = wa_verify_core::Client::builder()
            .config(config)
            .token(FAKE_TOKEN.parse().unwrap())
            .build_with_http(Canned)
            .unwrap();
        let name = if on {
            "full_stack_dedup_on"
        } else {
            "full_stack_dedup_off"
        };
        allocations(&rt, name, |i| {
            let call = client.clone().oneshot(distinct(i));
            async move { call.await.unwrap() }
        });
        let mut i = 0u64;
        g.bench_function(BenchmarkId::new(name, "distinct_numbers"), |b| {
            b.to_async(&rt).iter(|| {
                i += 1;
                let call = client.clone().oneshot(black_box(distinct(i)));
                async move { black_box(call.await.unwrap()) }
            })
        });
    }
    allocations(&rt, "dedup", |i| {
        let call = dedup.clone().oneshot(distinct(i));
        async move { call.await.unwrap() }
    });
    let mut i = 0u64;
    g.bench_function(BenchmarkId::new("dedup", "canned_200"), |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let call = dedup.clone().oneshot(black_box(distinct(i)));
            async move { black_box(call.await.unwrap()) }
        })
    });
    let auth = AuthLayer::new(FAKE_TOKEN.parse().unwrap()).layer(Canned);
    bench_service!(
        g,
        rt,
        "auth",
        GraphLayer::new("http://127.0.0.1:1".parse().unwrap()).layer(auth)
    );
    g.finish();
}

/// A resend for one of 64 numbers: the dedup layer's path with the number's entry
/// already in its map (and in cache).
fn hot(i: u64) -> RequestCode {
    RequestCode::new(
        PhoneNumberId::from(3_000_000_000 + (i & 63)),
        CodeMethod::Sms,
        Language::default(),
    )
    .resend()
}

/// A request_code for the i-th of 2^20 numbers: with a 1 ms window, never one in its
/// window.
fn distinct(i: u64) -> RequestCode {
    RequestCode::new(
        PhoneNumberId::from(2_000_000_000 + (i & ((1 << 20) - 1))),
        CodeMethod::Sms,
        Language::default(),
    )
}

/// One batch: `calls` calls of `svc` in one `block_on`, the time per call.
fn batch<S, F>(rt: &tokio::runtime::Runtime, svc: &S, op: F, start: u64, calls: u64) -> f64
where
    S: tower::Service<RequestCode> + Clone,
    S::Error: std::fmt::Debug,
    F: Fn(u64) -> RequestCode,
{
    let t = std::time::Instant::now();
    rt.block_on(async {
        for i in start..start + calls {
            black_box(svc.clone().oneshot(black_box(op(i))).await.unwrap());
        }
    });
    t.elapsed().as_nanos() as f64 / calls as f64
}

/// `WA_BENCH_MIN=1 cargo bench --bench layers -- --bench`: the ns per call of the fastest of 1 000
/// batches of 2 000 calls per service, the services alternating batch by batch. On a VM
/// whose neighbours steal CPU, criterion's means move by ±100 ns between runs; the
/// fastest batch is the least disturbed one, so differences of a few tens of ns show.
fn min_of_batches() {
    const CALLS: u64 = 2_000;
    // Fewer for a run under a profiler (`WA_BENCH_BATCHES=5`).
    let batches: u64 = std::env::var("WA_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let rt = rt();
    let graph = || GraphLayer::new("http://127.0.0.1:1".parse().unwrap()).layer(Canned);
    let bare = graph();
    let mut config = DedupConfig::default();
    config.window = Duration::from_millis(1);
    let dedup = DedupLayer::in_memory(config).layer(graph());
    let full = full_stack();
    use opentelemetry::metrics::MeterProvider as _;
    let noop = full_stack_metered(&opentelemetry::metrics::NoopMeterProvider::new().meter("b"));
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(opentelemetry_sdk::metrics::ManualReader::builder().build())
        .build();
    let sdk = full_stack_metered(&provider.meter("b"));
    // `WA_BENCH_MIN=dedup` runs the dedup layer alone beside the bare boundary: over
    // distinct numbers (each call inserts its number's entry) and over 64 numbers resent
    // (each entry already there and in cache), to tell the map's share from the rest.
    let dedup_only = std::env::var("WA_BENCH_MIN").is_ok_and(|v| v == "dedup");
    let mut best = [f64::MAX; 5];
    // Dedup's cost batch by batch (its batch less the bare batch beside it): the median
    // of these moves less between runs than the difference of two minimums.
    let mut paired = Vec::new();
    for b in 0..batches {
        let start = b * CALLS;
        if dedup_only {
            let d = batch(&rt, &dedup, distinct, start, CALLS);
            let bare_t = batch(&rt, &bare, op, start, CALLS);
            best[1] = best[1].min(d);
            best[0] = best[0].min(bare_t);
            best[2] = best[2].min(batch(&rt, &dedup, hot, start, CALLS));
            paired.push(d - bare_t);
            continue;
        }
        let times = [
            batch(&rt, &bare, op, start, CALLS),
            batch(&rt, &dedup, distinct, start, CALLS),
            batch(&rt, &full, op, start, CALLS),
            batch(&rt, &noop, op, start, CALLS),
            batch(&rt, &sdk, op, start, CALLS),
        ];
        for (best, t) in best.iter_mut().zip(times) {
            *best = best.min(t);
        }
    }
    let [bare, dedup, full, noop, sdk] = best;
    println!("min of {batches} batches of {CALLS} calls, ns per call:");
    if dedup_only {
        println!("  bare_graph          {bare:7.0}");
        println!(
            "  dedup               {dedup:7.0}  (+{:.0}; distinct numbers)",
            dedup - bare
        );
        println!(
            "  dedup, 64 numbers   {full:7.0}  (+{:.0}; resent, entries in cache)",
            full - bare
        );
        paired.sort_by(f64::total_cmp);
        if let Some(median) = paired.get(paired.len() / 2) {
            println!(
                "  dedup's cost, median of {} paired batches: +{median:.0}",
                paired.len()
            );
        }
        return;
    }
    println!("  bare_graph          {bare:7.0}");
    println!(
        "  dedup               {dedup:7.0}  (+{:.0} over bare_graph)",
        dedup - bare
    );
    println!(
        "  full_stack          {full:7.0}  (+{:.0} over bare_graph)",
        full - bare
    );
    println!(
        "  full_stack + noop   {noop:7.0}  (+{:.0} over full_stack)",
        noop - full
    );
    println!(
        "  full_stack + sdk    {sdk:7.0}  (+{:.0} over full_stack)",
        sdk - full
    );
}

criterion_group!(benches, layer_overhead);

fn main() {
    if std::env::var_os("WA_BENCH_MIN").is_some() {
        min_of_batches();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
