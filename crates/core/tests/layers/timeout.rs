use std::time::Duration;

use tower::{service_fn, ServiceBuilder, ServiceExt};
use wa_verify_core::timeout::{AttemptTimeoutLayer, DeadlineLayer};
use wa_verify_core::{Error, ErrorKind, TimeoutKind};

#[tokio::test(start_paused = true)]
async fn attempt_timeout_fires_and_says_which() {
    let svc = ServiceBuilder::new()
        .layer(AttemptTimeoutLayer::new(Some(Duration::from_secs(2))))
        .service(service_fn(|_: ()| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, Error>(())
        }));
    let started = tokio::time::Instant::now();
    let e = svc.oneshot(()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(e.timeout_kind(), Some(TimeoutKind::Attempt));
    assert!(
        e.may_have_reached_server(),
        "ambiguous: may fire after the write"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_fast_call_is_untouched_and_none_turns_it_off() {
    let svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(None))
        .layer(AttemptTimeoutLayer::new(Some(Duration::from_secs(2))))
        .service(service_fn(|_: ()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, Error>(5)
        }));
    assert_eq!(svc.oneshot(()).await.unwrap(), 5);
    let off = ServiceBuilder::new()
        .layer(AttemptTimeoutLayer::new(None))
        .service(service_fn(|_: ()| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, Error>(6)
        }));
    assert_eq!(off.oneshot(()).await.unwrap(), 6);
}

#[tokio::test(start_paused = true)]
async fn deadline_says_it_is_the_deadline() {
    let svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Some(Duration::from_secs(1))))
        .service(service_fn(|_: ()| {
            std::future::pending::<Result<(), Error>>()
        }));
    let e = svc.oneshot(()).await.unwrap_err();
    assert_eq!(e.timeout_kind(), Some(TimeoutKind::Deadline));
    assert!(e.to_string().contains("deadline"), "{e}");
}

/// With `enforced_below`, the deadline layer arms no timer of its own; the attempt layer's
/// one timer ends the call at the deadline and says so. See: issues 16 and 22.
#[tokio::test(start_paused = true)]
async fn one_timer_serves_the_attempt_and_the_deadline() {
    let svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Some(Duration::from_secs(3))).enforced_below())
        .layer(AttemptTimeoutLayer::new(Some(Duration::from_secs(10))))
        .service(service_fn(|_: wa_verify_core::RequestCode| {
            std::future::pending::<Result<(), Error>>()
        }));
    let started = tokio::time::Instant::now();
    let op = wa_verify_core::RequestCode::new(
        "1".parse().unwrap(),
        Default::default(),
        Default::default(),
    );
    let e = svc.oneshot(op).await.unwrap_err();
    assert_eq!(e.timeout_kind(), Some(TimeoutKind::Deadline));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

/// The deadline layer writes the call's deadline on the request the layers below see.
#[tokio::test(start_paused = true)]
async fn the_deadline_travels_on_the_request() {
    use wa_verify_core::timeout::CarriesDeadline;
    let inner = crate::support::Scripted::new([]);
    let svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Some(Duration::from_secs(7))))
        .service(inner.clone());
    let started = tokio::time::Instant::now();
    svc.oneshot(crate::support::op("1")).await.unwrap();
    let sent = inner.requests();
    assert_eq!(sent[0].deadline(), Some(started + Duration::from_secs(7)));
}
