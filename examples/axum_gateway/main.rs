//! An axum app exposing `POST /numbers/{id}/verification-code`, calling the shared stack
//! from handler state (the `Client` is `Clone`: no `Buffer`), with errors mapped to HTTP.
//!
//! `cargo run --example axum_gateway` serves on 127.0.0.1:3000 against an in-process
//! sandbox until Ctrl-C; `-- --once` serves on a free port, calls its own route once
//! over real HTTP, prints the answer and exits (CI runs it that way).

mod app;

use wa_verify_core::Client;
use wa_verify_sandbox::Sandbox;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let once = std::env::args().any(|a| a == "--once");
    let sandbox = Sandbox::builder().start().await?;
    let client = Client::builder()
        .base_url(sandbox.base_url().parse()?)
        .token(sandbox.token().parse()?)
        .build()?;
    let listener = tokio::net::TcpListener::bind(if once {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3000"
    })
    .await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app::router(client)).await });
    if !once {
        println!("try: curl -X POST http://{addr}/numbers/1234567890/verification-code");
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }
    // One real HTTP request to our own route, with a plain client.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let req = axum::http::Request::post(format!(
        "http://{addr}/numbers/1234567890/verification-code"
    ))
    .body(http_body_util::Full::new(bytes::Bytes::new()))?;
    let res = http.request(req).await?;
    let status = res.status();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await?
        .to_bytes();
    println!("{} {}", status.as_u16(), String::from_utf8_lossy(&body));
    server.abort();
    if !status.is_success() || sandbox.outbox().len() != 1 {
        return Err(format!("gateway answered {status}").into());
    }
    Ok(())
}
