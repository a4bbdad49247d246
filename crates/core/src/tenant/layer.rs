//! [`TenantLayer`]: resolves each call's tenant (and its WABA) before anything else
//! happens, so a call no tenant can answer for is refused before any I/O.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::registry::Tenants;
use crate::error::Error;
use crate::operation::Operation;

/// Applies [`ResolveTenant`]: with no tenants configured it passes every call through.
#[derive(Clone, Debug, Default)]
pub struct TenantLayer {
    tenants: Option<Arc<Tenants>>,
}

impl TenantLayer {
    /// A layer over `tenants` (`None`: one token for every call, nothing to resolve).
    pub fn new(tenants: Option<Arc<Tenants>>) -> Self {
        Self { tenants }
    }
}

impl<S> Layer<S> for TenantLayer {
    type Service = ResolveTenant<S>;

    fn layer(&self, inner: S) -> ResolveTenant<S> {
        ResolveTenant {
            inner,
            tenants: self.tenants.clone(),
        }
    }
}

/// Writes each call's tenant and WABA on its context: the tenant it picked, else the
/// number's owner. An unknown tenant, or a number no tenant lists with none picked, is
/// `invalid_input` at once.
#[derive(Clone, Debug)]
pub struct ResolveTenant<S> {
    inner: S,
    tenants: Option<Arc<Tenants>>,
}

impl<S> ResolveTenant<S> {
    inner_service_accessors!();
}

impl<S, O> Service<O> for ResolveTenant<S>
where
    O: Operation,
    S: Service<O, Error = Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut op: O) -> Self::Future {
        let Some(tenants) = &self.tenants else {
            return ResponseFuture::calling(self.inner.call(op));
        };
        let picked = op.context().and_then(|c| c.tenant.clone());
        match tenants.resolve(op.phone_number_id(), picked.as_deref()) {
            Ok(t) => {
                if let Some(c) = op.context_mut() {
                    c.tenant = Some(t.id.clone());
                    c.waba = t.waba;
                }
                ResponseFuture::calling(self.inner.call(op))
            }
            Err(e) => ResponseFuture::refused(e),
        }
    }
}

pin_project! {
    /// The [`ResolveTenant`] response future: the call, or its refusal.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F> {
        Calling { #[pin] fut: F },
        Refused { error: Option<Error> },
    }
}

impl<F> ResponseFuture<F> {
    fn calling(fut: F) -> Self {
        Self {
            state: State::Calling { fut },
        }
    }

    fn refused(error: Error) -> Self {
        Self {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("tenant::ResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<F, T> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Proj::Calling { fut } => fut.poll(cx),
            Proj::Refused { error } => Poll::Ready(Err(error.take().unwrap_or_else(|| {
                Error::invalid_input("tenant::ResponseFuture polled after completion")
            }))),
        }
    }
}
