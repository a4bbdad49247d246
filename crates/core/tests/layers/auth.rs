use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use wa_verify_core::auth::{AuthLayer, Token, TokenFuture, TokenProvider};
use wa_verify_core::Error;

fn echo() -> impl tower::Service<
    http::Request<Full<Bytes>>,
    Response = String,
    Error = Error,
    Future = impl Send,
> + Clone {
    service_fn(|req: http::Request<Full<Bytes>>| async move {
        Ok::<_, Error>(req.headers()["authorization"].to_str().unwrap().to_owned())
    })
}

#[tokio::test]
async fn static_token_is_sent_as_a_sensitive_bearer_header() {
    let svc = ServiceBuilder::new()
        .layer(AuthLayer::new("FAKE-a".parse().unwrap()))
        .service(echo());
    assert_eq!(
        svc.oneshot(http::Request::new(Full::default()))
            .await
            .unwrap(),
        "Bearer FAKE-a"
    );
}

struct Rotating(Arc<AtomicU32>);

impl TokenProvider for Rotating {
    fn token(&self) -> TokenFuture {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { format!("FAKE-{n}").parse::<Token>() })
    }
}

#[tokio::test]
async fn a_provider_is_asked_on_every_request() {
    let svc = ServiceBuilder::new()
        .layer(AuthLayer::from_provider(Rotating(Arc::default())))
        .service(echo());
    assert_eq!(
        svc.clone()
            .oneshot(http::Request::new(Full::default()))
            .await
            .unwrap(),
        "Bearer FAKE-0"
    );
    assert_eq!(
        svc.oneshot(http::Request::new(Full::default()))
            .await
            .unwrap(),
        "Bearer FAKE-1"
    );
}

struct Failing;

impl TokenProvider for Failing {
    fn token(&self) -> TokenFuture {
        Box::pin(async { Err(Error::invalid_input("vault unreachable")) })
    }
}

#[tokio::test]
async fn a_failing_provider_sends_nothing() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let svc = ServiceBuilder::new()
        .layer(AuthLayer::from_provider(Failing))
        .service(service_fn(move |_: http::Request<Full<Bytes>>| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Error>(()) }
        }));
    let e = svc
        .oneshot(http::Request::new(Full::default()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("vault unreachable"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
