//! Shared bench setup: an in-memory HTTP service, operations and the stack over it.

#![allow(dead_code, unreachable_pub)]

use std::future::Ready;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use tower::Service;
use wa_verify_core::config::StackConfig;
use wa_verify_core::graph::RequestBody;
use wa_verify_core::rate_limit::Quota;
use wa_verify_core::{Client, CodeMethod, Error, Language, PhoneNumberId, RequestCode};

/// A fake token for benches.
pub const FAKE_TOKEN: &str = "FAKE-bench-token";

/// Answers every request with a canned `{"success":true}` at once.
#[derive(Clone, Copy, Debug)]
pub struct Canned;

impl Service<http::Request<RequestBody>> for Canned {
    type Response = http::Response<Full<Bytes>>;
    type Error = Error;
    type Future = Ready<Result<Self::Response, Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<RequestBody>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(Full::new(Bytes::from_static(
            b"{\"success\":true}",
        )))))
    }
}

/// A request_code for the i-th of 1024 numbers.
pub fn op(i: u64) -> RequestCode {
    RequestCode::new(
        PhoneNumberId::from(1_000_000_000 + (i & 1023)),
        CodeMethod::Sms,
        Language::default(),
    )
}

/// A quota so large it never binds: the limiter's cost without its waits.
pub fn never_binding() -> Quota {
    // The fastest rate a quota takes (one call per µs), with a burst of 100 s of it: more
    // calls than any bench run makes.
    Quota::new("1000000/s".parse().unwrap(), 100_000_000)
}

/// The full default stack with per-number and global limits that never bind. Dedup is
/// off, so every call measures a send, unless the bench was run with `-- --dedup`.
pub fn stack_config(base: &str) -> StackConfig {
    let mut c = StackConfig::default();
    c.base_url = base.parse().unwrap();
    c.rate_limit.per_number = vec![never_binding()];
    c.rate_limit.global = Some(never_binding());
    c.dedup.enabled = std::env::args().any(|a| a == "--dedup");
    c
}

/// The full stack over the in-memory service.
/// The full stack recording its metrics in `meter`.
pub fn full_stack_metered(meter: &opentelemetry::metrics::Meter) -> Client<Canned> {
    Client::builder()
        .config(stack_config("http://127.0.0.1:1"))
        .token(FAKE_TOKEN.parse().unwrap())
        .meter(meter)
        .build_with_http(Canned)
        .unwrap()
}

pub fn full_stack() -> Client<Canned> {
    Client::builder()
        .config(stack_config("http://127.0.0.1:1"))
        .token(FAKE_TOKEN.parse().unwrap())
        .build_with_http(Canned)
        .unwrap()
}
