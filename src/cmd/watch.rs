//! What the CLI knows when a signal stops a call: whether any attempt may have reached
//! Meta. A thin wrapper over the transport counts the attempts handed to it and those that
//! failed before anything was written.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tower::Service;
use wa_verify_core::graph::RequestBody;
use wa_verify_core::transport::Transport;
use wa_verify_core::Error;

/// Attempts handed to the transport, and those known not to have been sent.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    handed: AtomicU32,
    unsent: AtomicU32,
}

impl Progress {
    /// Whether an attempt may have reached the server (one in flight counts: its
    /// request may have been written).
    pub(crate) fn may_have_reached_server(&self) -> bool {
        self.handed.load(Ordering::SeqCst) > self.unsent.load(Ordering::SeqCst)
    }
}

/// The transport, counting into a [`Progress`].
#[derive(Clone, Debug)]
pub(crate) struct Watched {
    inner: Transport,
    progress: Arc<Progress>,
}

impl Watched {
    pub(crate) fn new(inner: Transport, progress: Arc<Progress>) -> Self {
        Self { inner, progress }
    }
}

impl Service<http::Request<RequestBody>> for Watched {
    type Response = <Transport as Service<http::Request<RequestBody>>>::Response;
    type Error = Error;
    type Future = WatchedFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<RequestBody>) -> WatchedFuture {
        self.progress.handed.fetch_add(1, Ordering::SeqCst);
        WatchedFuture {
            inner: self.inner.call(req),
            progress: self.progress.clone(),
        }
    }
}

/// The [`Watched`] response future.
pub(crate) struct WatchedFuture {
    inner: wa_verify_core::transport::ResponseFuture,
    progress: Arc<Progress>,
}

impl Future for WatchedFuture {
    type Output = <wa_verify_core::transport::ResponseFuture as Future>::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = ready!(Pin::new(&mut this.inner).poll(cx));
        if let Err(e) = &result {
            if !e.may_have_reached_server() {
                this.progress.unsent.fetch_add(1, Ordering::SeqCst);
            }
        }
        Poll::Ready(result)
    }
}
