//! The CLI and the sandbox under hostile or careless use (see: issue 17).

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// Five kinds of usage error, each one JSON object on stdout with exit 2 under
/// `--output json`.
#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_are_one_json_object_with_exit_2() {
    for (what, args) in [
        ("missing flag", vec!["request-code", "--output", "json"]),
        (
            "unknown flag",
            vec![
                "request-code",
                "--phone-number-id",
                "1",
                "--no-such-flag",
                "--output",
                "json",
            ],
        ),
        (
            "bad value",
            vec![
                "request-code",
                "--phone-number-id",
                "1",
                "--max-attempts",
                "many",
                "--output=json",
            ],
        ),
        (
            "conflicting flags",
            vec![
                "request-code",
                "--phone-number-id",
                "1",
                "--sandbox",
                "--base-url",
                "http://127.0.0.1:1",
                "--output",
                "json",
            ],
        ),
        ("unknown subcommand", vec!["send-code", "--output", "json"]),
        (
            "flag without its value",
            vec!["request-code", "--output", "json", "--phone-number-id"],
        ),
    ] {
        let out = run(wa(&args)).await;
        assert_eq!(out.status.code(), Some(2), "{what}: {out:?}");
        let v = json(&out);
        assert_eq!(v["success"], false, "{what}");
        assert_eq!(v["error"]["kind"], "invalid_input", "{what}: {v}");
        assert_eq!(v["error"]["may_have_reached_server"], false, "{what}");
        assert!(
            !v["error"]["message"].as_str().unwrap().is_empty(),
            "{what}: the message says what was wrong"
        );
    }
    // Text output keeps clap's message on stderr, and --help still exits 0.
    let out = run(wa(&["request-code"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--phone-number-id"));
    let out = run(wa(&["--help"])).await;
    assert_eq!(out.status.code(), Some(0));
}

/// Every JSON error says whether the request may have reached Meta.
#[tokio::test(flavor = "multi_thread")]
async fn json_errors_say_whether_the_request_may_have_reached_meta() {
    let refused = closed_base().await;
    let mut c = wa(&[
        "request-code",
        "--phone-number-id",
        "1",
        "--base-url",
        &refused,
        "--output",
        "json",
    ]);
    c.env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN);
    let v = json(&run(c).await);
    assert_eq!(v["error"]["kind"], "transport");
    assert_eq!(v["error"]["may_have_reached_server"], false, "{v}");
    let server = Scripted::start(|_| {
        Script::Bytes(http_answer(
            502,
            "text/html",
            "<html>bad gateway</html>",
            "",
        ))
    })
    .await;
    let mut c = wa(&[
        "request-code",
        "--phone-number-id",
        "1",
        "--base-url",
        &server.base(),
        "--output",
        "json",
    ]);
    c.env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN);
    let v = json(&run(c).await);
    assert_eq!(v["error"]["may_have_reached_server"], true, "{v}");
}

/// A TLS failure's reason reaches the JSON as its cause chain, as in the text output.
#[tokio::test(flavor = "multi_thread")]
async fn the_tls_reason_is_in_the_json_cause_chain() {
    // A plain TCP server that answers the TLS hello with text.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let base = format!("https://127.0.0.1:{port}");
    let mut c = wa(&[
        "request-code",
        "--phone-number-id",
        "1",
        "--base-url",
        &base,
        "--output",
        "json",
        "--max-attempts",
        "1",
    ]);
    c.env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN);
    let out = run(c).await;
    let v = json(&out);
    assert_eq!(v["error"]["kind"], "transport", "{v}");
    let causes: Vec<String> = v["error"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_lowercase())
        .collect();
    assert!(!causes.is_empty(), "{v}");
    assert!(
        causes
            .iter()
            .any(|c| c.contains("tls") || c.contains("corrupt") || c.contains("invalid")),
        "the TLS reason: {causes:?}"
    );
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(!all.contains(FAKE_TOKEN));
}

/// SIGINT or SIGTERM while the request is at a server that holds it: the CLI prints the
/// outcome it knows (a code may have been sent) and exits 130 or 143.
#[tokio::test(flavor = "multi_thread")]
async fn a_signal_mid_call_prints_cancelled_and_exits_130_or_143() {
    let server = Scripted::start(|_| Script::Hang).await;
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let before = server.hits();
        let mut c = wa(&[
            "request-code",
            "--phone-number-id",
            "1",
            "--base-url",
            &server.base(),
            "--output",
            "json",
            "--timeout",
            "5m",
            "--attempt-timeout",
            "5m",
        ]);
        c.env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c.spawn().unwrap();
        let s = &server;
        eventually(
            Duration::from_secs(30),
            Duration::from_millis(10),
            "the request arrives",
            || async move {
                if s.hits() > before {
                    Ok(())
                } else {
                    Err("not yet".to_owned())
                }
            },
        )
        .await;
        let kill = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let started = Instant::now();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "it stops at once"
        );
        assert_eq!(out.status.code(), Some(code), "{signal}: {out:?}");
        let v = json(&out);
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["kind"], "cancelled", "{v}");
        assert_eq!(v["error"]["may_have_reached_server"], true, "{v}");
    }
}

/// Messages say what is true: the token refusal counts the bad characters only.
#[tokio::test(flavor = "multi_thread")]
async fn the_token_refusal_counts_only_the_bad_characters() {
    let mut c = wa(&[
        "request-code",
        "--phone-number-id",
        "1",
        "--base-url",
        "http://127.0.0.1:1",
        "--output",
        "json",
    ]);
    c.env("WHATSAPP_ACCESS_TOKEN", "FAKE-token with two-spaces");
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    let message = json(&out)["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("2 of its characters"), "{message}");
    assert!(!message.contains("two-spaces"), "never echoes the token");
}

/// `wa-verify sandbox` says why it cannot start (the OS's reason), and refuses a
/// non-loopback address for what it is.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_startup_errors_say_why() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(wa(&["sandbox", "--listen", &addr])).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("address already in use") || err.contains("in use"),
        "{err}"
    );
    let out = run(wa(&["sandbox", "--listen", "0.0.0.0:0"])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback") && !err.contains("https"), "{err}");
}

/// A `wa-verify sandbox` process on a free loopback port, killed on drop.
struct SandboxProcess {
    child: std::process::Child,
    base: String,
    _dir: Option<std::path::PathBuf>,
}

impl SandboxProcess {
    /// Starts it through `sh`, so `prefix` (like `ulimit -n 64;`) applies to it.
    fn start(prefix: &str, config: &str, extra: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "wa-verify-abuse-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sandbox.toml");
        std::fs::write(&path, config).unwrap();
        let script = format!(
            "{prefix} exec '{}' sandbox --listen 127.0.0.1:0 --config '{}' {extra}",
            env!("CARGO_BIN_EXE_wa-verify"),
            path.display()
        );
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script])
            .env_remove("WHATSAPP_ACCESS_TOKEN")
            .env("WHATSAPP_ACCESS_TOKEN", FAKE_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        let base = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{line}");
        // Keep reading stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        Self {
            child,
            base,
            _dir: Some(dir),
        }
    }

    fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the process used so far (user + system), from /proc.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // Linux reports in clock ticks of 100 Hz on every platform this runs on.
        Duration::from_millis(ticks * 10)
    }

    /// Resident memory in bytes, from /proc.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    }

    fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self._dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A request_code with the fake token, answered or not.
async fn request_code_at(base: &str, id: &str) -> Option<u16> {
    plain(
        "POST",
        &format!("{base}/v23.0/{id}/request_code"),
        &[
            ("authorization", &format!("Bearer {FAKE_TOKEN}")),
            ("content-type", "application/json"),
        ],
        r#"{"code_method":"SMS","language":"en_US"}"#,
    )
    .await
    .ok()
    .map(|p| p.status)
}

/// 50 slowloris connections trickle their headers; a legitimate request is still answered
/// at once, and the trickling ones are cut off at the header deadline.
#[tokio::test(flavor = "multi_thread")]
async fn slowloris_connections_leave_the_sandbox_answering() {
    let sb = SandboxProcess::start("", "[server]\nheader_timeout = \"2s\"\n", "");
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = std::net::TcpStream::connect(sb.addr()).unwrap();
        s.write_all(b"POST /v23.0/1/request_code HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        slow.push(s);
    }
    let started = Instant::now();
    assert_eq!(request_code_at(&sb.base, "1234567890").await, Some(200));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "answered promptly: {took:?}"
    );
    // Past the 2 s header deadline every trickling connection is closed (read gives 0 or
    // an error); bounded at 30 s, 15x the deadline.
    let closed = tokio::task::spawn_blocking(move || {
        slow.into_iter()
            .filter_map(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let _ = s.write_all(b"X-Slow: 1\r\n");
                let mut buf = [0u8; 64];
                match s.read(&mut buf) {
                    Ok(0) => Some(()),
                    Err(e)
                        if e.kind() != std::io::ErrorKind::WouldBlock
                            && e.kind() != std::io::ErrorKind::TimedOut =>
                    {
                        Some(())
                    }
                    // Still open after 30 s, or an answer to a request never finished.
                    _ => None,
                }
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 50);
}

/// At a file-descriptor limit of 64, 80 half-open connections make `accept` fail; the
/// loop backs off instead of spinning, and legitimate requests are answered once those
/// connections close.
#[tokio::test(flavor = "multi_thread")]
async fn at_the_fd_limit_accept_backs_off_and_recovers() {
    let sb = SandboxProcess::start("ulimit -n 64;", "[server]\nheader_timeout = \"60s\"\n", "");
    let conns: Vec<std::net::TcpStream> = (0..80)
        .filter_map(|_| std::net::TcpStream::connect(sb.addr()).ok())
        .collect();
    assert!(
        conns.len() >= 64,
        "the OS backlog takes the rest: {}",
        conns.len()
    );
    // Let the accept loop meet the limit, then measure its CPU over 2 s.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = sb.cpu();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = sb.cpu() - before;
    eprintln!("sandbox CPU over 2 s at the fd limit: {used:?}");
    assert!(
        used < Duration::from_millis(500),
        "no spinning: {used:?} of CPU in 2 s"
    );
    drop(conns);
    let base = sb.base.clone();
    let b = &base;
    eventually(
        Duration::from_secs(30),
        Duration::from_millis(50),
        "answered again",
        || async move {
            match request_code_at(b, "1234567890").await {
                Some(200) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
}

/// SIGTERM with a stalled connection: the sandbox exits soon after the grace period;
/// with a long grace, a second signal exits at once.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_is_bounded_by_the_grace_period_and_a_second_signal() {
    for (grace, signals) in [("1s", 1), ("300s", 2)] {
        let sb = SandboxProcess::start(
            "",
            "[server]\nheader_timeout = \"300s\"\n",
            &format!("--shutdown-grace {grace}"),
        );
        // A request whose headers never end: it stalls graceful shutdown.
        let mut stalled = std::net::TcpStream::connect(sb.addr()).unwrap();
        stalled
            .write_all(b"POST /v23.0/1/request_code HTTP/1.1\r\n")
            .unwrap();
        assert_eq!(request_code_at(&sb.base, "1234567890").await, Some(200));
        let started = Instant::now();
        sb.signal("-TERM");
        if signals == 2 {
            // Once the first signal is handled the listener is gone: only then is the
            // second one a second one (two pending signals of a kind are delivered once).
            let addr = sb.addr();
            let a = &addr;
            eventually(
                Duration::from_secs(30),
                Duration::from_millis(10),
                "the listener closes",
                || async move {
                    match tokio::net::TcpStream::connect(a).await {
                        Err(_) => Ok(()),
                        Ok(_) => Err("still accepting".to_owned()),
                    }
                },
            )
            .await;
            sb.signal("-TERM");
        }
        let sb = std::sync::Mutex::new(sb);
        let sb = &sb;
        let status = eventually(
            Duration::from_secs(30),
            Duration::from_millis(20),
            "exits",
            || async move {
                match sb.lock().unwrap().child.try_wait().unwrap() {
                    Some(status) => Ok(status),
                    None => Err("still running".to_owned()),
                }
            },
        )
        .await;
        let took = started.elapsed();
        // One signal: a clean exit after the grace period; a second: at once, with 143.
        let expected = if signals == 1 { 0 } else { 143 };
        assert_eq!(
            status.code(),
            Some(expected),
            "grace {grace}, after {took:?}"
        );
        eprintln!("grace {grace}, {signals} signal(s): exited after {took:?}");
        drop(stalled);
    }
}

/// 404, 405, 413 and a bad path encoding are Graph-shaped and carry a trace id.
#[tokio::test(flavor = "multi_thread")]
async fn every_answer_is_graph_shaped_with_a_trace_id() {
    let sb = sandbox(Default::default()).await;
    let base = sb.base_url();
    let auth = format!("Bearer {FAKE_TOKEN}");
    let big = vec![b'x'; 128 * 1024];
    for (method, path, body, status) in [
        ("GET", "/no/such/path/at/all", Vec::new(), 404),
        ("GET", "/v23.0/1/request_code", Vec::new(), 405),
        ("POST", "/v23.0/1/request_code", big, 413),
        ("POST", "/v23.0/%FF%FE/request_code", Vec::new(), 400),
    ] {
        let res = plain(
            method,
            &format!("{base}{path}"),
            &[("authorization", &auth)],
            body,
        )
        .await
        .unwrap();
        assert_eq!(res.status, status, "{method} {path}");
        assert!(
            res.header("x-fb-trace-id").is_some_and(|t| !t.is_empty()),
            "{method} {path}"
        );
        let v: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
        let e = &v["error"];
        assert!(
            e["message"].is_string() && e["type"].is_string() && e["code"].is_i64(),
            "{v}"
        );
        assert_eq!(e["fbtrace_id"], res.header("x-fb-trace-id").unwrap());
    }
}

/// Codes are unpredictable by default (a new seed from the OS at each start) and
/// reproducible when a seed is configured.
#[tokio::test(flavor = "multi_thread")]
async fn first_codes_differ_between_starts_unless_seeded() {
    async fn first_code(config: &str) -> String {
        let sb = sandbox(wa_verify_sandbox::SandboxConfig::from_toml(config).unwrap()).await;
        assert_eq!(request_code_at(sb.base_url(), "77").await, Some(200));
        sb.outbox().last_code("77").unwrap()
    }
    let a = first_code("").await;
    let b = first_code("").await;
    let c = first_code("").await;
    // Three equal draws of six digits would be one in 10^12.
    assert!(a != b || b != c, "{a} {b} {c}");
    let seeded = "[codes]\nseed = 42";
    assert_eq!(first_code(seeded).await, first_code(seeded).await);
}

/// 100,000 distinct numbers with `max_entries = 1000`: per-number state and the outbox's
/// index are evicted too, so resident memory stays flat.
#[tokio::test(flavor = "multi_thread")]
async fn memory_stays_flat_over_100k_numbers_with_max_entries() {
    use http_body_util::{BodyExt, Full};
    let sb = SandboxProcess::start("", "[outbox]\nmax_entries = 1000\n", "");
    // One pooled keep-alive client: the sandbox's memory is measured, not connection churn.
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let drive = |from: u64, count: u64| {
        let base = sb.base.clone();
        let client = client.clone();
        async move {
            let per = count / 16;
            let tasks: Vec<_> = (0..16)
                .map(|w| {
                    let base = base.clone();
                    let client = client.clone();
                    tokio::spawn(async move {
                        for i in 0..per {
                            let id = from + w * per + i;
                            let req =
                                http::Request::post(format!("{base}/v23.0/{id}/request_code"))
                                    .header("authorization", format!("Bearer {FAKE_TOKEN}"))
                                    .header("content-type", "application/json")
                                    .body(Full::new(bytes::Bytes::from_static(
                                        br#"{"code_method":"SMS","language":"en_US"}"#,
                                    )))
                                    .unwrap();
                            let res = client.request(req).await.unwrap();
                            assert_eq!(res.status(), 200);
                            let _ = res.into_body().collect().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    // Warm up past the cap, so allocator pools and the maps are at their working size.
    drive(1_000_000_000, 16_000).await;
    let before = sb.rss();
    drive(2_000_000_000, 100_000).await;
    let after = sb.rss();
    let grew = after.saturating_sub(before);
    eprintln!("sandbox RSS over 100k numbers: {before} -> {after} bytes (+{grew})");
    assert!(grew < 20 * 1024 * 1024, "grew {grew} bytes");
}
