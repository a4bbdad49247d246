use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use wa_verify_sandbox::{FaultKind, NumberFault, SandboxConfig};

use crate::support::*;

fn with_token(mut c: Command, token: &str) -> Command {
    c.env("WHATSAPP_ACCESS_TOKEN", token);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn success_in_text_and_json() {
    let sb = sandbox(SandboxConfig::default()).await;
    let out = run(against(
        &sb,
        &["request-code", "--phone-number-id", "1234567890"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("code sent") && text.contains("fbtrace_id"),
        "{text}"
    );
    let out = run(against(
        &sb,
        &[
            "request-code",
            "--phone-number-id",
            "1234567890",
            "--method",
            "voice",
            "--language",
            "en",
            "--output",
            "json",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["success"], true);
    assert_eq!(v["attempts"], 1);
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["fbtrace_id"].as_str().map(str::len), Some(23));
    assert_eq!(sb.outbox().entries()[1].code_method, "VOICE");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_code_with_the_code_from_the_outbox() {
    let sb = sandbox(SandboxConfig::default()).await;
    assert_eq!(
        run(against(&sb, &["request-code", "--phone-number-id", "55"]))
            .await
            .status
            .code(),
        Some(0)
    );
    let code = sb.outbox().last_code("55").unwrap();
    let out = run(against(
        &sb,
        &[
            "verify-code",
            "--phone-number-id",
            "55",
            "--code",
            &code,
            "--output",
            "json",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json(&out)["success"], true);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let out = run(against(
        &sb,
        &[
            "verify-code",
            "--phone-number-id",
            "55",
            "--code",
            wrong,
            "--output",
            "json",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["error"]["kind"], "wrong_code");
    assert_eq!(v["error"]["meaning"], "wrong_code");
    assert_eq!(v["error"]["code"], 136025);
    let all = format!("{out:?}");
    assert!(!all.contains(FAKE_TOKEN) && !all.contains(&code));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_kind_the_sandbox_produces_with_exit_1() {
    let mut cfg = SandboxConfig::from_toml(
        r#"
        numbers = ["1", "2", "3", "4", "5", "6", "7", "8"]
        not_permitted = ["2"]
        not_eligible = ["3"]
        [quotas]
        per_number = { rate = "1/h", burst = 1 }
    "#,
    )
    .unwrap();
    for (id_, kind) in [
        ("4", FaultKind::Server500),
        ("5", FaultKind::Hang),
        ("6", FaultKind::DropBeforeSend),
        ("7", FaultKind::Unavailable503),
    ] {
        cfg.number_faults
            .insert(id_.into(), NumberFault::always(kind));
    }
    let sb = sandbox(cfg).await;
    // Spend number 8's quota.
    assert_eq!(
        run(against(&sb, &["request-code", "--phone-number-id", "8"]))
            .await
            .status
            .code(),
        Some(0)
    );
    for (id_, kind, status) in [
        ("9", "not_found", Some(404)),
        ("2", "permission", Some(403)),
        ("3", "unprocessable", Some(422)),
        ("4", "server", Some(500)),
        ("5", "timeout", None),
        ("6", "transport", None),
        ("7", "protocol", Some(503)),
        ("8", "rate_limited", Some(429)),
    ] {
        let out = run(against(
            &sb,
            &[
                "request-code",
                "--phone-number-id",
                id_,
                "--output",
                "json",
                "--attempt-timeout",
                "300ms",
                "--max-attempts",
                "1",
            ],
        ))
        .await;
        assert_eq!(out.status.code(), Some(1), "{id_}: {out:?}");
        let v = json(&out);
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["kind"], kind, "{id_}: {v}");
        assert_eq!(
            v["error"]["status"].as_u64(),
            status.map(|s: u16| u64::from(s)),
            "{id_}"
        );
        for field in [
            "kind",
            "status",
            "code",
            "error_subcode",
            "message",
            "fbtrace_id",
            "is_transient",
            "retry_after_ms",
            "meaning",
        ] {
            assert!(v["error"].get(field).is_some(), "{field} in {v}");
        }
    }
    let bad_token = run(with_token(
        wa(&[
            "request-code",
            "--phone-number-id",
            "1",
            "--base-url",
            sb.base_url(),
            "--output",
            "json",
        ]),
        "FAKE-wrong",
    ))
    .await;
    assert_eq!(bad_token.status.code(), Some(1));
    assert_eq!(json(&bad_token)["error"]["kind"], "auth");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_input_and_missing_token_exit_2_before_any_request() {
    let sb = sandbox(SandboxConfig::default()).await;
    for args in [
        vec!["request-code", "--phone-number-id", "12a"],
        vec![
            "request-code",
            "--phone-number-id",
            "1",
            "--language",
            "english",
        ],
        vec![
            "request-code",
            "--phone-number-id",
            "1",
            "--method",
            "email",
        ],
        vec![
            "request-code",
            "--phone-number-id",
            "1",
            "--api-version",
            "23",
        ],
        vec!["verify-code", "--phone-number-id", "1", "--code", "12345"],
        vec![
            "request-code",
            "--phone-number-id",
            "1",
            "--timeout",
            "soon",
        ],
        vec![
            "request-code",
            "--phone-number-id",
            "1",
            "--per-number-rate",
            "5/week",
        ],
    ] {
        let out = run(against(&sb, &args)).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error:"),
            "{args:?}"
        );
    }
    let remote = run(with_token(
        wa(&[
            "request-code",
            "--phone-number-id",
            "1",
            "--base-url",
            "http://example.com",
        ]),
        FAKE_TOKEN,
    ))
    .await;
    assert_eq!(remote.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&remote.stderr).contains("loopback"));
    let no_token = run(wa(&[
        "request-code",
        "--phone-number-id",
        "1",
        "--base-url",
        sb.base_url(),
    ]))
    .await;
    assert_eq!(no_token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("WHATSAPP_ACCESS_TOKEN"));
    let usage = run(wa(&["request-code"])).await;
    assert_eq!(usage.status.code(), Some(2));
    assert_eq!(sb.stats().requests, 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_file_is_read_and_trimmed() {
    let sb = sandbox(SandboxConfig::default()).await;
    let dir = std::env::temp_dir().join(format!("wa-verify-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{FAKE_TOKEN}\n")).unwrap();
    let out = run(wa(&[
        "request-code",
        "--phone-number-id",
        "1",
        "--base-url",
        sb.base_url(),
        "--token-file",
        file.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let missing = run(wa(&[
        "request-code",
        "--phone-number-id",
        "1",
        "--base-url",
        sb.base_url(),
        "--token-file",
        "/nonexistent/token",
    ]))
    .await;
    assert_eq!(missing.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_flag_needs_no_token_and_logs_never_show_secrets() {
    let out = run(wa(&[
        "request-code",
        "--sandbox",
        "--phone-number-id",
        "1234567890",
        "-vvv",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("code sent"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("request_code"), "trace logs on stderr");
    assert!(
        !stderr.contains("SANDBOX") && !stderr.to_lowercase().contains("bearer"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_subcommand_prints_its_url_and_answers_the_curl_example() {
    let mut child = wa(&["sandbox", "--listen", "127.0.0.1:0"])
        .env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    // The seed's curl example, host changed.
    let p = plain(
        "POST",
        &format!("{url}/v23.0/1234567890/request_code"),
        &[
            ("authorization", &format!("Bearer {FAKE_TOKEN}")),
            ("content-type", "application/json"),
        ],
        r#"{"code_method":"SMS","language":"en_US"}"#,
    )
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        (p.status, p.json()),
        (200, serde_json::json!({"success": true}))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_json_report_counts_what_the_sandbox_counted() {
    let sb = sandbox(SandboxConfig::default()).await;
    let out = run(against(
        &sb,
        &[
            "bench",
            "--numbers",
            "50",
            "--duration",
            "1s",
            "--concurrency",
            "8",
            "--per-number-rate",
            "2/s",
            "--per-number-burst",
            "1",
            "--output",
            "json",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    for field in [
        "requests",
        "succeeded",
        "failed",
        "errors",
        "throughput_rps",
        "latency_ms",
    ] {
        assert!(v.get(field).is_some(), "{field}");
    }
    assert_eq!(v["requests"].as_u64().unwrap(), sb.stats().requests);
    assert!(
        v["rate_limit"]["local_refusals"].as_u64().unwrap() > 0,
        "50 numbers at 2/s for 8 callers: some refused"
    );
    assert_eq!(
        v["rate_limit"]["local_waits"], 0,
        "max_wait 0: nobody waits"
    );
    assert!(v["succeeded"].as_u64().unwrap() > 0);
    assert_eq!(
        v["succeeded"].as_u64().unwrap() + v["failed"].as_u64().unwrap(),
        v["calls"].as_u64().unwrap()
    );
}

/// The axum example's router, served in-process on a free port and called over real HTTP.
/// It is the example's own code (`examples/axum_gateway/app.rs`), not a binary an earlier
/// build left behind. See: issue 15.
#[tokio::test(flavor = "multi_thread")]
async fn the_axum_example_answers_a_real_request_to_its_route() {
    let sb = sandbox(Default::default()).await;
    let app = crate::axum_gateway::router(client(client_config(sb.base_url())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/numbers/1234567890/verification-code");
    let res = plain("POST", &url, &[], "").await.unwrap();
    let body = String::from_utf8_lossy(&res.body).into_owned();
    assert_eq!(res.status, 200, "{body}");
    assert!(body.contains("\"sent\":true"), "{body}");
    assert_eq!(sb.outbox().len(), 1);
    // A bad id is the caller's mistake: 400 with the library's error kind.
    let bad = format!("http://{addr}/numbers/12ab/verification-code");
    let res = plain("POST", &bad, &[], "").await.unwrap();
    assert_eq!(res.status, 400);
    assert!(String::from_utf8_lossy(&res.body).contains("invalid_input"));
    assert_eq!(sb.outbox().len(), 1, "nothing sent for a bad id");
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn error_data_and_unknown_fields_reach_the_json_and_the_text_says_what_to_do() {
    let body = r#"{"error":{"message":"Request code error","type":"OAuthException","code":136024,"error_subcode":2388091,"is_transient":false,"error_user_title":"Request code error","error_user_msg":"Please try again after a while.","error_data":{"messaging_product":"whatsapp","details":"wait 10 minutes"},"href":"https://developers.facebook.com/docs","brand_new_field":{"x":1},"fbtrace_id":"TraceFromBody123"}}"#;
    let server =
        Scripted::start(move |_| Script::Bytes(http_answer(400, "application/json", body, "")))
            .await;
    let base = server.base();
    let json_out = run(with_token(
        wa(&[
            "request-code",
            "--phone-number-id",
            "1",
            "--base-url",
            &base,
            "--output",
            "json",
        ]),
        FAKE_TOKEN,
    ))
    .await;
    assert_eq!(json_out.status.code(), Some(1));
    let v = json(&json_out);
    assert_eq!(v["error"]["kind"], "rate_limited");
    assert_eq!(v["error"]["meaning"], "request_code_failed_temporarily");
    assert_eq!(v["error"]["error_data"]["details"], "wait 10 minutes");
    assert_eq!(v["error"]["extra"]["brand_new_field"]["x"], 1);
    assert_eq!(v["error"]["href"], "https://developers.facebook.com/docs");
    assert_eq!(v["fbtrace_id"], "TraceFromBody123");
    assert_eq!(v["attempts"], 1, "136024 is never retried");
    let text_out = run(with_token(
        wa(&[
            "request-code",
            "--phone-number-id",
            "1",
            "--base-url",
            &base,
        ]),
        FAKE_TOKEN,
    ))
    .await;
    let text = String::from_utf8_lossy(&text_out.stderr);
    assert!(text.contains("Please try again after a while."), "{text}");
    assert!(
        text.contains("what to do: Meta is refusing codes for this number for now"),
        "{text}"
    );
    assert!(text.contains("fbtrace_id: TraceFromBody123"), "{text}");
}

/// Config the stores cannot represent is refused when it is read: exit 2 with the
/// reason, nothing sent, no panic. See: issue 16.
#[tokio::test(flavor = "multi_thread")]
async fn config_the_stores_cannot_represent_is_refused_with_exit_2() {
    let sb = sandbox(SandboxConfig::default()).await;
    let dir = std::env::temp_dir().join(format!("wa-verify-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, toml, says) in [
        (
            "zero-guard",
            "[rate_limit]\nwrong_codes = { max = 0, window = \"10m\" }",
            "\"off\"",
        ),
        (
            "zero-budget",
            "[rate_limit]\nregistration = { max = 0, window = \"72h\" }",
            "\"off\"",
        ),
        (
            "long-interval",
            "[rate_limit]\nper_number = [{ rate = \"1/200000d\", burst = 600 }]",
            "3650d",
        ),
        (
            "long-span",
            "[rate_limit]\nper_number = [{ rate = \"1/d\", burst = 600000 }]",
            "3650d",
        ),
        (
            "huge-duration",
            "[rate_limit]\nmax_wait = \"1000000000d\"",
            "3650d",
        ),
        (
            "zero-attempt",
            "[timeouts]\nattempt = \"0s\"",
            "longer than zero",
        ),
        (
            "zero-store-timeout",
            "[rate_limit.store]\ntimeout = \"0s\"",
            "longer than zero",
        ),
    ] {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        let path = path.to_str().unwrap();
        let out = run(against(
            &sb,
            &[
                "request-code",
                "--phone-number-id",
                "1",
                "--output",
                "json",
                "--config",
                path,
            ],
        ))
        .await;
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let v = json(&out);
        assert_eq!(v["error"]["kind"], "invalid_input", "{name}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{name}: {message}");
    }
    for flag in [["--timeout", "0s"], ["--attempt-timeout", "0ms"]] {
        let mut args = vec!["request-code", "--phone-number-id", "1", "--output", "json"];
        args.extend(flag);
        let out = run(against(&sb, &args)).await;
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {out:?}");
        assert!(json(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than zero"));
    }
    assert!(sb.outbox().is_empty(), "nothing was sent");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `wrong_codes = "off"` turns the guard off explicitly. See: issue 16.
#[tokio::test(flavor = "multi_thread")]
async fn a_guard_is_turned_off_with_off() {
    let text = "[rate_limit]\nwrong_codes = \"off\"\nregistration = \"off\"";
    let cfg = wa_verify_core::config::StackConfig::from_toml(text).unwrap();
    assert_eq!(cfg.rate_limit.wrong_codes, None);
    assert_eq!(cfg.rate_limit.registration, None);
    let written = serde_json::to_value(&cfg).unwrap();
    assert_eq!(written["rate_limit"]["wrong_codes"], "off");
    assert_eq!(written["rate_limit"]["registration"], "off");
}
