use std::time::Duration;

use wa_verify_core::onboarding::{Backup, Deregister, Onboarding, Pin, Register, Tier};
use wa_verify_core::{CodeMethod, ErrorKind, Meaning};
use wa_verify_sandbox::{FaultBody, FaultKind, NumberFault, SandboxConfig, SandboxHandle};

use crate::support::*;

fn pin() -> Pin {
    "246810".parse().unwrap()
}

/// Verifies `id_` at the sandbox through the plain operations.
async fn verified(c: &wa_verify_core::Client, sb: &SandboxHandle, id_: &str) {
    c.request_code(request(id_)).await.unwrap();
    let code = sb.outbox().last_code(id_).unwrap();
    c.verify_code(verify(id_, &code)).await.unwrap();
}

#[tokio::test]
async fn the_typed_flow_onboards_a_number_end_to_end() {
    let sb = sandbox(SandboxConfig::default()).await;
    let c = client(client_config(sb.base_url()));
    let requested = Onboarding::new(c.clone(), id("777"))
        .request_code(CodeMethod::Voice, "en".parse().unwrap())
        .await
        .unwrap();
    // A wrong code gives the state back to try again.
    let code = sb.outbox().last_code("777").unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (requested, e) = requested
        .verify(wrong.parse().unwrap())
        .await
        .unwrap_err()
        .into_parts();
    assert_eq!(e.kind(), ErrorKind::WrongCode);
    let verified = requested.verify(code.parse().unwrap()).await.unwrap();
    let op = Register::new(id("777"), pin())
        .backup(Backup::new("FAKE-backup-password", "ZmFrZQ==").unwrap())
        .tier(Tier::Prod);
    let registered = verified.register_with(op).await.unwrap();
    let done = registered.deregister().await.unwrap();
    assert_eq!(done.phone_number_id(), id("777"));
    let ops: Vec<_> = sb
        .outbox()
        .entries_for("777")
        .into_iter()
        .map(|e| e.operation)
        .collect();
    assert_eq!(ops, ["request_code", "register", "deregister"]);
    assert!(
        sb.outbox().entries().iter().all(|e| e.code != "246810"),
        "the outbox never holds the PIN"
    );
}

#[tokio::test]
async fn the_sandbox_refuses_each_wrong_step_with_the_spec_errors() {
    let sb = sandbox(SandboxConfig::default()).await;
    let c = client(client_config(sb.base_url()));
    // Register before verify.
    let e = c.register(Register::new(id("1"), pin())).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.status().map(|s| s.as_u16())),
        (ErrorKind::Unprocessable, Some(422))
    );
    // Deregister a number that is not registered.
    let e = c.deregister(Deregister::new(id("2"))).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.graph().map(|g| g.code)),
        (ErrorKind::BadRequest, Some(100))
    );
    // A bad PIN format never leaves the client; sent by hand, the sandbox refuses it.
    assert!("12345".parse::<Pin>().is_err());
    let p = plain(
        "POST",
        &format!("{}/v23.0/3/register", sb.base_url()),
        &[
            ("authorization", &format!("Bearer {FAKE_TOKEN}")),
            ("content-type", "application/json"),
        ],
        r#"{"messaging_product":"whatsapp","pin":"12ab56"}"#,
    )
    .await
    .unwrap();
    assert_eq!(p.status, 400);
    assert!(p.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PIN"));
    // Registering twice.
    verified(&c, &sb, "4").await;
    c.register(Register::new(id("4"), pin())).await.unwrap();
    assert_eq!(
        c.register(Register::new(id("4"), pin()))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unprocessable
    );
}

#[tokio::test(start_paused = true)]
async fn the_eleventh_register_or_deregister_in_72_hours_is_refused_locally() {
    let sb = sandbox(SandboxConfig::default()).await;
    let c = client(client_config(sb.base_url()));
    verified(&c, &sb, "9").await;
    for i in 0..10 {
        if i % 2 == 0 {
            c.register(Register::new(id("9"), pin())).await.unwrap();
        } else {
            c.deregister(Deregister::new(id("9"))).await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(3600)).await;
    }
    let upstream = sb.stats().requests;
    let e = c.register(Register::new(id("9"), pin())).await.unwrap_err();
    assert!(e.is_local() && e.kind() == ErrorKind::RateLimited, "{e}");
    assert_eq!(
        e.retry_after(),
        Some(Duration::from_secs(62 * 3600)),
        "72 h after the first call"
    );
    assert_eq!(sb.stats().requests, upstream, "nothing was sent");
    tokio::time::advance(Duration::from_secs(62 * 3600)).await;
    c.register(Register::new(id("9"), pin())).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn metas_133016_records_a_72_hour_cooldown() {
    let sb = sandbox(SandboxConfig::default()).await;
    let mut cfg = client_config(sb.base_url());
    // Our budget off, so Meta's (the sandbox's) is the one that binds.
    cfg.rate_limit.registration = None;
    let c = client(cfg);
    verified(&c, &sb, "10").await;
    for i in 0..10 {
        if i % 2 == 0 {
            c.register(Register::new(id("10"), pin())).await.unwrap();
        } else {
            c.deregister(Deregister::new(id("10"))).await.unwrap();
        }
    }
    let e = c
        .register(Register::new(id("10"), pin()))
        .await
        .unwrap_err();
    assert_eq!(e.meaning(), Some(Meaning::RegistrationRateLimited));
    assert_eq!((e.kind(), e.attempts()), (ErrorKind::RateLimited, 1));
    let upstream = sb.stats().requests;
    let e = c
        .register(Register::new(id("10"), pin()))
        .await
        .unwrap_err();
    assert!(e.is_local(), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(72 * 3600)));
    assert_eq!(sb.stats().requests, upstream);
    // request_code for the number is not blocked by a registration cooldown.
    c.request_code(request("10")).await.unwrap();
}

async fn register_once_under(fault: NumberFault) -> (wa_verify_core::Error, u64) {
    let mut cfg = SandboxConfig::default();
    cfg.number_faults.insert("20".into(), fault);
    let sb = sandbox(cfg).await;
    let mut ccfg = client_config(sb.base_url());
    ccfg.timeouts.attempt = Some(Duration::from_secs(2));
    ccfg.retry.retry_ambiguous = true;
    let c = client(ccfg);
    let e = c
        .register(Register::new(id("20"), pin()))
        .await
        .unwrap_err();
    let s = sb.stats();
    (e, s.requests + s.in_flight)
}

#[tokio::test(start_paused = true)]
async fn register_is_not_retried_after_an_attempt_timeout() {
    let (e, sent) = register_once_under(NumberFault::always(FaultKind::Hang)).await;
    assert_eq!((e.kind(), e.attempts(), sent), (ErrorKind::Timeout, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn register_is_not_retried_after_the_connection_drops() {
    // The client cannot tell a drop before the server acted from one after: both ambiguous.
    let (e, sent) = register_once_under(NumberFault::always(FaultKind::DropBeforeSend)).await;
    assert_eq!((e.kind(), e.attempts(), sent), (ErrorKind::Transport, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn register_is_not_retried_after_a_transient_500() {
    let (e, sent) = register_once_under(NumberFault::answer(500, FaultBody::Graph)).await;
    assert_eq!(e.is_transient(), Some(true));
    assert_eq!((e.attempts(), sent), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn register_is_not_retried_after_a_502() {
    let (e, sent) = register_once_under(NumberFault::answer(502, FaultBody::Graph)).await;
    assert_eq!((e.attempts(), sent), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn register_is_not_retried_after_a_503() {
    let (e, sent) = register_once_under(NumberFault::answer(503, FaultBody::Html)).await;
    assert_eq!((e.attempts(), sent), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn register_is_not_retried_after_a_504() {
    let (e, sent) = register_once_under(NumberFault::answer(504, FaultBody::Graph)).await;
    assert_eq!((e.attempts(), sent), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn register_is_not_retried_after_a_truncated_answer() {
    let (e, sent) = register_once_under(NumberFault::answer(500, FaultBody::Truncated)).await;
    assert_eq!((e.kind(), e.attempts(), sent), (ErrorKind::Protocol, 1, 1));
}

#[tokio::test]
async fn register_is_retried_when_the_connection_was_refused() {
    let base = closed_base().await;
    let c = client(client_config(&base));
    let e = c.register(Register::new(id("1"), pin())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport);
    assert!(!e.may_have_reached_server());
}

#[tokio::test]
async fn a_full_onboarding_traces_and_prints_no_secret() {
    let (out, _guard) = crate::tracing::capture().await;
    let sb = sandbox(SandboxConfig::default()).await;
    let c = client(client_config(sb.base_url()));
    let requested = Onboarding::new(c, id("31"))
        .request_code(CodeMethod::Sms, Default::default())
        .await
        .unwrap();
    let code = sb.outbox().last_code("31").unwrap();
    let verified = requested.verify(code.parse().unwrap()).await.unwrap();
    let op = Register::new(id("31"), "975310".parse().unwrap())
        .backup(Backup::new("FAKE-backup-pass-42", "ZGF0YQ==").unwrap());
    verified.register_with(op).await.unwrap();
    let text = out.text();
    assert!(text.contains("register"), "spans recorded");
    for secret in [FAKE_TOKEN, code.as_str(), "975310", "FAKE-backup-pass-42"] {
        assert!(!text.contains(secret), "{secret} in trace output");
    }
    // The CLI, at TRACE level, prints none either.
    let mut cmd = wa(&[
        "onboard",
        "--sandbox",
        "--phone-number-id",
        "32",
        "-vvv",
        "--output",
        "json",
    ]);
    cmd.env("WHATSAPP_REGISTRATION_PIN", "864209");
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let all = printed(&out);
    assert!(all.contains("register"));
    assert!(
        !all.contains("864209") && !all.contains("SANDBOX"),
        "secret in CLI output"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_register_deregister_and_pre_verified() {
    let sb = sandbox(SandboxConfig::default()).await;
    let c = client(client_config(sb.base_url()));
    verified(&c, &sb, "41").await;
    let base = sb.base_url().to_owned();
    let cli = |args: Vec<&'static str>, pin: Option<&'static str>| {
        let mut cmd = wa(&args);
        cmd.args(["--base-url", &base, "--output", "json"])
            .env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN)
            .env_remove("WHATSAPP_REGISTRATION_PIN");
        if let Some(p) = pin {
            cmd.env("WHATSAPP_REGISTRATION_PIN", p);
        }
        run(cmd)
    };
    let no_pin = cli(vec!["register", "--phone-number-id", "41"], None).await;
    assert_eq!(no_pin.status.code(), Some(2));
    let ok = cli(vec!["register", "--phone-number-id", "41"], Some("135790")).await;
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let again = cli(vec!["register", "--phone-number-id", "41"], Some("135790")).await;
    assert_eq!(again.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "unprocessable");
    let dereg = cli(vec!["deregister", "--phone-number-id", "41"], None).await;
    assert_eq!(dereg.status.code(), Some(0), "{dereg:?}");
    let pre = cli(
        vec!["request-code", "--phone-number-id", "42", "--pre-verified"],
        None,
    )
    .await;
    assert_eq!(pre.status.code(), Some(0), "{pre:?}");
}
