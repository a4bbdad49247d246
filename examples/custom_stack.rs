//! The public layers composed by hand in a `ServiceBuilder`, with settings from TOML.
//!
//! Run it with `cargo run --example custom_stack`. The order is the one `Client` uses:
//! the deadline outside the retry (it covers backoff sleeps), the rate limit inside it
//! (every attempt spends the number's quota), the attempt timeout around one attempt.

use tower::{ServiceBuilder, ServiceExt};
use wa_verify_core::auth::AuthLayer;
use wa_verify_core::config::StackConfig;
use wa_verify_core::graph::GraphLayer;
use wa_verify_core::retry::RetryLayer;
use wa_verify_core::trace::TraceLayer;
use wa_verify_core::transport::Transport;
use wa_verify_core::{CodeMethod, RequestCode};
use wa_verify_sandbox::Sandbox;

const SETTINGS: &str = r#"
    encoding = "form"
    [timeouts]
    attempt = "2s"
    deadline = "10s"
    [retry]
    max_attempts = 3
    [rate_limit]
    per_number = [{ rate = "1/min", burst = 2 }]
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let mut cfg = StackConfig::from_toml(SETTINGS)?;
    cfg.base_url = sandbox.base_url().parse()?;

    let stack = ServiceBuilder::new()
        .layer(TraceLayer::new().api_version(cfg.api_version))
        .layer(cfg.timeouts.deadline_layer())
        .layer(RetryLayer::new(cfg.retry.policy(cfg.timeouts.deadline)?))
        .layer(cfg.rate_limit.layer()?)
        .layer(cfg.timeouts.attempt_layer())
        // The boundary: typed operations above, HTTP below.
        .layer(GraphLayer::new(cfg.base_url.clone()).encoding(cfg.encoding))
        .layer(AuthLayer::new(sandbox.token().parse()?))
        .service(Transport::new(&cfg.transport)?);

    let op = RequestCode::new("1234567890".parse()?, CodeMethod::Voice, "pt_BR".parse()?);
    for i in 1..=3 {
        // The third call is refused locally: the quota allows a burst of two.
        match stack.clone().oneshot(op.clone()).await {
            Ok(r) => println!("call {i}: sent, {} attempt(s)", r.attempts()),
            Err(e) => println!("call {i}: {e}"),
        }
    }
    println!("codes the sandbox sent: {}", sandbox.outbox().len());
    sandbox.shutdown().await;
    Ok(())
}
