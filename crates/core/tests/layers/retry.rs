use std::num::NonZeroU32;
use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt};
use wa_verify_core::retry::{BackoffConfig, RetryLayer, RetryPolicy, TpsBudget};
use wa_verify_core::timeout::{AttemptTimeoutLayer, DeadlineLayer};
use wa_verify_core::{Error, ErrorKind, Operation, RequestCode, TimeoutKind};

use crate::support::*;

fn policy() -> RetryPolicy {
    RetryPolicy::default().backoff(BackoffConfig {
        initial: Duration::from_millis(100),
        multiplier: 2.0,
        max: Duration::from_secs(1),
        jitter: 0.0,
    })
}

async fn run(policy: RetryPolicy, outcomes: Vec<Outcome>) -> (Outcome, Scripted) {
    let inner = Scripted::new(outcomes);
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(inner.clone());
    (svc.oneshot(op("1")).await, inner)
}

async fn attempts_for(outcome: Error) -> (Outcome, usize) {
    let (res, inner) = run(policy(), vec![Err(outcome)]).await;
    (res, inner.count())
}

fn connect_failure() -> Error {
    Error::transport(std::io::Error::other("connection refused"), false)
}

#[tokio::test(start_paused = true)]
async fn retries_429_then_succeeds() {
    let (res, inner) = run(policy(), vec![Err(graph(429, 4, Some(true), &[]))]).await;
    assert_eq!(res.unwrap().attempts(), 2);
    assert_eq!(inner.count(), 2);
    // The resend is the same request, marked as the second attempt with its wait.
    let sent = inner.requests();
    assert_eq!(sent[0].phone_number_id(), sent[1].phone_number_id());
    assert_eq!(sent[0].code_method(), sent[1].code_method());
    assert_eq!(sent[0].attempt().number, 1);
    assert_eq!(sent[1].attempt().number, 2);
    assert_eq!(sent[1].attempt().waited, Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn retries_transient_500() {
    let (res, n) = attempts_for(graph(500, 2, Some(true), &[])).await;
    assert!(res.is_ok());
    assert_eq!(n, 2);
}

#[tokio::test(start_paused = true)]
async fn retries_503() {
    let (res, n) = attempts_for(graph(503, 2, None, &[])).await;
    assert!(res.is_ok());
    assert_eq!(n, 2);
}

#[tokio::test(start_paused = true)]
async fn retries_connection_refused_before_write() {
    let (res, n) = attempts_for(connect_failure()).await;
    assert!(res.is_ok());
    assert_eq!(n, 2);
}

#[tokio::test(start_paused = true)]
async fn never_retries_timeout_after_write() {
    let (res, n) = attempts_for(Error::timeout(TimeoutKind::Attempt, Duration::from_secs(1))).await;
    assert_eq!(res.unwrap_err().attempts(), 1);
    assert_eq!(n, 1);
}

#[tokio::test(start_paused = true)]
async fn never_retries_connection_lost_mid_response() {
    let (res, n) = attempts_for(Error::transport(std::io::Error::other("reset"), true)).await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::Transport);
    assert_eq!(n, 1);
}

#[tokio::test(start_paused = true)]
async fn never_retries_500_without_transient() {
    assert_eq!(attempts_for(graph(500, 1, None, &[])).await.1, 1);
}

#[tokio::test(start_paused = true)]
async fn never_retries_502_without_transient() {
    assert_eq!(attempts_for(graph(502, 1, None, &[])).await.1, 1);
}

#[tokio::test(start_paused = true)]
async fn never_retries_504_without_transient() {
    assert_eq!(attempts_for(graph(504, 2, Some(false), &[])).await.1, 1);
}

#[tokio::test(start_paused = true)]
async fn retries_ambiguous_failures_only_when_opted_in() {
    let (res, inner) = run(
        policy().retry_ambiguous(true),
        vec![Err(graph(502, 1, None, &[]))],
    )
    .await;
    assert_eq!(res.unwrap().attempts(), 2);
    assert_eq!(inner.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn never_retries_400_401_403_404_422() {
    for (status, code) in [(400, 100), (401, 190), (403, 200), (404, 803), (422, 100)] {
        let (res, n) = attempts_for(graph(status, code, None, &[])).await;
        assert_eq!(n, 1, "{status}");
        assert_eq!(res.unwrap_err().attempts(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn retries_400_marked_transient() {
    let (res, n) = attempts_for(graph(400, 2, Some(true), &[])).await;
    assert!(res.is_ok());
    assert_eq!(n, 2);
}

#[tokio::test(start_paused = true)]
async fn never_retries_request_code_throttle_136024_at_400() {
    let (res, n) = attempts_for(graph(400, 136024, Some(false), &[])).await;
    let e = res.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!((e.attempts(), n), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn stops_at_max_attempts_and_says_how_many() {
    let fails = (0..10).map(|_| Err(graph(503, 2, None, &[]))).collect();
    let (res, inner) = run(policy().max_attempts(NonZeroU32::new(3).unwrap()), fails).await;
    assert_eq!(res.unwrap_err().attempts(), 3);
    assert_eq!(inner.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn backs_off_exponentially() {
    let fails = (0..3).map(|_| Err(connect_failure())).collect();
    let (res, inner) = run(policy(), fails).await;
    assert_eq!(res.unwrap().attempts(), 4);
    let t = inner.times();
    let gaps: Vec<_> = t.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    assert_eq!(gaps, [100, 200, 400]);
    // Each attempt carried its number and the wait before it.
    let carried: Vec<_> = inner
        .requests()
        .iter()
        .map(|r| (r.attempt().number, r.attempt().waited.as_millis()))
        .collect();
    assert_eq!(carried, [(1, 0), (2, 100), (3, 200), (4, 400)]);
}

#[tokio::test(start_paused = true)]
async fn honours_retry_after_in_seconds() {
    let (res, inner) = run(
        policy(),
        vec![Err(graph(429, 4, None, &[("retry-after", "3")]))],
    )
    .await;
    assert!(res.is_ok());
    let t = inner.times();
    assert_eq!(t[1] - t[0], Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn honours_retry_after_as_http_date() {
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(6));
    let (res, inner) = run(
        policy(),
        vec![Err(graph(429, 4, None, &[("retry-after", &at)]))],
    )
    .await;
    assert!(res.is_ok());
    let t = inner.times();
    let gap = t[1] - t[0];
    assert!(
        gap >= Duration::from_secs(4) && gap <= Duration::from_secs(6),
        "{gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn honours_the_usage_header_hint_in_minutes() {
    let usage = r#"{"1":[{"type":"whatsapp","estimated_time_to_regain_access":1}]}"#;
    let p = policy().max_retry_wait(Duration::from_secs(120));
    let (res, inner) = run(
        p,
        vec![Err(graph(
            429,
            80007,
            None,
            &[("x-business-use-case-usage", usage)],
        ))],
    )
    .await;
    assert!(res.is_ok());
    let t = inner.times();
    assert_eq!(t[1] - t[0], Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn a_hint_beyond_the_deadline_fails_fast_with_retry_after() {
    let started = tokio::time::Instant::now();
    let p = policy().deadline(Some(Duration::from_secs(30)));
    let (res, inner) = run(
        p,
        vec![Err(graph(429, 4, Some(true), &[("retry-after", "120")]))],
    )
    .await;
    let e = res.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!((e.attempts(), inner.count()), (1, 1));
    assert_eq!(started.elapsed(), Duration::ZERO, "no sleep");
    assert_eq!(
        e.status().map(|s| s.as_u16()),
        Some(429),
        "Meta's answer is kept"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hint_beyond_max_retry_wait_fails_fast() {
    let p = policy().max_retry_wait(Duration::from_secs(10));
    let (res, inner) = run(p, vec![Err(graph(503, 2, None, &[("retry-after", "11")]))]).await;
    assert_eq!(
        res.unwrap_err().retry_after(),
        Some(Duration::from_secs(11))
    );
    assert_eq!(inner.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn budget_exhaustion_stops_retries() {
    // No minimum and 1% extra load: ten calls deposit far less than one retry.
    let p = policy().budget(Some(TpsBudget::new(Duration::from_secs(10), 0, 0.01)));
    let inner = Scripted::new((0..100).map(|_| Err(graph(503, 2, None, &[]))));
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(p))
        .service(inner.clone());
    for _ in 0..10 {
        let e = svc.clone().oneshot(op("1")).await.unwrap_err();
        assert_eq!(e.attempts(), 1);
    }
    assert_eq!(inner.count(), 10, "not one retry");
}

/// The deadline travels on the request: the policy sleeps no backoff it cannot finish, and
/// the call ends with Meta's last answer and every attempt counted. See: issue 16.
#[tokio::test(start_paused = true)]
async fn the_deadline_on_the_request_stops_backoff_it_cannot_finish() {
    let started = tokio::time::Instant::now();
    let slow = policy().backoff(BackoffConfig {
        initial: Duration::from_secs(10),
        multiplier: 1.0,
        max: Duration::from_secs(10),
        jitter: 0.0,
    });
    let inner = Scripted::new((0..10).map(|_| Err(graph(503, 2, None, &[]))));
    let svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Some(Duration::from_secs(25))))
        .layer(RetryLayer::new(
            slow.max_attempts(NonZeroU32::new(10).unwrap()),
        ))
        .service(inner.clone());
    let e = svc.oneshot(op("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.attempts(), 3);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(20),
        "no sleep past 25 s"
    );
    assert_eq!(inner.count(), 3, "attempts at 0s, 10s, 20s");
}

/// When the deadline fires mid-attempt, the error says how many attempts really went and
/// that one may have reached Meta (after a 503 and a hang: 2). See: issue 16.
#[tokio::test(start_paused = true)]
async fn a_deadline_mid_attempt_counts_every_attempt() {
    let inner = Scripted::new([Err(graph(503, 2, None, &[]))]).then_hang();
    let svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Some(Duration::from_secs(5))))
        .layer(RetryLayer::new(policy()))
        .layer(AttemptTimeoutLayer::new(None))
        .service(inner.clone());
    let e = svc.oneshot(op("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(e.timeout_kind(), Some(TimeoutKind::Deadline));
    assert_eq!(e.attempts(), 2);
    assert!(e.may_have_reached_server());
    assert_eq!(inner.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_policy_sleeps_no_backoff_past_its_deadline() {
    let slow = policy()
        .backoff(BackoffConfig {
            initial: Duration::from_secs(10),
            multiplier: 1.0,
            max: Duration::from_secs(10),
            jitter: 0.0,
        })
        .deadline(Some(Duration::from_secs(15)));
    let (res, inner) = run(
        slow,
        (0..5).map(|_| Err(graph(503, 2, None, &[]))).collect(),
    )
    .await;
    let e = res.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Server,
        "the last answer, not a timeout"
    );
    assert_eq!((e.attempts(), inner.count()), (2, 2));
}

#[tokio::test]
async fn the_policy_is_a_tower_policy_for_any_operation() {
    fn assert_policy<
        P: tower::retry::Policy<
            RequestCode,
            wa_verify_core::Response<wa_verify_core::RequestCodeResponse>,
            Error,
        >,
    >(
        _: &P,
    ) {
    }
    assert_policy(&RetryPolicy::default());
}
