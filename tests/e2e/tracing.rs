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

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// A TRACE-level subscriber for this thread, writing span closes with their fields.
pub(crate) fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(out.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (out, guard)
}

#[tokio::test]
async fn a_failing_call_records_the_servers_fbtrace_id_and_no_secret() {
    let (out, _guard) = capture();
    let sb = sandbox(SandboxConfig::from_toml("not_permitted = [\"77\"]").unwrap()).await;
    let c = client(client_config(sb.base_url().as_str()));
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
    let cfg = client_config(sb.base_url().as_str());
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
