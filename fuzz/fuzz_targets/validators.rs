//! Any operator input through every validator and config parser: an answer, never a panic.
//! A config that parses is built into a client whose first check runs (see: issue 16:
//! accepted configs used to panic or fail open there).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower::{service_fn, ServiceExt};
use wa_verify_core::config::{duration, StackConfig};
use wa_verify_core::onboarding::{Pin, Region, Tier};
use wa_verify_core::rate_limit::Rate;
use wa_verify_core::{ApiVersion, CodeMethod, Language, PhoneNumberId, VerificationCode};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = s.parse::<PhoneNumberId>().map(|id| id.key());
    let _ = s.parse::<Language>();
    let _ = s.parse::<CodeMethod>();
    let _ = s.parse::<ApiVersion>();
    let _ = s.parse::<VerificationCode>();
    let _ = s.parse::<Pin>();
    let _ = s.parse::<Tier>();
    let _ = s.parse::<Region>();
    let _ = s.parse::<Rate>();
    let _ = duration::parse(s);
    let _ = s.parse::<wa_verify_core::graph::BaseUrl>();
    let _ = s.parse::<wa_verify_core::auth::Token>();
    let _ = s.parse::<wa_verify_core::rate_limit::RedisUrl>();
    if let Ok(cfg) = StackConfig::from_toml(s) {
        let _ = cfg.retry.policy(cfg.timeouts.deadline);
        first_check(cfg);
    }
    let _ = wa_verify_sandbox::SandboxConfig::from_toml(s);
});

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    })
}

/// Builds the client over an HTTP service that answers 200 at once, and makes one call
/// (the limiter's first check included) with time paused, so nothing waits for real.
fn first_check(mut cfg: StackConfig) {
    // The memory store: Redis would need a server; its limits are validated the same way.
    cfg.rate_limit.store.kind = Default::default();
    let http = service_fn(|_req: http::Request<http_body_util::Full<bytes::Bytes>>| async {
        Ok::<_, wa_verify_core::Error>(http::Response::new(http_body_util::Full::new(
            bytes::Bytes::from_static(b"{\"success\":true}"),
        )))
    });
    let Ok(client) = wa_verify_core::Client::builder()
        .config(cfg)
        .token("FAKE-fuzz-token".parse().unwrap())
        .build_with_http(http)
    else {
        return;
    };
    let op = wa_verify_core::RequestCode::new(
        "1234567890".parse().unwrap(),
        CodeMethod::Sms,
        Language::default(),
    );
    let _ = rt().block_on(client.stack().clone().oneshot(op));
}
