use std::io::Write;
use std::time::Duration;

use wa_verify_core::onboarding::{Checked, Onboarding, Pin};
use wa_verify_core::{
    CodeVerificationStatus, NameStatus, NumberStatus, PhoneNumberStatus, PlatformType,
};
use wa_verify_sandbox::{FaultKind, NumberFault, SandboxConfig, SandboxHandle};

use crate::support::*;

/// A sandbox where `configured` numbers have the given status (TOML lines of
/// `[number_status."ID"]`).
async fn with_status(toml: &str) -> SandboxHandle {
    sandbox(SandboxConfig::from_toml(toml).unwrap()).await
}

fn pin() -> Pin {
    "246810".parse().unwrap()
}

#[tokio::test]
async fn status_follows_the_flow_and_the_configured_state() {
    let sb = with_status(
        "[number_status.\"77\"]\nplatform_type = \"ON_PREMISE\"\nstatus = \"BANNED\"\nname_status = \"DECLINED\"",
    )
    .await;
    let c = client(client_config(sb.base_url()));
    let read = |n: &str| {
        let c = c.clone();
        let op = PhoneNumberStatus::new(id(n));
        async move { c.status(op).await.unwrap().into_output() }
    };
    let fresh = read("55").await;
    assert_eq!(fresh.id.as_deref(), Some("55"));
    assert_eq!(
        fresh.code_verification_status,
        Some(CodeVerificationStatus::NotVerified)
    );
    assert_eq!(fresh.platform_type, Some(PlatformType::CloudApi));
    assert_eq!(fresh.name_status, Some(NameStatus::Approved));
    assert_eq!(fresh.status, Some(NumberStatus::Pending));
    assert!(fresh.extra.is_empty(), "{:?}", fresh.extra);
    c.request_code(request("55")).await.unwrap();
    let code = sb.outbox().last_code("55").unwrap();
    c.verify_code(verify("55", &code)).await.unwrap();
    assert_eq!(
        read("55").await.code_verification_status,
        Some(CodeVerificationStatus::Verified)
    );
    c.register(wa_verify_core::onboarding::Register::new(id("55"), pin()))
        .await
        .unwrap();
    assert_eq!(read("55").await.status, Some(NumberStatus::Connected));
    c.deregister(wa_verify_core::onboarding::Deregister::new(id("55")))
        .await
        .unwrap();
    assert_eq!(read("55").await.status, Some(NumberStatus::Disconnected));
    let configured = read("77").await;
    assert_eq!(configured.platform_type, Some(PlatformType::OnPremise));
    assert_eq!(configured.status, Some(NumberStatus::Banned));
    assert_eq!(configured.name_status, Some(NameStatus::Declined));
    // Only the fields asked for come back; the sandbox leaves out names it does not have.
    let some = c
        .status(
            PhoneNumberStatus::new(id("77"))
                .fields(["status", "no_such_field"])
                .unwrap(),
        )
        .await
        .unwrap()
        .into_output();
    assert_eq!(some.status, Some(NumberStatus::Banned));
    assert!(some.platform_type.is_none() && some.id.is_none());
    // A bad field never leaves the process.
    let before = sb.stats().received;
    assert!(PhoneNumberStatus::new(id("77"))
        .fields(["status&x=1"])
        .is_err());
    assert_eq!(sb.stats().received, before);
}

#[tokio::test]
async fn a_504_on_the_status_call_is_retried_and_on_request_code_is_not() {
    let mut cfg = SandboxConfig::default();
    for n in ["5041", "5042"] {
        cfg.number_faults.insert(
            n.into(),
            NumberFault::times(FaultKind::GatewayTimeout504, 1),
        );
    }
    let sb = sandbox(cfg).await;
    let c = client(client_config(sb.base_url()));
    let ok = c.status(PhoneNumberStatus::new(id("5041"))).await.unwrap();
    assert_eq!(ok.attempts(), 2, "the read was sent again after its 504");
    let e = c.request_code(request("5042")).await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(504));
    assert_eq!(
        e.attempts(),
        1,
        "request_code is never sent again after a 504"
    );
    assert_eq!(sb.outbox().sent_to("5042"), 0);
}

/// A raw answer for `GET /{id}` with `body`.
async fn status_server(body: &'static str) -> Scripted {
    Scripted::start(move |_| Script::Bytes(http_answer(200, "application/json", body, ""))).await
}

fn status_cli(base: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec!["status", "--phone-number-id", "1234", "--base-url", base];
    args.extend_from_slice(extra);
    let mut cmd = wa(&args);
    cmd.env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_every_field_meta_returned_in_both_vocabularies_and_unknown_ones() {
    let bodies = [
        // As seen live.
        r#"{"id":"1234","display_phone_number":"+1 555-0100","verified_name":"Acme","code_verification_status":"NOT_VERIFIED","quality_rating":"UNKNOWN","platform_type":"ON_PREMISE","status":"DISCONNECTED","throughput":{"level":"STANDARD"},"is_pin_enabled":false,"is_official_business_account":false,"account_mode":"LIVE","name_status":"PENDING_REVIEW","new_field":{"a":1}}"#,
        // The spec's vocabulary.
        r#"{"id":"1234","code_verification_status":"VERIFIED","quality_rating":"NA","platform_type":"CLOUD_API","status":"CONNECTED","name_status":"AVAILABLE_WITHOUT_REVIEW","account_mode":"SANDBOX"}"#,
        // Values nobody has seen yet: kept, never an error.
        r#"{"code_verification_status":"SOMETHING_NEW","quality_rating":"PURPLE","platform_type":"MARS","status":"ORBITING","name_status":"NAME_IN_LIMBO","account_mode":"TRIAL"}"#,
    ];
    for body in bodies {
        let server = status_server(body).await;
        let out = run(status_cli(&server.base(), &["--output", "json"])).await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let v = json(&out);
        assert_eq!(v["success"], true);
        let want: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], want, "every field as Meta sent it");
        let text = run(status_cli(&server.base(), &[])).await;
        let text = String::from_utf8_lossy(&text.stdout);
        for (k, _) in want.as_object().unwrap() {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{k}: "))),
                "{k}: {text}"
            );
        }
    }
    // Every value of every enum, one run each, comes back in the JSON as Meta sent it.
    let values: &[(&str, &[&str])] = &[
        (
            "code_verification_status",
            &["VERIFIED", "UNVERIFIED", "NOT_VERIFIED", "EXPIRED"],
        ),
        (
            "quality_rating",
            &["GREEN", "YELLOW", "RED", "NA", "UNKNOWN"],
        ),
        (
            "platform_type",
            &["CLOUD_API", "ON_PREMISE", "NOT_APPLICABLE"],
        ),
        (
            "status",
            &[
                "CONNECTED",
                "DISCONNECTED",
                "UNVERIFIED",
                "PENDING",
                "FLAGGED",
                "RESTRICTED",
                "LINKED",
                "UNLINKED",
                "DELETED",
                "MIGRATED",
                "BANNED",
            ],
        ),
        (
            "name_status",
            &[
                "APPROVED",
                "AVAILABLE_WITHOUT_REVIEW",
                "DECLINED",
                "EXPIRED",
                "PENDING_REVIEW",
                "NONE",
                "NAME_APPROVED",
                "NAME_DECLINED",
                "NAME_PENDING_REVIEW",
                "NAME_NOT_APPROVED",
            ],
        ),
        ("account_mode", &["LIVE", "SANDBOX"]),
    ];
    for (field, vs) in values {
        for v in *vs {
            let body: &'static str = Box::leak(
                serde_json::json!({ *field: v })
                    .to_string()
                    .into_boxed_str(),
            );
            let server = status_server(body).await;
            let out = run(status_cli(&server.base(), &["--output", "json"])).await;
            assert_eq!(json(&out)["status"][*field], *v, "{field}={v}");
        }
    }
    // The fields asked for are sent as given; a bad one is refused with exit 2.
    let server = status_server(r#"{"status":"CONNECTED"}"#).await;
    let out = run(status_cli(
        &server.base(),
        &["--fields", "status", "--output", "json"],
    ))
    .await;
    assert_eq!(json(&out)["status"]["status"], "CONNECTED");
    let bad = run(status_cli(
        &server.base(),
        &["--fields", "status,a=b", "--output", "json"],
    ))
    .await;
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert_eq!(json(&bad)["error"]["kind"], "invalid_input");
    // Errors exactly as for the other subcommands.
    let sb = sandbox(SandboxConfig::from_toml("numbers = [\"1\"]").unwrap()).await;
    let out = run(status_cli(sb.base_url(), &["--output", "json"])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json(&out);
    assert_eq!(
        (v["success"].as_bool(), v["error"]["kind"].as_str()),
        (Some(false), Some("not_found"))
    );
    assert!(v["error"]["fbtrace_id"].is_string());
}

fn onboard_cli(sb: &SandboxHandle, n: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = against(sb, &["onboard", "--phone-number-id", n, "--output", "json"]);
    cmd.args(extra).env("WHATSAPP_REGISTRATION_PIN", "246810");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_reads_the_status_first_and_stops_before_what_cannot_work() {
    let sb = with_status(concat!(
        "[number_status.\"101\"]\ncode_verification_status = \"VERIFIED\"\n",
        "[number_status.\"102\"]\nplatform_type = \"ON_PREMISE\"\n",
        "[number_status.\"103\"]\ncode_verification_status = \"VERIFIED\"\nname_status = \"PENDING_REVIEW\"\n",
    ))
    .await;
    let ops = |sb: &SandboxHandle, op: &str| sb.stats().by_operation.get(op).copied().unwrap_or(0);
    // VERIFIED: no code, straight to register.
    let out = run(onboard_cli(&sb, "101", &[])).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["already_verified"], true, "{v}");
    assert_eq!(v["steps"], serde_json::json!(["status", "register"]));
    assert_eq!(
        sb.outbox().sent_to("101"),
        0,
        "no code for a verified number"
    );
    assert_eq!(ops(&sb, "register"), 1);
    // ON_PREMISE: stops before any code is requested.
    let out = run(onboard_cli(&sb, "102", &[])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let e = &json(&out)["error"];
    assert_eq!(
        (e["kind"].as_str(), e["reason"].as_str()),
        (Some("precondition"), Some("on_premise"))
    );
    assert!(e["message"].as_str().unwrap().contains("migrate"), "{e}");
    assert_eq!(
        ops(&sb, "request_code"),
        0,
        "no request_code for an on-premise number"
    );
    // A display name in review: no register without --force.
    let out = run(onboard_cli(&sb, "103", &[])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let e = &json(&out)["error"];
    assert_eq!(e["reason"], "name_not_approved", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("PENDING_REVIEW"),
        "{e}"
    );
    assert_eq!(ops(&sb, "register"), 1, "no register call without --force");
    let out = run(onboard_cli(&sb, "103", &["--force"])).await;
    assert_eq!(ops(&sb, "register"), 2, "--force goes on: {out:?}");
    // Meta's answer to a display name in review, as the sandbox emulates it.
    assert_eq!(json(&out)["error"]["error_subcode"], 2_388_001, "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_against_an_api_takes_the_code_from_stdin_or_a_file() {
    let sb = sandbox(SandboxConfig::default()).await;
    let mut child = onboard_cli(&sb, "104", &[])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The code arrives where the person would read it; they type it in.
    let outbox = sb.outbox().clone();
    let code = eventually(
        Duration::from_secs(30),
        Duration::from_millis(10),
        "a code",
        || {
            let outbox = outbox.clone();
            async move { outbox.last_code("104").ok_or_else(|| "none yet".to_owned()) }
        },
    )
    .await;
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{code}").unwrap();
    drop(stdin);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        json(&out)["steps"],
        serde_json::json!(["status", "request_code", "verify_code", "register"])
    );
    // A code file that holds a wrong code: verify_code's answer, exit 1.
    let dir = std::env::temp_dir().join(format!("wa-verify-code-{}", std::process::id()));
    std::fs::write(&dir, "000000\n").unwrap();
    let out = run(onboard_cli(
        &sb,
        "105",
        &["--code-file", dir.to_str().unwrap()],
    ))
    .await;
    let _ = std::fs::remove_file(&dir);
    let right = sb.outbox().last_code("105").unwrap();
    if right != "000000" {
        assert_eq!(json(&out)["error"]["kind"], "wrong_code", "{out:?}");
    }
}

#[tokio::test]
async fn the_typed_flow_skips_the_code_for_a_verified_number() {
    let sb = with_status("[number_status.\"106\"]\ncode_verification_status = \"VERIFIED\"").await;
    let c = client(client_config(sb.base_url()));
    let Checked::AlreadyVerified(v) = Onboarding::new(c.clone(), id("106"))
        .preflight()
        .await
        .unwrap()
    else {
        panic!("a VERIFIED number needs no code");
    };
    v.register(pin()).await.unwrap();
    assert_eq!(sb.outbox().sent_to("106"), 0);
    let Checked::NeedsCode(_) = Onboarding::new(c, id("107")).preflight().await.unwrap() else {
        panic!("a fresh number needs a code");
    };
}

#[tokio::test]
async fn request_code_with_check_status_gives_the_same_preflight() {
    let sb = with_status(concat!(
        "[number_status.\"108\"]\ncode_verification_status = \"VERIFIED\"\n",
        "[number_status.\"109\"]\nplatform_type = \"ON_PREMISE\"\n",
    ))
    .await;
    let rc = |n: &str, extra: &[&str]| request_code_json(&sb, n, extra);
    let v = json(&run(rc("108", &["--check-status"])).await);
    assert_eq!(
        (v["success"].as_bool(), v["skipped"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    assert_eq!(sb.outbox().sent_to("108"), 0);
    let out = run(rc("109", &["--check-status"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "precondition");
    assert_eq!(sb.stats().by_operation.get("request_code"), None);
    // Without the flag, request-code stays one call.
    let out = run(rc("109", &[])).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(sb.stats().by_operation.get("status"), Some(&2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivr_and_meta_language_forms_are_sent_as_given_and_injection_is_refused() {
    let sb = sandbox(SandboxConfig::default()).await;
    let rc = |n: &str, extra: &[&str]| request_code_json(&sb, n, extra);
    for (n, method, language) in [
        ("111", "ivr", "fil"),
        ("112", "voice", "prs_AF"),
        ("113", "sms", "en"),
    ] {
        let out = run(rc(n, &["--method", method, "--language", language])).await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let e = &sb.outbox().entries_for(n)[0];
        assert_eq!(
            (e.code_method.as_str(), e.language.as_str()),
            (method.to_uppercase().as_str(), language)
        );
    }
    for bad in ["e", "en-US", "en_US&x=1", "EN_us"] {
        let out = run(rc("114", &["--language", bad])).await;
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        assert_eq!(json(&out)["error"]["kind"], "invalid_input");
    }
    assert_eq!(sb.outbox().sent_to("114"), 0);
}
