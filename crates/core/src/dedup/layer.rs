//! The dedup layer and service: which calls share a send, and how each one begins.

use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::begin::Key;
use super::config::DedupConfig;
use super::future::ResponseFuture;
use super::store::{Begin, BeginFuture, DedupStore};
use crate::error::Error;
use crate::operation::{DedupRole, Operation, Progress};
use crate::response::Response;
use crate::timeout::CarriesDeadline;

/// Applies [`Dedup`]. See the [module docs](super) for an example.
#[derive(Clone, Debug)]
pub struct DedupLayer<St = DedupStore> {
    store: St,
    enabled: bool,
}

impl DedupLayer {
    /// A layer over an in-process store: within this process only.
    pub fn in_memory(config: DedupConfig) -> Self {
        Self {
            enabled: config.enabled,
            store: DedupStore::memory(config),
        }
    }

    /// A layer over `store` (memory, or the Redis store the rate limiter uses).
    pub fn new(store: DedupStore) -> Self {
        Self {
            enabled: store.config().enabled,
            store,
        }
    }
}

impl<S> Layer<S> for DedupLayer {
    type Service = Dedup<S>;

    fn layer(&self, inner: S) -> Dedup<S> {
        Dedup {
            inner,
            store: self.store.clone(),
            enabled: self.enabled,
        }
    }
}

/// Shares one send between concurrent and repeated requests for a number.
/// See the [module docs](super) for an example.
#[derive(Clone, Debug)]
pub struct Dedup<S> {
    inner: S,
    store: DedupStore,
    enabled: bool,
}

impl<S> Dedup<S> {
    /// A layer over `store`.
    pub fn layer(store: DedupStore) -> DedupLayer {
        DedupLayer::new(store)
    }

    inner_service_accessors!();
}

impl<S, O> Service<O> for Dedup<S>
where
    O: Operation,
    S: Service<O, Response = Response<O::Output>, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<O::Output>;
    type Error = Error;
    type Future = ResponseFuture<S, O>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut op: O) -> Self::Future {
        if !self.enabled {
            return ResponseFuture::passthrough(self.inner.call(op));
        }
        match op.dedup() {
            DedupRole::None => return ResponseFuture::passthrough(self.inner.call(op)),
            DedupRole::CheckCode => {
                let key = Key::of(&op);
                return ResponseFuture::checking(self.inner.call(op), self.store.clone(), key);
            }
            DedupRole::SingleFlight | DedupRole::SendCode { .. } => {}
        }
        let progress = Progress::fresh();
        if let Some(c) = op.context_mut() {
            c.progress = Some(progress.clone());
        }
        let deadline = op.deadline();
        // The key is made again on the slow path rather than cloned on the fast one.
        let begin = self.store.begin(Key::of(&op), op.dedup());
        if let BeginFuture::Ready(Begin::Lead(mut lead)) = begin {
            // The common case: this call leads at once. It calls the service that was
            // polled ready (nothing cloned), and its future is built in one place so the
            // inner future is moved as few times as possible.
            lead.watch(progress);
            tracing::debug!("dedup: leading");
            return ResponseFuture::leading(&mut self.inner, op, lead);
        }
        // The inner service is called later, if this call comes to lead.
        let key = Key::of(&op);
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::begin(begin, &self.store, key, inner, op, progress, deadline)
    }
}
