use std::time::Duration;

use wa_verify_core::ErrorKind;

use crate::support::*;

/// Answers by phone number id: `/v23.0/{id}/request_code`.
fn scripted(path: &str) -> Script {
    let id: u16 = path
        .split('/')
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let graph = |status: u16, ty: &str, code: i64, sub: &str, transient: &str| {
        let body = format!(
            r#"{{"error":{{"message":"m{status}","type":"{ty}","code":{code}{sub}{transient},"fbtrace_id":"BodyTrace{status}"}}}}"#
        );
        Script::Bytes(http_answer(status, "application/json", &body, ""))
    };
    match id {
        200 => Script::Bytes(http_answer(
            200,
            "application/json",
            r#"{"success":true}"#,
            "",
        )),
        400 => graph(400, "OAuthException", 100, "", ""),
        401 => graph(401, "OAuthException", 190, r#","error_subcode":463"#, ""),
        403 => graph(
            403,
            "OAuthException",
            200,
            r#","error_subcode":1349174"#,
            "",
        ),
        404 => graph(404, "GraphMethodException", 803, "", ""),
        422 => graph(422, "GraphMethodException", 100, "", ""),
        429 => graph(
            429,
            "OAuthException",
            4,
            r#","error_subcode":2446079"#,
            r#","is_transient":true"#,
        ),
        500 => graph(
            500,
            "GraphMethodException",
            2,
            "",
            r#","is_transient":true"#,
        ),
        // HTML from a proxy.
        502 => Script::Bytes(http_answer(
            502,
            "text/html",
            "<html><body>Bad Gateway</body></html>",
            "",
        )),
        // Empty body.
        503 => Script::Bytes(http_answer(503, "application/json", "", "")),
        // Truncated: the length promises more than is sent before the close.
        600 => {
            let mut b = http_answer(200, "application/json", r#"{"success":true}"#, "");
            let s = String::from_utf8(b.clone())
                .unwrap()
                .replace("content-length: 16", "content-length: 64");
            b = s.into_bytes();
            Script::Bytes(b)
        }
        // Oversized: far past the 64 KiB cap.
        601 => Script::Bytes(http_answer(
            200,
            "application/json",
            &format!("{{\"success\":true,\"p\":\"{}\"}}", "x".repeat(200_000)),
            "",
        )),
        // Oversized without a length: chunked, so only reading finds out.
        602 => {
            let chunk = "x".repeat(30_000);
            let mut s = String::from("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nx-fb-trace-id: HdrTrace200\r\nconnection: close\r\n\r\n");
            for _ in 0..5 {
                s.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
            }
            s.push_str("0\r\n\r\n");
            Script::Bytes(s.into_bytes())
        }
        603 => Script::Close,
        604 => Script::Hang,
        _ => Script::Bytes(http_answer(200, "application/json", "{}", "")),
    }
}

async fn call(
    server: &Scripted,
    id_: &str,
) -> Result<wa_verify_core::Response<wa_verify_core::RequestCodeResponse>, wa_verify_core::Error> {
    let mut cfg = client_config(&server.base());
    cfg.retry.enabled = false;
    cfg.timeouts.attempt = Some(Duration::from_millis(300));
    client(cfg).request_code(request(id_)).await
}

#[tokio::test]
async fn every_spec_status_gives_its_kind_status_and_fbtrace_id() {
    let server = Scripted::start(scripted).await;
    assert!(call(&server, "200").await.unwrap().success);
    for (id_, kind) in [
        ("400", ErrorKind::BadRequest),
        ("401", ErrorKind::Auth),
        ("403", ErrorKind::Permission),
        ("404", ErrorKind::NotFound),
        ("422", ErrorKind::Unprocessable),
        ("429", ErrorKind::RateLimited),
        ("500", ErrorKind::Server),
    ] {
        let e = call(&server, id_).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{id_}: {e}");
        assert_eq!(e.status().unwrap().as_str(), id_);
        assert_eq!(e.fbtrace_id(), Some(format!("BodyTrace{id_}").as_str()));
        assert_eq!(e.graph().unwrap().message, format!("m{id_}"));
        assert_eq!(e.attempts(), 1);
    }
    assert_eq!(server.hits(), 8, "one request per call, no retry");
}

#[tokio::test]
async fn html_empty_truncated_and_oversized_are_protocol_errors() {
    let server = Scripted::start(scripted).await;
    for (id_, status, what) in [
        ("502", 502, "HTML"),
        ("503", 503, "empty"),
        ("600", 200, "cut short"),
        ("601", 200, "larger than"),
        ("602", 200, "larger than"),
    ] {
        let e = call(&server, id_).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{id_}: {e}");
        assert_eq!(e.status().unwrap().as_u16(), status, "{id_}");
        assert!(e.to_string().contains(what), "{id_}: {e}");
        assert_eq!(
            e.fbtrace_id(),
            Some(format!("HdrTrace{status}").as_str()),
            "{id_}"
        );
        assert!(e.may_have_reached_server());
    }
}

#[tokio::test]
async fn dropped_and_hanging_connections_are_transport_and_timeout() {
    let server = Scripted::start(scripted).await;
    let e = call(&server, "603").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");
    assert!(e.may_have_reached_server());
    let e = call(&server, "604").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.timeout_kind(), Some(wa_verify_core::TimeoutKind::Attempt));
}

#[tokio::test]
async fn refused_connection_is_transport_not_sent() {
    let base = closed_base().await;
    let mut cfg = client_config(&base);
    cfg.retry.enabled = false;
    let e = client(cfg).request_code(request("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport);
    assert!(!e.may_have_reached_server());
}

#[tokio::test]
async fn http_to_a_remote_host_is_refused_before_any_io() {
    let e = "http://graph.facebook.com"
        .parse::<wa_verify_core::graph::BaseUrl>()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("loopback"));
}

#[tokio::test]
async fn token_appears_in_no_debug_display_or_error_text() {
    let server = Scripted::start(scripted).await;
    let mut cfg = client_config(&server.base());
    cfg.retry.enabled = false;
    let c = client(cfg);
    let mut texts = vec![format!("{c:?}"), format!("{:?} {}", token(), token())];
    for id_ in ["401", "502", "603"] {
        let e = c.request_code(request(id_)).await.unwrap_err();
        texts.push(format!("{e} {e:?}"));
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            texts.push(format!("{s} {s:?}"));
            src = s.source();
        }
    }
    for t in texts {
        assert!(!t.contains(FAKE_TOKEN), "token leaked in {t}");
    }
}
