//! The HTTP server: an accept loop over hyper's HTTP/1.1 that faces hostile clients
//! (bounded connections, read timeouts, accept errors that back off, a shutdown with a
//! deadline), and the one thing axum cannot do, closing a connection without an answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::answers::DropConnection;
use crate::api;
use crate::app::App;
use crate::config::ServerConfig;
use crate::outbox::StatsCell;
use crate::slow::HeaderDeadline;

pub(crate) fn router(app: Arc<App>) -> Router {
    // One handler for every method and path, so every answer (404, 405, 413, a bad path
    // encoding) is Graph-shaped and carries a trace id.
    Router::new().fallback(api::dispatch).with_state(app)
}

/// The longest pause after a failed `accept` (at the file-descriptor limit, accepting
/// again at once would only spin).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves until `shutdown` turns true, then lets requests in flight finish for at most
/// the grace period, and closes whatever is still open.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    stats: StatsCell,
    config: ServerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        // Reap finished connections, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        // A connection slot first: past the cap, new clients wait in the OS backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                backoff = Duration::from_millis(5);
                stream
            }
            Err(e) => {
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let router = router.clone();
            async move {
                let Ok(res) = router.oneshot(req).await.map_err(|e: Infallible| e);
                if res.extensions().get::<DropConnection>().is_some() {
                    // An error from the service makes hyper close the connection without
                    // writing a response: the client sees it dropped.
                    return Err(std::io::Error::other("sandbox: connection dropped"));
                }
                Ok(res)
            }
        });
        let io = HeaderDeadline::new(stream, config.header_timeout);
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), svc);
        let conn = graceful.watch(conn);
        let open = stats.connection();
        connections.spawn(async move {
            let _ = conn.await;
            drop(open);
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!(
                open = connections.len(),
                grace_ms = config.shutdown_grace.as_millis() as u64,
                "closing the connections still open after the grace period"
            );
        }
    }
    connections.shutdown().await;
}

pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
