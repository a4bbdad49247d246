//! The per-number limiter: check cost and bytes per tracked number at 1, 10k and 1M
//! numbers, memory after idle numbers are evicted, and `u64` against `String` keys.
//!
//! Memory is counted by an instrumented global allocator, so it is exact heap bytes.

mod support;

use std::alloc::System;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use governor::clock::FakeRelativeClock;
use governor::RateLimiter;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use wa_verify_core::rate_limit::{MemoryStore, Quota, QuotaClass, RateLimitStore};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Spreads keys like real ids (15-16 digits, not sequential).
fn key(i: u64) -> u64 {
    100_000_000_000_000 + i.wrapping_mul(0x9e37_79b9) % 900_000_000_000_000
}

fn live_bytes(region: &Region<'_, System>) -> i64 {
    let c = region.change();
    c.bytes_allocated as i64 - c.bytes_deallocated as i64 + c.bytes_reallocated as i64
}

fn quota() -> Quota {
    Quota::new("1/s".parse().unwrap(), 1)
}

fn limiter_keyed(c: &mut Criterion) {
    // A paused tokio clock drives the store's clock, so time moves only when told.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = rt.enter();
    let quick = std::env::args().all(|a| a != "--bench");
    let sizes: &[u64] = if quick {
        &[1, 10_000]
    } else {
        &[1, 10_000, 1_000_000]
    };
    println!("\nlimiter memory (u64 keys, governor DashMap, one quota):");
    println!("| numbers | heap bytes | bytes/number | heap after eviction | numbers after |");
    println!("|---|---|---|---|---|");
    for &n in sizes {
        let region = Region::new(GLOBAL);
        let store = MemoryStore::with_eviction(&[quota()], None, 0);
        for i in 0..n {
            store.acquire(Some(key(i)), QuotaClass::RequestCode);
        }
        let bytes = live_bytes(&region);
        rt.block_on(tokio::time::advance(Duration::from_secs(2)));
        store.evict();
        let after = live_bytes(&region);
        println!(
            "| {n} | {bytes} | {:.1} | {after} | {} |",
            bytes as f64 / n as f64,
            store.tracked_numbers()
        );
    }
    string_keys(if quick { 10_000 } else { 1_000_000 });

    let mut g = c.benchmark_group("limiter_keyed");
    g.throughput(Throughput::Elements(1));
    for &n in sizes {
        // Never binding: every check takes the "go" path, the common case.
        let store = MemoryStore::with_eviction(&[support::never_binding()], None, 0);
        for i in 0..n {
            store.acquire(Some(key(i)), QuotaClass::RequestCode);
        }
        let mut i = 0u64;
        g.bench_with_input(BenchmarkId::new("check", n), &n, |b, &n| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(store.acquire(Some(black_box(key(i))), QuotaClass::RequestCode));
            })
        });
    }
    g.finish();
}

/// The same governor limiter keyed by `String`, for the bytes-per-key comparison.
fn string_keys(n: u64) {
    let region = Region::new(GLOBAL);
    let limiter = RateLimiter::dashmap_with_clock(
        governor::Quota::per_second(NonZeroU32::MIN),
        FakeRelativeClock::default(),
    );
    for i in 0..n {
        let _ = limiter.check_key(&key(i).to_string());
    }
    println!(
        "String keys: {n} numbers, {:.1} bytes/number\n",
        live_bytes(&region) as f64 / n as f64
    );
}

criterion_group!(benches, limiter_keyed);
criterion_main!(benches);
