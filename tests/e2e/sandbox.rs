use std::time::Duration;

use tokio::time::advance;
use wa_verify_sandbox::{FaultKind, NumberFault, QuotaDialect, SandboxConfig, SandboxHandle};

use crate::support::*;

fn url(sb: &SandboxHandle, id_: &str, op: &str) -> String {
    format!("{}/v23.0/{id_}/{op}", sb.base_url())
}

const AUTH: (&str, &str) = ("authorization", "Bearer FAKE-test-token-0123456789abcdef");
const JSON: (&str, &str) = ("content-type", "application/json");

async fn request_json(sb: &SandboxHandle, id_: &str) -> Plain {
    plain(
        "POST",
        &url(sb, id_, "request_code"),
        &[AUTH, JSON],
        r#"{"code_method":"SMS","language":"en_US"}"#,
    )
    .await
    .unwrap()
}

async fn verify_json(sb: &SandboxHandle, id_: &str, code: &str) -> Plain {
    plain(
        "POST",
        &url(sb, id_, "verify_code"),
        &[AUTH, JSON],
        format!(r#"{{"code":"{code}"}}"#),
    )
    .await
    .unwrap()
}

/// Checks a Graph error: status, type, code, subcode, and the trace id in body and header.
fn assert_graph(
    p: &Plain,
    status: u16,
    ty: &str,
    code: i64,
    subcode: Option<i64>,
) -> serde_json::Value {
    assert_eq!(p.status, status, "{}", String::from_utf8_lossy(&p.body));
    let e = p.json()["error"].clone();
    assert_eq!(e["type"], ty);
    assert_eq!(e["code"], code);
    assert_eq!(e["error_subcode"].as_i64(), subcode);
    let trace = e["fbtrace_id"].as_str().unwrap();
    assert_eq!(trace.len(), 23);
    assert_eq!(p.header("x-fb-trace-id"), Some(trace));
    assert!(p.header("x-fb-request-id").is_some());
    e
}

fn wrong(code: &str) -> &'static str {
    if code == "000000" {
        "111111"
    } else {
        "000000"
    }
}

#[tokio::test]
async fn accepts_json_form_multipart_and_query_parameters() {
    let sb = sandbox(SandboxConfig::default()).await;
    let ok = |p: Plain| {
        assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
        assert_eq!(p.json(), serde_json::json!({"success": true}));
        assert_eq!(p.header("x-fb-trace-id").map(str::len), Some(23));
    };
    ok(request_json(&sb, "1").await);
    ok(plain(
        "POST",
        &url(&sb, "2", "request_code"),
        &[AUTH, ("content-type", "application/x-www-form-urlencoded")],
        "code_method=VOICE&language=en",
    )
    .await
    .unwrap());
    let mp = "--b0undary\r\nContent-Disposition: form-data; name=\"code_method\"\r\n\r\nSMS\r\n--b0undary\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\npt_BR\r\n--b0undary--\r\n";
    ok(plain(
        "POST",
        &url(&sb, "3", "request_code"),
        &[
            AUTH,
            ("content-type", "multipart/form-data; boundary=b0undary"),
        ],
        mp,
    )
    .await
    .unwrap());
    // Graph's reference sends the parameters in the query string, token included.
    let q = format!(
        "{}?code_method=SMS&language=en&access_token={FAKE_TOKEN}",
        url(&sb, "4", "request_code")
    );
    ok(plain("POST", &q, &[], "").await.unwrap());
    let code = sb.outbox().last_code("4").unwrap();
    let v = plain(
        "POST",
        &format!("{}?code={code}", url(&sb, "4", "verify_code")),
        &[AUTH],
        "",
    )
    .await
    .unwrap();
    assert_eq!(v.json(), serde_json::json!({"success": true, "id": "4"}));
    let methods: Vec<_> = sb
        .outbox()
        .entries()
        .iter()
        .map(|e| (e.code_method.clone(), e.language.clone()))
        .collect();
    assert_eq!(methods[1], ("VOICE".to_owned(), "en".to_owned()));
    assert_eq!(methods[2], ("SMS".to_owned(), "pt_BR".to_owned()));
}

#[tokio::test]
async fn the_seed_curl_example_with_json_labelled_as_form_succeeds() {
    let sb = sandbox(SandboxConfig::default()).await;
    // `curl -d '{...}'` sends JSON with a form Content-Type.
    let p = plain(
        "POST",
        &url(&sb, "1234567890", "request_code"),
        &[AUTH, ("content-type", "application/x-www-form-urlencoded")],
        r#"{"code_method":"SMS","language":"en_US"}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        (p.status, p.json()),
        (200, serde_json::json!({"success": true}))
    );
}

#[tokio::test]
async fn errors_have_graph_shape_with_the_spec_codes() {
    let cfg = SandboxConfig::from_toml(
        r#"
        numbers = ["1", "2", "3"]
        not_permitted = ["2"]
        not_eligible = ["3"]
    "#,
    )
    .unwrap();
    let sb = sandbox(cfg).await;
    let bad_token = plain(
        "POST",
        &url(&sb, "1", "request_code"),
        &[("authorization", "Bearer nope"), JSON],
        r#"{"code_method":"SMS","language":"en_US"}"#,
    )
    .await
    .unwrap();
    assert_graph(&bad_token, 401, "OAuthException", 190, Some(463));
    let no_token = plain(
        "POST",
        &url(&sb, "1", "request_code"),
        &[JSON],
        r#"{"code_method":"SMS","language":"en_US"}"#,
    )
    .await
    .unwrap();
    assert_graph(&no_token, 401, "OAuthException", 190, Some(463));
    for body in [
        r#"{"code_method":"EMAIL","language":"en_US"}"#,
        r#"{"language":"en_US"}"#,
        r#"{"code_method":"SMS","language":"english"}"#,
        r#"{"code_method":"#,
    ] {
        let p = plain("POST", &url(&sb, "1", "request_code"), &[AUTH, JSON], body)
            .await
            .unwrap();
        assert_graph(&p, 400, "OAuthException", 100, None);
    }
    let p = verify_json(&sb, "1", "12ab").await;
    let e = assert_graph(&p, 400, "OAuthException", 100, None);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("Invalid verification code format"));
    assert_graph(
        &request_json(&sb, "9").await,
        404,
        "GraphMethodException",
        803,
        None,
    );
    assert_graph(
        &request_json(&sb, "2").await,
        403,
        "OAuthException",
        200,
        Some(1_349_174),
    );
    assert_graph(
        &request_json(&sb, "3").await,
        422,
        "GraphMethodException",
        100,
        None,
    );
    assert!(sb.outbox().is_empty());
}

#[tokio::test(start_paused = true)]
async fn codes_expire_are_replaced_and_work_once() {
    let sb = sandbox(SandboxConfig::default()).await;
    assert_eq!(request_json(&sb, "7").await.status, 200);
    let first = sb.outbox().last_code("7").unwrap();
    assert_eq!(request_json(&sb, "7").await.status, 200);
    let second = sb.outbox().last_code("7").unwrap();
    assert_ne!(
        first, second,
        "the seeded generator gives two different codes"
    );
    // The replaced code no longer works.
    assert_graph(
        &verify_json(&sb, "7", &first).await,
        400,
        "OAuthException",
        136_025,
        Some(2_388_093),
    );
    advance(Duration::from_secs(599)).await;
    assert_eq!(
        verify_json(&sb, "7", &second).await.json(),
        serde_json::json!({"success": true, "id": "7"})
    );
    // Single use.
    assert_graph(
        &verify_json(&sb, "7", &second).await,
        400,
        "OAuthException",
        136_025,
        Some(2_388_093),
    );
    // Expiry after 10 minutes.
    assert_eq!(request_json(&sb, "7").await.status, 200);
    let third = sb.outbox().last_code("7").unwrap();
    advance(Duration::from_secs(601)).await;
    assert_graph(
        &verify_json(&sb, "7", &third).await,
        400,
        "OAuthException",
        136_025,
        Some(2_388_093),
    );
}

#[tokio::test(start_paused = true)]
async fn repeated_wrong_codes_block_the_number_until_the_block_passes() {
    let sb = sandbox(SandboxConfig::default()).await;
    assert_eq!(request_json(&sb, "8").await.status, 200);
    let code = sb.outbox().last_code("8").unwrap();
    for _ in 0..5 {
        assert_eq!(verify_json(&sb, "8", wrong(&code)).await.status, 400);
    }
    let blocked = verify_json(&sb, "8", &code).await;
    assert_graph(&blocked, 429, "OAuthException", 4, Some(2_446_079));
    assert!(blocked.header("retry-after").is_some());
    advance(Duration::from_secs(601)).await;
    assert_eq!(request_json(&sb, "8").await.status, 200);
    let fresh = sb.outbox().last_code("8").unwrap();
    assert_eq!(verify_json(&sb, "8", &fresh).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn per_number_quota_answers_429_with_usage_headers_and_recovers() {
    let cfg =
        SandboxConfig::from_toml("[quotas]\nper_number = { rate = \"1/min\", burst = 1 }").unwrap();
    let sb = sandbox(cfg).await;
    assert_eq!(request_json(&sb, "5").await.status, 200);
    let limited = request_json(&sb, "5").await;
    let e = assert_graph(&limited, 429, "OAuthException", 4, Some(2_446_079));
    assert_eq!(e["is_transient"], true);
    assert_eq!(limited.header("retry-after"), Some("60"));
    let usage: serde_json::Value =
        serde_json::from_str(limited.header("x-business-use-case-usage").unwrap()).unwrap();
    assert_eq!(usage["5"][0]["estimated_time_to_regain_access"], 1);
    assert_eq!(
        request_json(&sb, "6").await.status,
        200,
        "other numbers are unaffected"
    );
    advance(Duration::from_secs(60)).await;
    assert_eq!(request_json(&sb, "5").await.status, 200);
    assert_eq!(sb.outbox().entries_for("5").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn observed_dialect_answers_the_volume_limit_136024_2388367_at_http_400() {
    let mut cfg = SandboxConfig::from_toml(
        "request_code_failing = [\"7\"]\n[quotas]\nper_number = { rate = \"1/min\", burst = 1 }",
    )
    .unwrap();
    cfg.quotas.quota_error = QuotaDialect::Observed;
    let sb = sandbox(cfg).await;
    assert_eq!(request_json(&sb, "5").await.status, 200);
    let e = assert_graph(
        &request_json(&sb, "5").await,
        400,
        "OAuthException",
        136_024,
        Some(2_388_367),
    );
    assert_eq!(e["is_transient"], false);
    assert!(e["error_user_msg"]
        .as_str()
        .unwrap()
        .contains("volume limit"));
    // A number configured as failing answers 2388091 from its first request.
    let e = assert_graph(
        &request_json(&sb, "7").await,
        400,
        "OAuthException",
        136_024,
        Some(2_388_091),
    );
    assert!(e["error_user_msg"]
        .as_str()
        .unwrap()
        .contains("wait 1 hour"));
    assert_eq!(sb.outbox().sent_to("7"), 0);
}

#[tokio::test(start_paused = true)]
async fn app_quota_covers_every_number() {
    let cfg = SandboxConfig::from_toml("[quotas]\napp = { rate = \"2/s\", burst = 2 }").unwrap();
    let sb = sandbox(cfg).await;
    assert_eq!(request_json(&sb, "1").await.status, 200);
    assert_eq!(request_json(&sb, "2").await.status, 200);
    assert_graph(
        &request_json(&sb, "3").await,
        429,
        "OAuthException",
        4,
        Some(2_446_079),
    );
    // A sliding log: 2 calls in any moving second (Meta states its limits per window).
    advance(Duration::from_millis(500)).await;
    assert_eq!(request_json(&sb, "3").await.status, 429);
    advance(Duration::from_millis(500)).await;
    assert_eq!(request_json(&sb, "3").await.status, 200);
}

fn faulty(kind: FaultKind) -> SandboxConfig {
    let mut cfg = SandboxConfig::default();
    cfg.number_faults
        .insert("66".into(), NumberFault::always(kind));
    cfg.faults.latency = Duration::from_secs(3);
    cfg.faults.retry_after_secs = 7;
    cfg
}

#[tokio::test(start_paused = true)]
async fn every_fault_kind_behaves_as_configured() {
    for kind in FaultKind::ALL {
        let sb = sandbox(faulty(kind)).await;
        let started = tokio::time::Instant::now();
        let res = tokio::time::timeout(
            Duration::from_secs(60),
            plain(
                "POST",
                &url(&sb, "66", "request_code"),
                &[AUTH, JSON],
                r#"{"code_method":"SMS","language":"en_US"}"#,
            ),
        )
        .await;
        let sent = sb.outbox().len();
        match kind {
            FaultKind::Transient500 => {
                let e = assert_graph(&res.unwrap().unwrap(), 500, "GraphMethodException", 2, None);
                assert_eq!(e["is_transient"], true);
            }
            FaultKind::Server500 | FaultKind::BadGateway502 | FaultKind::GatewayTimeout504 => {
                let p = res.unwrap().unwrap();
                let status = match kind {
                    FaultKind::Server500 => 500,
                    FaultKind::BadGateway502 => 502,
                    _ => 504,
                };
                assert_eq!(p.status, status);
                assert!(p.json()["error"].get("is_transient").is_none());
            }
            FaultKind::Unavailable503 => {
                let p = res.unwrap().unwrap();
                assert_eq!(p.status, 503);
                assert!(String::from_utf8_lossy(&p.body).contains("<html>"));
            }
            FaultKind::RateLimited429 => {
                let p = res.unwrap().unwrap();
                assert_graph(&p, 429, "OAuthException", 4, Some(2_446_079));
                assert_eq!(p.header("retry-after"), Some("7"));
            }
            FaultKind::Latency => {
                assert_eq!(res.unwrap().unwrap().status, 200);
                assert!(started.elapsed() >= Duration::from_secs(3));
            }
            FaultKind::Hang => assert!(res.is_err(), "a hang never answers"),
            FaultKind::DropBeforeSend | FaultKind::DropAfterSend => {
                assert!(
                    res.unwrap().is_err(),
                    "{kind:?}: the connection closes without an answer"
                );
            }
            FaultKind::TruncatedBody => {
                let p = res.unwrap().unwrap();
                assert!(p.body.len() < 16, "body cut short: {:?}", p.body);
            }
            FaultKind::OversizedBody => {
                let p = res.unwrap().unwrap();
                assert!(p.body.len() > 1_000_000);
            }
            FaultKind::Answer => {
                // The default answer: 500 with the spec's body.
                let e = assert_graph(&res.unwrap().unwrap(), 500, "GraphMethodException", 2, None);
                assert_eq!(e["is_transient"], true);
            }
            _ => unreachable!("every kind is listed"),
        }
        let expect_sent = usize::from(kind.acts_first());
        assert_eq!(sent, expect_sent, "{kind:?}");
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn number_faults_can_be_limited_to_a_few_calls() {
    let mut cfg = SandboxConfig::default();
    cfg.number_faults
        .insert("1".into(), NumberFault::times(FaultKind::Transient500, 2));
    let sb = sandbox(cfg).await;
    assert_eq!(request_json(&sb, "1").await.status, 500);
    assert_eq!(request_json(&sb, "1").await.status, 500);
    assert_eq!(request_json(&sb, "1").await.status, 200);
}

#[tokio::test]
async fn probability_faults_are_reproducible_with_a_seed() {
    let run = || async {
        let cfg = SandboxConfig::from_toml("[faults]\nseed = 42\nprobability = 0.5\nkinds = [\"transient_500\", \"bad_gateway_502\"]").unwrap();
        let sb = sandbox(cfg).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(request_json(&sb, "1").await.status);
        }
        statuses
    };
    let a = run().await;
    assert_eq!(a, run().await);
    assert!(
        a.contains(&200) && (a.contains(&500) || a.contains(&502)),
        "{a:?}"
    );
}

#[tokio::test]
async fn outbox_and_stats_endpoints() {
    let sb = sandbox(SandboxConfig::from_toml("numbers = [\"1\", \"2\"]").unwrap()).await;
    request_json(&sb, "1").await;
    request_json(&sb, "2").await;
    request_json(&sb, "9").await;
    let all = plain(
        "GET",
        &format!("{}/__sandbox/outbox", sb.base_url()),
        &[],
        "",
    )
    .await
    .unwrap()
    .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let entry = &all[0];
    for field in [
        "phone_number_id",
        "code_method",
        "language",
        "code",
        "sent_at",
        "fbtrace_id",
    ] {
        assert!(entry.get(field).is_some(), "{field}");
    }
    assert_eq!(entry["phone_number_id"], "1");
    assert_eq!(entry["code"].as_str().unwrap().len(), 6);
    let one = plain(
        "GET",
        &format!("{}/__sandbox/outbox?phone_number_id=2", sb.base_url()),
        &[],
        "",
    )
    .await
    .unwrap()
    .json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["phone_number_id"], "2");
    let stats = plain(
        "GET",
        &format!("{}/__sandbox/stats", sb.base_url()),
        &[],
        "",
    )
    .await
    .unwrap()
    .json();
    assert_eq!(stats["requests"], 3);
    assert_eq!(stats["by_status"]["200"], 2);
    assert_eq!(stats["by_status"]["404"], 1);
    assert_eq!(stats["by_error_code"]["803"], 1);
    assert_eq!(stats["codes_sent"], 2);
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_finishes_in_flight_requests_and_keeps_their_codes() {
    let mut cfg = SandboxConfig::default();
    cfg.faults.probability = 1.0;
    cfg.faults.kinds = vec![FaultKind::Latency];
    cfg.faults.latency = Duration::from_secs(1);
    let sb = sandbox(cfg).await;
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let u = url(&sb, &(100 + i).to_string(), "request_code");
            tokio::spawn(async move {
                plain(
                    "POST",
                    &u,
                    &[AUTH, JSON],
                    r#"{"code_method":"SMS","language":"en_US"}"#,
                )
                .await
                .map(|p| p.status)
            })
        })
        .collect();
    for _ in 0..10_000 {
        if sb.stats().in_flight == 20 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(sb.stats().in_flight, 20, "all calls are in the handler");
    let outbox = sb.outbox().clone();
    sb.shutdown().await;
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), 200);
    }
    assert_eq!(outbox.len(), 20);
}
