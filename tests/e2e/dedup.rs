use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use wa_verify_core::config::StackConfig;
use wa_verify_core::onboarding::{Pin, Register};
use wa_verify_core::rate_limit::StoreKind;
use wa_verify_core::{Client, CodeMethod, ErrorKind, RequestCode};
use wa_verify_sandbox::{FaultBody, FaultKind, NumberFault, SandboxConfig, SandboxHandle};

use crate::support::*;

/// A sandbox where `slow` numbers answer after `latency`: long enough for concurrent
/// callers to overlap whatever the schedule.
pub(crate) async fn slow_sandbox(slow: &[&str], latency: Duration) -> SandboxHandle {
    let mut cfg = SandboxConfig::default();
    cfg.faults.latency = latency;
    for n in slow {
        cfg.number_faults
            .insert((*n).into(), NumberFault::always(FaultKind::Latency));
    }
    sandbox(cfg).await
}

fn redis_client(base: &str, redis: &RedisServer) -> Client {
    let mut c = client_config(base);
    c.rate_limit.store.kind = StoreKind::Redis;
    c.rate_limit.store.url = Some(redis.url().parse().unwrap());
    c.rate_limit.store.key_prefix = "dedup-test:".into();
    client(c)
}

/// Waits (bounded) until the sandbox holds a request: the leader's request was written.
async fn until_in_flight(sb: &SandboxHandle) {
    eventually(
        Duration::from_secs(30),
        Duration::from_millis(5),
        "the leader's request in the sandbox",
        || async {
            match sb.stats().in_flight {
                0 => Err("none in flight yet".to_owned()),
                _ => Ok(()),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_for_one_number_send_one_code_and_share_its_trace_id() {
    let sb = slow_sandbox(&["4100"], Duration::from_millis(300)).await;
    let c = client(client_config(sb.base_url()));
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.request_code(request("4100")).await })
        })
        .collect();
    let mut traces = HashSet::new();
    let (mut own, mut deduplicated) = (0, 0);
    for call in calls {
        let r = call.await.unwrap().unwrap();
        traces.insert(r.fbtrace_id().unwrap().to_owned());
        if r.is_shared() || r.already_sent().is_some() {
            deduplicated += 1;
        } else {
            own += 1;
        }
    }
    assert_eq!(sb.outbox().sent_to("4100"), 1, "one code for 50 callers");
    assert_eq!(sb.stats().requests, 1, "one request upstream");
    assert_eq!(
        traces.len(),
        1,
        "every caller sees the one trace id: {traces:?}"
    );
    assert_eq!((own, deduplicated), (1, 49));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_through_one_redis_send_one_code() {
    let redis = RedisServer::start().await;
    let sb = slow_sandbox(&["4200"], Duration::from_millis(300)).await;
    // Three stacks, each with its own Redis connection, as three replicas would be.
    let replicas: Vec<Client> = (0..3)
        .map(|_| redis_client(sb.base_url(), &redis))
        .collect();
    one_code_from_sixty_callers(&sb, &replicas).await;
}

/// 20 concurrent request_code calls for number 4200 on each replica (`sb` answers it
/// slowly): one code, one trace id for all 60, and every check answered by Redis.
pub(crate) async fn one_code_from_sixty_callers(sb: &SandboxHandle, replicas: &[Client]) {
    let mut calls = Vec::new();
    for c in replicas {
        for _ in 0..20 {
            let c = c.clone();
            calls.push(tokio::spawn(async move {
                c.request_code(request("4200")).await
            }));
        }
    }
    let mut traces = HashSet::new();
    for call in calls {
        let r = call.await.unwrap().unwrap();
        traces.insert(r.fbtrace_id().unwrap().to_owned());
    }
    assert_eq!(
        sb.outbox().sent_to("4200"),
        1,
        "one code for 60 callers on 3 replicas"
    );
    assert_eq!(traces.len(), 1, "{traces:?}");
    assert_eq!(replicas[0].rate_limit_store().fallback_answers(), 0);
}

#[tokio::test]
async fn a_repeat_in_the_window_answers_already_sent_and_resend_or_another_method_sends() {
    let sb = sandbox(SandboxConfig::default()).await;
    let c = client(client_config(sb.base_url()));
    let first = c.request_code(request("4300")).await.unwrap();
    assert!(first.already_sent().is_none() && !first.is_shared());
    let requests = sb.stats().requests;
    let again = c.request_code(request("4300")).await.unwrap();
    let a = again
        .already_sent()
        .expect("a repeat in the window is already sent");
    assert_eq!(sb.stats().requests, requests, "no request upstream");
    assert_eq!(again.attempts(), 0);
    assert_eq!(again.fbtrace_id(), first.fbtrace_id());
    assert_eq!(a.method, CodeMethod::Sms);
    assert_eq!(
        a.expires_at.duration_since(a.sent_at).unwrap(),
        Duration::from_secs(600)
    );
    assert!(a.sent_at <= SystemTime::now());
    // The caller may always ask again.
    c.request_code(request("4300").resend()).await.unwrap();
    assert_eq!(
        sb.outbox().sent_to("4300"),
        2,
        "--resend sends a second code"
    );
    // SMS -> VOICE is a new send, and starts a window of its own.
    let voice = || RequestCode::new(id("4300"), CodeMethod::Voice, "en_US".parse().unwrap());
    let v = c.request_code(voice()).await.unwrap();
    assert!(v.already_sent().is_none());
    assert_eq!(sb.outbox().sent_to("4300"), 3);
    assert!(c
        .request_code(voice())
        .await
        .unwrap()
        .already_sent()
        .is_some());
    // A wrong code leaves the window; the right one ends it.
    let code = sb.outbox().last_code("4300").unwrap();
    let wrong = if code == "111111" { "222222" } else { "111111" };
    let e = c.verify_code(verify("4300", wrong)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongCode, "{e}");
    assert!(c
        .request_code(voice())
        .await
        .unwrap()
        .already_sent()
        .is_some());
    c.verify_code(verify("4300", &code)).await.unwrap();
    let requests = sb.stats().requests;
    let _ = c.request_code(voice()).await;
    assert_eq!(
        sb.stats().requests,
        requests + 1,
        "after a verified code, a request is sent"
    );
}

#[tokio::test]
async fn after_a_call_that_may_have_sent_nothing_is_sent_blindly() {
    let mut cfg = SandboxConfig::default();
    cfg.number_faults.insert(
        "4400".into(),
        NumberFault::times(FaultKind::DropAfterSend, 1),
    );
    let sb = sandbox(cfg).await;
    let c = client(client_config(sb.base_url()));
    let e = c.request_code(request("4400")).await.unwrap_err();
    assert!(e.may_have_reached_server(), "{e}");
    let requests = sb.stats().requests;
    let e = c.request_code(request("4400")).await.unwrap_err();
    assert!(e.may_have_reached_server(), "{e}");
    assert_eq!(sb.stats().requests, requests, "nothing sent: {e}");
    let wait = e.retry_after().expect("the rest of the window");
    assert!(
        wait > Duration::from_secs(500) && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
    c.request_code(request("4400").resend()).await.unwrap();
    assert_eq!(sb.stats().requests, requests + 1, "resend sends");
}

#[tokio::test]
async fn an_idempotency_key_replays_its_first_answer_and_is_tied_to_its_number() {
    let mut cfg = SandboxConfig::default();
    cfg.number_faults
        .insert("4501".into(), NumberFault::answer(400, FaultBody::Graph));
    let sb = sandbox(cfg).await;
    let mut ccfg = client_config(sb.base_url());
    // Windows out of the way: what answers the repeats is the key.
    ccfg.dedup.window = Duration::from_millis(1);
    let c = client(ccfg);
    let keyed = |n: &str, k: &str| request(n).idempotency_key(k);
    let first = c.request_code(keyed("4500", "signup-42")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let requests = sb.stats().requests;
    let again = c.request_code(keyed("4500", "signup-42")).await.unwrap();
    assert!(again.is_replayed());
    assert_eq!(again.fbtrace_id(), first.fbtrace_id());
    assert_eq!(sb.stats().requests, requests, "a replay sends nothing");
    // Another number or method with the same key: refused before any I/O.
    let e = c
        .request_code(keyed("4599", "signup-42"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let voice = RequestCode::new(id("4500"), CodeMethod::Voice, "en_US".parse().unwrap());
    let e = c
        .request_code(voice.idempotency_key("signup-42"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(sb.stats().requests, requests);
    // An error Meta answered is replayed too, with its trace id.
    let e1 = c.request_code(keyed("4501", "k-400")).await.unwrap_err();
    let e2 = c.request_code(keyed("4501", "k-400")).await.unwrap_err();
    assert!(e2.is_replayed() && !e1.is_replayed());
    assert_eq!((e2.kind(), e2.fbtrace_id()), (e1.kind(), e1.fbtrace_id()));
    assert_eq!(sb.stats().requests, requests + 1);
    // A key that never reached Meta is not kept: the next call proceeds.
    let bad = c
        .request_code(keyed("4502", "has space"))
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    let refused = client({
        let mut cfg = client_config(&closed_base().await);
        cfg.retry.enabled = false;
        cfg
    });
    let e = refused
        .request_code(keyed("4503", "k-refused"))
        .await
        .unwrap_err();
    assert!(!e.may_have_reached_server());
    let e = refused
        .request_code(keyed("4503", "k-refused"))
        .await
        .unwrap_err();
    assert!(!e.is_replayed(), "a connection refused is not stored: {e}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_leader_cancelled_after_sending_leaves_its_followers_an_outcome() {
    let sb = slow_sandbox(&["4600"], Duration::from_millis(500)).await;
    let c = client(client_config(sb.base_url()));
    let leader = {
        let c = c.clone();
        tokio::spawn(async move { c.request_code(request("4600")).await })
    };
    until_in_flight(&sb).await;
    let followers: Vec<_> = (0..5)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.request_code(request("4600")).await })
        })
        .collect();
    // On this one-thread runtime, yielding runs each follower up to its wait.
    tokio::task::yield_now().await;
    leader.abort();
    for f in followers {
        let e = f.await.unwrap().unwrap_err();
        assert!(e.may_have_reached_server() && e.is_shared(), "{e}");
    }
    eventually(
        Duration::from_secs(30),
        Duration::from_millis(10),
        "the cancelled request done in the sandbox",
        || async {
            match sb.stats().in_flight {
                0 => Ok(()),
                n => Err(format!("{n} in flight")),
            }
        },
    )
    .await;
    assert!(sb.outbox().sent_to("4600") <= 1);
    // And the number is not sent to blindly afterwards.
    let e = c.request_code(request("4600")).await.unwrap_err();
    assert!(e.may_have_reached_server(), "{e}");
    assert!(sb.outbox().sent_to("4600") <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_registers_make_one_call() {
    let sb = slow_sandbox(&["4700"], Duration::from_millis(300)).await;
    let c = client(client_config(sb.base_url()));
    let pin: Pin = "246810".parse().unwrap();
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let (c, pin) = (c.clone(), pin.clone());
            tokio::spawn(async move { c.register(Register::new(id("4700"), pin)).await })
        })
        .collect();
    let mut shared = 0;
    for call in calls {
        shared += match call.await.unwrap() {
            Ok(r) => u32::from(r.is_shared()),
            Err(e) => u32::from(e.is_shared()),
        };
    }
    assert_eq!(sb.stats().by_operation.get("register"), Some(&1));
    assert_eq!(shared, 1);
}

/// `wa-verify request-code` for `number` against the sandbox, with the Redis store.
fn cli(
    sb: &SandboxHandle,
    redis: &RedisServer,
    number: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut cmd = request_code_json(sb, number, extra);
    cmd.args(["--limiter-store", "redis"])
        .env("REDIS_URL", redis.url());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_cli_runs_share_the_window_and_idempotency_keys_through_redis() {
    let redis = RedisServer::start().await;
    let sb = sandbox(SandboxConfig::default()).await;
    let first = run(cli(&sb, &redis, "4800", &[])).await;
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let v1 = json(&first);
    assert_eq!(
        (
            v1["already_sent"].as_bool(),
            v1["shared"].as_bool(),
            v1["replayed"].as_bool()
        ),
        (Some(false), Some(false), Some(false)),
        "{v1}"
    );
    let requests = sb.stats().requests;
    let second = run(cli(&sb, &redis, "4800", &[])).await;
    assert_eq!(
        second.status.code(),
        Some(0),
        "already sent exits 0: {second:?}"
    );
    let v2 = json(&second);
    assert_eq!(
        (v2["success"].as_bool(), v2["already_sent"].as_bool()),
        (Some(true), Some(true)),
        "{v2}"
    );
    for field in ["sent_at", "expires_at"] {
        let t = v2[field].as_str().unwrap_or_default();
        assert!(
            t.len() == 24 && t.ends_with('Z') && &t[10..11] == "T",
            "{field}: {v2}"
        );
    }
    assert_eq!(v2["fbtrace_id"], v1["fbtrace_id"]);
    assert_eq!(
        sb.stats().requests,
        requests,
        "the second process sent nothing"
    );
    let resent = run(cli(&sb, &redis, "4800", &["--resend"])).await;
    assert_eq!(json(&resent)["already_sent"].as_bool(), Some(false));
    assert_eq!(
        sb.outbox().sent_to("4800"),
        2,
        "--resend sent a second code"
    );
    // An idempotency key, across processes.
    let k1 = json(
        &run(cli(
            &sb,
            &redis,
            "4801",
            &["--idempotency-key", "signup-42"],
        ))
        .await,
    );
    let k2 = json(
        &run(cli(
            &sb,
            &redis,
            "4801",
            &["--idempotency-key", "signup-42"],
        ))
        .await,
    );
    assert_eq!(
        (k2["success"].as_bool(), k2["replayed"].as_bool()),
        (Some(true), Some(true)),
        "{k2}"
    );
    assert_eq!(k2["fbtrace_id"], k1["fbtrace_id"]);
    assert_eq!(sb.outbox().sent_to("4801"), 1);
    let other = run(cli(
        &sb,
        &redis,
        "4802",
        &["--idempotency-key", "signup-42"],
    ))
    .await;
    assert_eq!(other.status.code(), Some(2), "{other:?}");
    assert_eq!(json(&other)["error"]["kind"], "invalid_input");
    let bad = run(cli(&sb, &redis, "4802", &["--idempotency-key", ""])).await;
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert_eq!(sb.outbox().sent_to("4802"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_after_writing_its_request_stops_the_next_process_from_sending() {
    let redis = RedisServer::start().await;
    let mut cfg = SandboxConfig::default();
    cfg.number_faults
        .insert("4900".into(), NumberFault::always(FaultKind::Hang));
    let sb = sandbox(cfg).await;
    let mut leader = cli(&sb, &redis, "4900", &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    until_in_flight(&sb).await;
    leader.kill().unwrap(); // SIGKILL: no outcome is written.
    leader.wait().unwrap();
    let received = sb.stats().received;
    let next = run(cli(&sb, &redis, "4900", &[])).await;
    assert_eq!(next.status.code(), Some(1), "{next:?}");
    let v = json(&next);
    assert_eq!(
        v["error"]["may_have_reached_server"].as_bool(),
        Some(true),
        "{v}"
    );
    assert_eq!(
        sb.stats().received,
        received,
        "the next process sent nothing: {v}"
    );
    // Asking to send again is the caller's choice, and it is honoured.
    let mut cfg: StackConfig = client_config(sb.base_url());
    cfg.timeouts.attempt = Some(Duration::from_millis(200));
    cfg.retry.enabled = false;
    cfg.rate_limit.store.kind = StoreKind::Redis;
    cfg.rate_limit.store.url = Some(redis.url().parse().unwrap());
    let e = client(cfg)
        .request_code(request("4900").resend())
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Timeout,
        "the resend went out and hung: {e}"
    );
    assert_eq!(sb.stats().received, received + 1);
}
