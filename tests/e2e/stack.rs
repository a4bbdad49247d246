use wa_verify_core::rate_limit::{GraphCode, QuotaClass};
use wa_verify_core::ErrorKind;

use crate::support::*;

#[tokio::test]
async fn request_then_verify_with_the_code_from_the_outbox() {
    let sb = sandbox(Default::default()).await;
    let c = client(client_config(sb.base_url()));
    let answer = c.request_code(request("1234567890")).await.unwrap();
    assert!(answer.success);
    assert_eq!(answer.attempts(), 1);
    assert_eq!(answer.fbtrace_id().map(str::len), Some(23));
    let code = sb.outbox().last_code("1234567890").unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let e = c
        .verify_code(verify("1234567890", wrong))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongCode);
    let ok = c.verify_code(verify("1234567890", &code)).await.unwrap();
    assert_eq!(ok.output().id.as_deref(), Some("1234567890"));
    sb.shutdown().await;
}

use std::time::Duration;

use wa_verify_sandbox::{FaultKind, NumberFault, SandboxConfig};

fn with_fault(id_: &str, kind: FaultKind, times: Option<u32>) -> SandboxConfig {
    let mut cfg = SandboxConfig::default();
    cfg.number_faults.insert(
        id_.into(),
        NumberFault {
            times,
            ..NumberFault::always(kind)
        },
    );
    cfg
}

#[tokio::test]
async fn transient_500_twice_then_success_takes_three_attempts() {
    let sb = sandbox(with_fault("1", FaultKind::Transient500, Some(2))).await;
    let c = client(client_config(sb.base_url()));
    let answer = c.request_code(request("1")).await.unwrap();
    assert_eq!(answer.attempts(), 3);
    assert_eq!(sb.stats().requests, 3);
    assert_eq!(sb.outbox().len(), 1, "one code sent");
}

#[tokio::test]
async fn a_502_gives_one_attempt() {
    let sb = sandbox(with_fault("1", FaultKind::BadGateway502, None)).await;
    let c = client(client_config(sb.base_url()));
    let e = c.request_code(request("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.status().map(|s| s.as_u16()), Some(502));
    assert_eq!(e.attempts(), 1);
    assert_eq!(sb.stats().requests, 1);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_server_gives_a_timeout_after_the_attempt_timeout() {
    let sb = sandbox(with_fault("1", FaultKind::Hang, None)).await;
    let mut cfg = client_config(sb.base_url());
    cfg.timeouts.attempt = Some(Duration::from_secs(2));
    let started = tokio::time::Instant::now();
    let e = client(cfg).request_code(request("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(e.timeout_kind(), Some(wa_verify_core::TimeoutKind::Attempt));
    assert_eq!(e.attempts(), 1);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn ten_concurrent_calls_to_one_number_under_1_per_second_burst_1() {
    let sb = sandbox(SandboxConfig::default()).await;
    let mut cfg = sending_config(sb.base_url());
    cfg.rate_limit.per_number = vec!["1/s"
        .parse::<wa_verify_core::rate_limit::Rate>()
        .map(|r| wa_verify_core::rate_limit::Quota::new(r, 1))
        .unwrap()];
    let c = client(cfg);
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.request_code(request("42")).await })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) if e.kind() == ErrorKind::RateLimited && e.attempts() == 0 => limited += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, limited), (1, 9));
    assert_eq!(
        sb.stats().requests,
        1,
        "no request reached the server for the 9"
    );
}

#[tokio::test]
async fn every_encoding_works_end_to_end() {
    let sb = sandbox(SandboxConfig::default()).await;
    for enc in ["json", "form", "multipart"] {
        let mut cfg = client_config(sb.base_url());
        cfg.encoding = enc.parse().unwrap();
        let c = client(cfg);
        c.request_code(request("5")).await.unwrap();
        let code = sb.outbox().last_code("5").unwrap();
        c.verify_code(verify("5", &code)).await.unwrap();
    }
}

#[tokio::test]
async fn drop_after_send_is_not_retried_by_default_so_one_code_is_sent() {
    let sb = sandbox(with_fault("1", FaultKind::DropAfterSend, Some(1))).await;
    let c = client(client_config(sb.base_url()));
    let e = c.request_code(request("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport);
    assert!(e.may_have_reached_server());
    assert_eq!((e.attempts(), sb.outbox().len()), (1, 1));
}

#[tokio::test]
async fn retry_ambiguous_resends_after_a_drop_and_a_second_code_goes_out() {
    let sb = sandbox(with_fault("1", FaultKind::DropAfterSend, Some(1))).await;
    let mut cfg = client_config(sb.base_url());
    cfg.retry.retry_ambiguous = true;
    let answer = client(cfg).request_code(request("1")).await.unwrap();
    assert_eq!(answer.attempts(), 2);
    assert_eq!(sb.outbox().len(), 2, "the opt-in costs a duplicate code");
}

#[tokio::test]
async fn the_observed_throttle_is_rate_limited_with_one_attempt() {
    let cfg = SandboxConfig::from_toml(
        "[quotas]\nper_number = { rate = \"1/min\", burst = 1 }\nquota_error = \"observed\"",
    )
    .unwrap();
    let sb = sandbox(cfg).await;
    let c = client(sending_config(sb.base_url()));
    c.request_code(request("3")).await.unwrap();
    let e = c.request_code(request("3")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(
        e.meaning(),
        Some(wa_verify_core::Meaning::RequestCodeVolumeLimit)
    );
    assert_eq!(e.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(e.attempts(), 1);
    assert!(e.graph().unwrap().error_data.is_some(), "error_data kept");
    assert_eq!(sb.stats().requests, 2);
}

/// Meta's request-code throttles cool down as long as they last: 24 h for the volume limit
/// (2388367), 1 h for "request code failed" (2388091), and a repeat soon after a cooldown
/// ended doubles the next one. See: issue 20.
#[tokio::test(start_paused = true)]
async fn request_code_throttles_cool_down_by_subcode_and_a_repeat_doubles() {
    let cfg = SandboxConfig::from_toml(
        "request_code_failing = [\"91\"]\n[quotas]\nper_number = { rate = \"1/min\", burst = 1 }\nquota_error = \"observed\"",
    )
    .unwrap();
    let sb = sandbox(cfg).await;
    let c = client(sending_config(sb.base_url()));
    let store = c.rate_limit_store().memory().clone();
    let left = |n: &str| {
        store
            .cooldown(id(n).key(), QuotaClass::RequestCode)
            .unwrap_or_default()
    };
    let hours = |h: u64| Duration::from_secs(h * 3600);
    // The volume limit: 24 h.
    c.request_code(request("67")).await.unwrap();
    let e = c.request_code(request("67")).await.unwrap_err();
    assert_eq!(e.graph().and_then(|g| g.error_subcode), Some(2_388_367));
    assert!(left("67") > hours(24) - Duration::from_secs(5) && left("67") <= hours(24));
    // "Request code failed": 1 h.
    let e = c.request_code(request("91")).await.unwrap_err();
    assert_eq!(e.graph().and_then(|g| g.error_subcode), Some(2_388_091));
    assert!(left("91") > hours(1) - Duration::from_secs(5) && left("91") <= hours(1));
    // Asking again soon after it ended: 2 h, then 4 h.
    let requests = sb.stats().requests;
    tokio::time::advance(hours(1) + Duration::from_secs(1)).await;
    assert!(c.request_code(request("91")).await.unwrap_err().attempts() == 1);
    assert_eq!(
        sb.stats().requests,
        requests + 1,
        "the cooldown had ended: sent"
    );
    assert!(
        left("91") > hours(2) - Duration::from_secs(5) && left("91") <= hours(2),
        "{:?}",
        left("91")
    );
    tokio::time::advance(hours(2) + Duration::from_secs(1)).await;
    c.request_code(request("91")).await.unwrap_err();
    assert!(
        left("91") > hours(4) - Duration::from_secs(5),
        "{:?}",
        left("91")
    );
    // Well after a cooldown (more than its length past its end), the base length again.
    tokio::time::advance(hours(4) + hours(5)).await;
    c.request_code(request("91")).await.unwrap_err();
    assert!(left("91") <= hours(1), "{:?}", left("91"));
    // What the store holds, for operators.
    let held = store.inspect(id("67").key());
    let cd = &held.cooldowns[0];
    assert_eq!(cd.kind, QuotaClass::RequestCode);
    assert_eq!(cd.code, Some(GraphCode::with_subcode(136_024, 2_388_367)));
    assert_eq!(
        store.clear(id("67").key(), Some(QuotaClass::RequestCode)),
        1
    );
    assert!(store.inspect(id("67").key()).cooldowns.is_empty());
}

/// The escalation stops at `max_cooldown` (72 h by default, Meta's longest block).
#[tokio::test(start_paused = true)]
async fn a_doubled_cooldown_stops_at_max_cooldown() {
    let cfg = SandboxConfig::from_toml("request_code_failing = [\"91\"]").unwrap();
    let sb = sandbox(cfg).await;
    let mut ccfg = sending_config(sb.base_url());
    ccfg.rate_limit.cooldowns.set(
        GraphCode::with_subcode(136_024, 2_388_091),
        Duration::from_secs(40 * 3600),
    );
    let c = client(ccfg);
    let store = c.rate_limit_store().memory().clone();
    c.request_code(request("91")).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(40 * 3600 + 1)).await;
    c.request_code(request("91")).await.unwrap_err();
    let left = store
        .cooldown(id("91").key(), QuotaClass::RequestCode)
        .unwrap();
    assert!(
        left <= Duration::from_secs(72 * 3600) && left > Duration::from_secs(71 * 3600),
        "{left:?}"
    );
}

/// A pre-verified number past its quota gets the spec's 422 with code 613: a throttle,
/// never retried, that cools the number down. See: issue 16.
#[tokio::test]
async fn code_613_for_a_pre_verified_number_is_a_throttle_with_a_cooldown() {
    let cfg = SandboxConfig::from_toml(
        "pre_verified = [\"613\"]\n[quotas]\nper_number = { rate = \"1/min\", burst = 1 }",
    )
    .unwrap();
    let sb = sandbox(cfg).await;
    let c = client(sending_config(sb.base_url()));
    c.request_code(request("613").pre_verified()).await.unwrap();
    let e = c
        .request_code(request("613").pre_verified())
        .await
        .unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(422));
    assert_eq!(e.graph().map(|g| g.code), Some(613));
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.attempts(), 1, "not retried");
    let upstream = sb.stats().requests;
    let e = c
        .request_code(request("613").pre_verified())
        .await
        .unwrap_err();
    assert!(e.is_local() && e.kind() == ErrorKind::RateLimited, "{e}");
    assert_eq!(sb.stats().requests, upstream, "cooling down: nothing sent");
}

#[tokio::test]
async fn the_spec_throttle_is_retried_within_max_retry_wait() {
    // 429 with Retry-After 1 s: the retry waits for it, then succeeds.
    let sb = sandbox(with_fault("3", FaultKind::RateLimited429, Some(1))).await;
    let c = client(client_config(sb.base_url()));
    let started = std::time::Instant::now();
    let answer = c.request_code(request("3")).await.unwrap();
    assert_eq!(answer.attempts(), 2);
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_wrong_code_is_its_own_kind_and_not_retried() {
    let sb = sandbox(SandboxConfig::default()).await;
    let c = client(client_config(sb.base_url()));
    c.request_code(request("9")).await.unwrap();
    let code = sb.outbox().last_code("9").unwrap();
    let bad = if code == "123456" { "654321" } else { "123456" };
    let e = c.verify_code(verify("9", bad)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongCode);
    assert_eq!(e.meaning(), Some(wa_verify_core::Meaning::WrongCode));
    assert_eq!(e.attempts(), 1);
}

#[tokio::test]
async fn the_client_is_a_clone_send_sync_tower_service() {
    fn assert_service<
        S: tower::Service<wa_verify_core::RequestCode> + Clone + Send + Sync + 'static,
    >(
        _: &S,
    ) {
    }
    let sb = sandbox(SandboxConfig::default()).await;
    let c = client(client_config(sb.base_url()));
    assert_service(&c);
    let boxed = c.boxed_service::<wa_verify_core::RequestCode>();
    use tower::ServiceExt;
    assert!(boxed.oneshot(request("1")).await.unwrap().success);
}

#[tokio::test(start_paused = true)]
async fn after_meta_throttles_a_number_it_is_not_called_until_the_time_passes() {
    let cfg =
        SandboxConfig::from_toml("[quotas]\nper_number = { rate = \"1/min\", burst = 1 }").unwrap();
    let sb = sandbox(cfg).await;
    let c = client(sending_config(sb.base_url()));
    c.request_code(request("5")).await.unwrap();
    // Meta (the sandbox) throttles: 429 with estimated_time_to_regain_access = 1 minute.
    let e = c.request_code(request("5")).await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
    let upstream = sb.stats().requests;
    for _ in 0..3 {
        let e = c.request_code(request("5")).await.unwrap_err();
        assert!(e.is_local() && e.kind() == ErrorKind::RateLimited, "{e}");
    }
    assert_eq!(
        sb.stats().requests,
        upstream,
        "no call reached Meta during the cooldown"
    );
    c.request_code(request("6")).await.unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    c.request_code(request("5")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn five_wrong_codes_pause_verify_code_locally_until_the_window_passes() {
    let sb = sandbox(SandboxConfig::default()).await;
    let c = client(client_config(sb.base_url()));
    c.request_code(request("8")).await.unwrap();
    let code = sb.outbox().last_code("8").unwrap();
    let bad = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_eq!(
            c.verify_code(verify("8", bad)).await.unwrap_err().kind(),
            ErrorKind::WrongCode
        );
    }
    let upstream = sb.stats().requests;
    let e = c.verify_code(verify("8", &code)).await.unwrap_err();
    assert!(e.is_local() && e.kind() == ErrorKind::RateLimited, "{e}");
    assert!(e.retry_after().unwrap() <= Duration::from_secs(600));
    assert_eq!(
        sb.stats().requests,
        upstream,
        "the sixth call never left the process"
    );
    tokio::time::advance(Duration::from_secs(601)).await;
    c.request_code(request("8")).await.unwrap();
    let fresh = sb.outbox().last_code("8").unwrap();
    c.verify_code(verify("8", &fresh)).await.unwrap();
}

#[tokio::test]
async fn the_rate_limit_layer_can_be_switched_off() {
    let sb = sandbox(SandboxConfig::default()).await;
    let mut cfg = client_config(sb.base_url());
    cfg.rate_limit.enabled = false;
    cfg.rate_limit.per_number = vec![wa_verify_core::rate_limit::Quota::new(
        "1/h".parse().unwrap(),
        1,
    )];
    let c = client(cfg);
    c.request_code(request("70")).await.unwrap();
    c.request_code(request("70")).await.unwrap();
    let code = sb.outbox().last_code("70").unwrap();
    let bad = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        c.verify_code(verify("70", bad)).await.unwrap_err();
    }
    let e = c.verify_code(verify("70", bad)).await.unwrap_err();
    assert!(
        !e.is_local(),
        "no local guard: the sandbox itself answered ({e})"
    );
    assert_eq!(c.rate_limit_stats().refusals(), 0);
}
