use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt};
use wa_verify_core::rate_limit::{MemoryStore, Quota, RateLimitLayer};
use wa_verify_core::ErrorKind;

use crate::support::*;

fn quota(rate: &str, burst: u32) -> Quota {
    Quota::new(rate.parse().unwrap(), burst)
}

#[tokio::test(start_paused = true)]
async fn fails_fast_without_calling_the_inner_service() {
    let inner = Scripted::new([]);
    let store = MemoryStore::new(&[quota("1/s", 1)], None);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new(store))
        .service(inner.clone());
    svc.clone().oneshot(op("1")).await.unwrap();
    let e = svc.clone().oneshot(op("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(e.attempts(), 0);
    assert!(!e.may_have_reached_server());
    assert_eq!(inner.count(), 1);
    // Another number has its own quota.
    svc.oneshot(op("2")).await.unwrap();
    assert_eq!(inner.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn waits_for_the_slot_up_to_max_wait() {
    let started = tokio::time::Instant::now();
    let inner = Scripted::new([]);
    let store = MemoryStore::new(&[quota("1/s", 1)], None);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new(store).max_wait(Duration::from_secs(2)))
        .service(inner.clone());
    for _ in 0..3 {
        svc.clone().oneshot(op("1")).await.unwrap();
    }
    let t = inner.times();
    assert_eq!(t[1] - t[0], Duration::from_secs(1));
    assert_eq!(t[2] - t[1], Duration::from_secs(1));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn the_layer_counts_waits_and_refusals() {
    let layer = RateLimitLayer::new(MemoryStore::new(&[quota("1/s", 1)], None))
        .max_wait(Duration::from_millis(1500));
    let stats = layer.stats().clone();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(Scripted::new([]));
    svc.clone().oneshot(op("1")).await.unwrap();
    svc.clone().oneshot(op("1")).await.unwrap();
    assert_eq!((stats.waits(), stats.refusals()), (1, 0));
    let a = svc.clone().oneshot(op("1"));
    let b = svc.clone().oneshot(op("1"));
    let (a, b) = tokio::join!(a, b);
    // Both wait for the same slot; one gets it, the other then needs another second.
    assert!(a.is_ok() != b.is_ok());
    assert_eq!((stats.waits(), stats.refusals()), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn refuses_at_once_when_the_slot_is_beyond_max_wait() {
    let store = MemoryStore::new(&[quota("1/min", 1)], None);
    let inner = Scripted::new([]);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new(store).max_wait(Duration::from_secs(5)))
        .service(inner.clone());
    svc.clone().oneshot(op("1")).await.unwrap();
    let started = tokio::time::Instant::now();
    let e = svc.oneshot(op("1")).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn ten_concurrent_calls_under_1_per_second_give_one_success() {
    let inner = Scripted::new([]);
    let store = MemoryStore::new(&[quota("1/s", 1)], None);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new(store))
        .service(inner.clone());
    let calls = (0..10).map(|_| svc.clone().oneshot(op("7")));
    let results = futures_join_all(calls).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(
        results
            .iter()
            .filter(|r| r
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::RateLimited))
            .count(),
        9
    );
    assert_eq!(inner.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn global_and_per_number_quotas_bind_together() {
    let inner = Scripted::new([]);
    let store = MemoryStore::new(&[quota("1/min", 1)], Some(quota("2/s", 2)));
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new(store))
        .service(inner.clone());
    svc.clone().oneshot(op("1")).await.unwrap();
    // Per-number binds for number 1.
    let e = svc.clone().oneshot(op("1")).await.unwrap_err();
    assert!(e.to_string().contains("per-number"), "{e}");
    svc.clone().oneshot(op("2")).await.unwrap();
    // Global binds for a fresh number.
    let e = svc.clone().oneshot(op("3")).await.unwrap_err();
    assert!(e.to_string().contains("global"), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_millis(500)));
    assert_eq!(inner.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn two_per_number_quotas_both_bind() {
    let inner = Scripted::new([]);
    let store = MemoryStore::new(&[quota("1/min", 1), quota("3/h", 3)], None);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new(store))
        .service(inner.clone());
    for i in 0..2 {
        svc.clone().oneshot(op("1")).await.unwrap();
        let e = svc.clone().oneshot(op("1")).await.unwrap_err();
        assert!(
            e.retry_after().unwrap() <= Duration::from_secs(60),
            "short quota binds ({i})"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
    }
    svc.clone().oneshot(op("1")).await.unwrap();
    // Both bind now; the answer is the time until every quota allows, as in Redis.
    let e = svc.clone().oneshot(op("1")).await.unwrap_err();
    assert!(
        e.retry_after().unwrap() > Duration::from_secs(60),
        "the hourly quota binds: {e}"
    );
    assert_eq!(inner.count(), 3);
}

/// A call refused by one limit takes no slot of the others: the global quota refusing
/// leaves the number's quota untouched, and the other way round. See: issue 16.
#[tokio::test(start_paused = true)]
async fn a_refused_call_takes_no_slot_of_any_limit() {
    let inner = Scripted::new([]);
    let store = MemoryStore::new(&[quota("1/s", 1)], Some(quota("1/s", 1)));
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new(store))
        .service(inner.clone());
    svc.clone().oneshot(op("1")).await.unwrap();
    // Number 2 is refused by the global quota: its own slot stays free.
    let e = svc.clone().oneshot(op("2")).await.unwrap_err();
    assert!(e.to_string().contains("global"), "{e}");
    tokio::time::advance(Duration::from_secs(1)).await;
    svc.clone().oneshot(op("2")).await.unwrap();
    // Number 2 is refused by its own quota: the global slot stays free for number 3.
    let e = svc.clone().oneshot(op("2")).await.unwrap_err();
    assert!(e.to_string().contains("per-number"), "{e}");
    tokio::time::advance(Duration::from_secs(1)).await;
    svc.clone().oneshot(op("3")).await.unwrap();
    assert_eq!(inner.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn idle_numbers_are_evicted() {
    let store = MemoryStore::with_eviction(&[quota("1/s", 1)], None, 0);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new(store.clone()))
        .service(Scripted::new([]));
    for i in 0..1000u32 {
        svc.clone().oneshot(op(&i.to_string())).await.unwrap();
    }
    assert_eq!(store.tracked_numbers(), 1000);
    store.evict();
    assert_eq!(store.tracked_numbers(), 1000, "still within their period");
    tokio::time::advance(Duration::from_secs(2)).await;
    store.evict();
    assert_eq!(store.tracked_numbers(), 0);
}

#[tokio::test(start_paused = true)]
async fn eviction_runs_on_a_call_count() {
    let store = MemoryStore::with_eviction(&[quota("1/s", 1)], None, 100);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new(store.clone()))
        .service(Scripted::new([]));
    for i in 0..99u32 {
        svc.clone().oneshot(op(&i.to_string())).await.unwrap();
    }
    tokio::time::advance(Duration::from_secs(2)).await;
    svc.oneshot(op("5000")).await.unwrap();
    assert!(store.tracked_numbers() <= 1, "{}", store.tracked_numbers());
}

/// Polls every future to completion on this task (no extra dependency for join_all).
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await);
    }
    out
}

mod learning {
    use std::time::Duration;

    use tower::{ServiceBuilder, ServiceExt};
    use wa_verify_core::rate_limit::{Limits, MemoryStore, QuotaClass, RateLimitLayer};
    use wa_verify_core::ErrorKind;

    use crate::support::*;

    fn layer(store: &MemoryStore) -> RateLimitLayer<MemoryStore> {
        RateLimitLayer::new(store.clone()).default_cooldown(Duration::from_secs(600))
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_with_a_hint_cools_the_number_down_for_that_long() {
        let store = MemoryStore::with_limits(Limits::default(), 0);
        let usage = r#"{"1":[{"estimated_time_to_regain_access":2}]}"#;
        let inner = Scripted::new([Err(graph(
            429,
            4,
            Some(true),
            &[("x-business-use-case-usage", usage)],
        ))]);
        let svc = ServiceBuilder::new()
            .layer(layer(&store))
            .service(inner.clone());
        assert_eq!(
            svc.clone()
                .oneshot(op("1"))
                .await
                .unwrap_err()
                .status()
                .map(|s| s.as_u16()),
            Some(429)
        );
        assert_eq!(
            store.cooldown(1, QuotaClass::RequestCode),
            Some(Duration::from_secs(120))
        );
        let e = svc.clone().oneshot(op("1")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(
            e.is_local() && e.retry_after() == Some(Duration::from_secs(120)),
            "{e}"
        );
        svc.clone().oneshot(op("2")).await.unwrap();
        assert_eq!(
            inner.count(),
            2,
            "number 1 was not called again; number 2 was"
        );
        tokio::time::advance(Duration::from_secs(120)).await;
        svc.oneshot(op("1")).await.unwrap();
        assert_eq!(inner.count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_without_a_hint_uses_the_default_and_the_cap() {
        let mut limits = Limits::default();
        limits.max_cooldown = Duration::from_secs(300);
        let store = MemoryStore::with_limits(limits, 0);
        let inner = Scripted::new([
            Err(graph(400, 136024, Some(false), &[])),
            Err(graph(429, 4, None, &[("retry-after", "999999")])),
        ]);
        let svc = ServiceBuilder::new()
            .layer(layer(&store))
            .service(inner.clone());
        let _ = svc.clone().oneshot(op("1")).await;
        assert_eq!(
            store.cooldown(1, QuotaClass::RequestCode),
            Some(Duration::from_secs(300)),
            "default 600 s, capped at 300 s"
        );
        let _ = svc.clone().oneshot(op("2")).await;
        assert_eq!(
            store.cooldown(2, QuotaClass::RequestCode),
            Some(Duration::from_secs(300)),
            "hint capped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_on_request_code_does_not_block_verify_code() {
        let store = MemoryStore::with_limits(Limits::default(), 0);
        let inner = Scripted::new([Err(graph(400, 136024, Some(false), &[]))]);
        let svc = ServiceBuilder::new().layer(layer(&store)).service(inner);
        let _ = svc.oneshot(op("1")).await;
        assert!(store.cooldown(1, QuotaClass::RequestCode).is_some());
        assert_eq!(store.cooldown(1, QuotaClass::VerifyCode), None);
    }

    #[tokio::test(start_paused = true)]
    async fn non_throttles_teach_nothing() {
        let store = MemoryStore::with_limits(Limits::default(), 0);
        let inner = Scripted::new([
            Err(graph(500, 2, Some(true), &[])),
            Err(graph(400, 100, None, &[])),
        ]);
        let svc = ServiceBuilder::new().layer(layer(&store)).service(inner);
        let _ = svc.clone().oneshot(op("1")).await;
        let _ = svc.oneshot(op("1")).await;
        assert_eq!(store.cooldown(1, QuotaClass::RequestCode), None);
    }
}

/// The limiter never waits past the call's deadline: a slot further away fails at once
/// with `rate_limited`, and the error says nothing was sent. See: issue 16.
#[tokio::test(start_paused = true)]
async fn the_limiter_never_waits_past_the_deadline() {
    let inner = Scripted::new([]);
    let store = MemoryStore::new(&[quota("1/min", 1)], None);
    let svc = ServiceBuilder::new()
        .layer(wa_verify_core::timeout::DeadlineLayer::new(Some(
            Duration::from_secs(5),
        )))
        .layer(RateLimitLayer::new(store).max_wait(Duration::from_secs(120)))
        .service(inner.clone());
    svc.clone().oneshot(op("1")).await.unwrap();
    let started = tokio::time::Instant::now();
    let e = svc.clone().oneshot(op("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "refused at once, no wait"
    );
    assert!(e.retry_after().unwrap() > Duration::from_secs(5));
    assert!(!e.may_have_reached_server());
    assert_eq!(e.attempts(), 0);
    assert_eq!(inner.count(), 1);
}
