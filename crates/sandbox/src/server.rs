//! The HTTP server: an accept loop over hyper's HTTP/1.1 with graceful shutdown, and the
//! one thing axum cannot do, closing a connection without an answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::api::{self, App, DropConnection};
use crate::outbox::StatsCell;

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/__sandbox/outbox", get(api::outbox))
        .route("/__sandbox/stats", get(api::stats))
        .route("/{version}/{id}/{op}", post(api::api))
        .with_state(app)
}

/// Serves until `shutdown` turns true, then lets in-flight requests finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    stats: StatsCell,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let router = router.clone();
                    async move {
                        let Ok(res) = router.oneshot(req).await.map_err(|e: Infallible| e);
                        if res.extensions().get::<DropConnection>().is_some() {
                            // An error from the service makes hyper close the connection
                            // without writing a response: the client sees it dropped.
                            return Err(std::io::Error::other("sandbox: connection dropped"));
                        }
                        Ok(res)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                let open = stats.connection();
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(open);
                });
            }
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
