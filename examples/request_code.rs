//! The smallest use: start the sandbox in-process, build a `Client`, request a code and
//! verify it with the code the sandbox "sent".
//!
//! Run it with `cargo run --example request_code`; it needs no Meta account.

use wa_verify_core::{Client, CodeMethod, RequestCode, VerifyCode};
use wa_verify_sandbox::Sandbox;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Against Meta you would skip this and keep the default base URL.
    let sandbox = Sandbox::builder().start().await?;

    let client = Client::builder()
        .base_url(sandbox.base_url().parse()?)
        .token(sandbox.token().parse()?)
        .build()?;

    let id = "1234567890".parse()?;
    let sent = client
        .request_code(RequestCode::new(id, CodeMethod::Sms, "en_US".parse()?))
        .await?;
    println!(
        "code sent after {} attempt(s); fbtrace_id {}",
        sent.attempts(),
        sent.fbtrace_id().unwrap_or("-")
    );

    // A person would type the code they received; the sandbox keeps it in its outbox.
    let code = sandbox
        .outbox()
        .last_code("1234567890")
        .ok_or("no code sent")?;
    let verified = client
        .verify_code(VerifyCode::new(id, code.parse()?))
        .await?;
    println!("verified: {:?}", verified.output().id);

    sandbox.shutdown().await;
    Ok(())
}
