//! A client built and used in a process whose rustls has both crypto providers and no
//! process-level default: it must neither panic nor install one. See: issue 16.

use wa_verify_core::{Client, CodeMethod, RequestCode};
use wa_verify_sandbox::Sandbox;

#[tokio::test(flavor = "current_thread")]
async fn a_client_builds_and_calls_when_rustls_has_both_providers() {
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "the test starts with no process default, as an app with both providers does"
    );
    let sandbox = Sandbox::builder().start().await.expect("sandbox");
    let client = Client::builder()
        .base_url(sandbox.base_url().parse().unwrap())
        .token(sandbox.token().parse().unwrap())
        .build()
        .expect("no panic, no error: the transport names its provider");
    let op = RequestCode::new(
        "1234567890".parse().unwrap(),
        CodeMethod::Sms,
        "en_US".parse().unwrap(),
    );
    let answer = client.request_code(op).await.expect("sent through the client");
    assert!(answer.success);
    assert_eq!(sandbox.outbox().len(), 1);
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "the library left the process default to the application"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_application_can_pass_its_own_provider() {
    let sandbox = Sandbox::builder().start().await.expect("sandbox");
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = Client::builder()
        .base_url(sandbox.base_url().parse().unwrap())
        .token(sandbox.token().parse().unwrap())
        .crypto_provider(provider)
        .build()
        .expect("built with aws-lc-rs");
    let op = RequestCode::new(
        "1234567890".parse().unwrap(),
        CodeMethod::Voice,
        "en".parse().unwrap(),
    );
    assert!(client.request_code(op).await.expect("sent").success);
}
