//! Any status, headers and body through the Graph boundary: a typed outcome, never a panic.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::{service_fn, ServiceExt};
use wa_verify_core::graph::Graph;
use wa_verify_core::{CodeMethod, Error, Language, RequestCode};

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let split = usize::from(data[2]).min(data.len() - 3);
    let (headers, body) = data[3..].split_at(split);
    let mut res = http::Response::new(Full::new(Bytes::copy_from_slice(body)));
    *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
    // Header lines "name:value" separated by newlines, as far as they are valid.
    for line in headers.split(|b| *b == b'\n') {
        if let Some(i) = line.iter().position(|b| *b == b':') {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(&line[..i]),
                http::HeaderValue::from_bytes(&line[i + 1..]),
            ) {
                res.headers_mut().append(n, v);
            }
        }
    }
    let res = std::cell::RefCell::new(Some(res));
    let http = service_fn(move |_req: http::Request<Full<Bytes>>| {
        let r = res.borrow_mut().take();
        async move { r.ok_or_else(|| Error::invalid_input("used")) }
    });
    let graph = Graph::new(http, "http://127.0.0.1:1".parse().unwrap());
    let op = RequestCode::new("1".parse().unwrap(), CodeMethod::Sms, Language::default());
    if let Err(e) = rt().block_on(graph.oneshot(op)) {
        let _ = (e.kind(), e.to_string(), format!("{e:?}"), e.retry_after(), e.fbtrace_id());
    }
});
