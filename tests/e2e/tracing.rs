use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;
use wa_verify_sandbox::SandboxConfig;

use crate::support::*;

/// Everything the subscriber writes, kept in memory.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    /// The capture of the test running on this thread, if it captures.
    static SINK: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Writes to this thread's capture, or nowhere.
#[derive(Clone, Copy)]
struct ThreadSink;

impl Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|s| {
            if let Some(c) = s.borrow_mut().as_mut() {
                c.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThreadSink {
    type Writer = ThreadSink;

    fn make_writer(&'a self) -> ThreadSink {
        *self
    }
}

/// A capture in progress on this thread; capturing stops when it is dropped.
pub(crate) struct Capture(());

impl Drop for Capture {
    fn drop(&mut self) {
        SINK.with(|s| s.borrow_mut().take());
    }
}

/// Captures TRACE output (span closes with their fields) of everything that runs on this
/// test's thread. One global subscriber serves every test: scoped subscribers on parallel
/// test threads make tracing's per-callsite interest cache race, and spans go missing.
pub(crate) async fn capture() -> (Captured, Capture) {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(ThreadSink)
            .try_init();
    });
    let out = Captured::default();
    SINK.with(|s| *s.borrow_mut() = Some(out.clone()));
    (out, Capture(()))
}

#[tokio::test]
async fn a_failing_call_records_the_servers_fbtrace_id_and_no_secret() {
    let (out, _guard) = capture().await;
    let sb = sandbox(SandboxConfig::from_toml("not_permitted = [\"77\"]").unwrap()).await;
    let c = client(client_config(sb.base_url()));
    let e = c.request_code(request("77")).await.unwrap_err();
    let trace = e.fbtrace_id().unwrap().to_owned();
    // A full flow too, so a real code passes through the stack.
    c.request_code(request("78")).await.unwrap();
    let code = sb.outbox().last_code("78").unwrap();
    let wrong = if code == "000000" { "999999" } else { "000000" };
    let _ = c.verify_code(verify("78", wrong)).await.unwrap_err();
    c.verify_code(verify("78", &code)).await.unwrap();
    let text = out.text();
    let span_line = text
        .lines()
        .find(|l| {
            l.contains("request_code")
                && l.contains("close")
                && l.contains("phone_number_id=\"77\"")
        })
        .unwrap_or_else(|| panic!("no request_code span close in:\n{text}"));
    assert!(
        span_line.contains(&format!("fbtrace_id=\"{trace}\""))
            || span_line.contains(&format!("fbtrace_id={trace}")),
        "{span_line}"
    );
    assert!(
        span_line.contains("http.response.status_code=403"),
        "{span_line}"
    );
    assert!(span_line.contains("error.code=200"), "{span_line}");
    assert!(text.contains("verify_code"), "verify spans recorded");
    assert!(!text.contains(FAKE_TOKEN), "token in trace output");
    assert!(!text.contains(&code), "verification code in trace output");
    assert!(!text.contains(wrong), "wrong code in trace output");
}

#[tokio::test]
async fn debug_of_every_config_handle_and_error_shows_no_secret() {
    let sb = sandbox(SandboxConfig::default()).await;
    let cfg = client_config(sb.base_url());
    let builder = wa_verify_core::Client::builder()
        .config(cfg.clone())
        .token(token());
    let c = client(cfg.clone());
    c.request_code(request("31")).await.unwrap();
    let code = sb.outbox().last_code("31").unwrap();
    let verify_op = verify("31", &code);
    let errors = [
        wa_verify_core::Error::invalid_input("x"),
        c.verify_code(verify(
            "31",
            if code == "000000" { "111111" } else { "000000" },
        ))
        .await
        .unwrap_err(),
        "EAA secret"
            .parse::<wa_verify_core::auth::Token>()
            .unwrap_err(),
        format!("{FAKE_TOKEN} ")
            .repeat(2)
            .parse::<wa_verify_core::auth::Token>()
            .unwrap_err(),
    ];
    let mut texts = vec![
        format!("{cfg:?}"),
        format!("{builder:?}"),
        format!("{c:?}"),
        format!("{sb:?}"),
        format!("{:?}", sb.config()),
        format!("{:?} {}", token(), token()),
        format!("{verify_op:?}"),
        format!(
            "{:?} {}",
            code.parse::<wa_verify_core::VerificationCode>().unwrap(),
            code.parse::<wa_verify_core::VerificationCode>().unwrap()
        ),
    ];
    for e in &errors {
        texts.push(format!("{e} {e:?}"));
    }
    for t in &texts {
        assert!(!t.contains(FAKE_TOKEN), "token in {t}");
        assert!(!t.contains(&code), "code in {t}");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn each_attempt_gets_a_child_span_with_the_wait_before_it() {
    let (out, _guard) = capture().await;
    let mut cfg = SandboxConfig::default();
    cfg.number_faults.insert(
        "60".into(),
        wa_verify_sandbox::NumberFault::times(wa_verify_sandbox::FaultKind::Transient500, 2),
    );
    let sb = sandbox(cfg).await;
    let mut ccfg = client_config(sb.base_url());
    ccfg.retry.initial_backoff = std::time::Duration::from_millis(3);
    ccfg.retry.max_backoff = std::time::Duration::from_millis(20);
    let answer = client(ccfg).request_code(request("60")).await.unwrap();
    assert_eq!(answer.attempts(), 3);
    let text = out.text();
    let attempts: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("attempt{") && l.contains("close"))
        .collect();
    assert_eq!(attempts.len(), 3, "{text}");
    assert!(
        attempts[0].contains("attempt=1") && attempts[0].contains("backoff_wait_ms=0"),
        "{}",
        attempts[0]
    );
    assert!(
        attempts[0].contains("http.response.status_code=500"),
        "{}",
        attempts[0]
    );
    assert!(
        attempts[1].contains("attempt=2") && attempts[1].contains("backoff_wait_ms=3"),
        "{}",
        attempts[1]
    );
    assert!(
        attempts[2].contains("attempt=3") && attempts[2].contains("backoff_wait_ms=6"),
        "{}",
        attempts[2]
    );
    assert!(
        attempts.iter().all(|l| l.contains("request_code{")),
        "children of the call span"
    );
    let retries = text
        .lines()
        .filter(|l| l.contains("retrying") && l.contains("reason=\"retryable\""))
        .count();
    assert_eq!(retries, 2, "one event per retry decision saying why");
}
