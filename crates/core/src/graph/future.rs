//! The [`Graph`](super::Graph) response future.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::StatusCode;
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tracing::Span;

use super::decode::decode;
use super::measure::AttemptMeasure;
use crate::error::Error;
use crate::meta::ResponseMeta;
use crate::operation::{Progress, Succeeded};
use crate::response::Response;

pin_project! {
    /// Sends the request, reads the answer with a size cap and decodes it.
    pub struct ResponseFuture<F, B, T> {
        #[pin]
        state: State<F, B>,
        limit: usize,
        span: Span,
        // Counts an attempt that failed before its request was written (a sending call's
        // dedup leader needs to know).
        progress: Option<Arc<Progress>>,
        measure: Option<AttemptMeasure>,
        _output: PhantomData<fn() -> T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Failed { error: Option<Error> },
        Calling { #[pin] fut: F },
        Reading {
            #[pin]
            body: B,
            buf: Body,
            status: StatusCode,
            meta: Option<ResponseMeta>,
        },
    }
}

impl<F, B, T> ResponseFuture<F, B, T> {
    pub(crate) fn new(
        fut: F,
        limit: usize,
        span: Span,
        progress: Option<Arc<Progress>>,
        measure: Option<AttemptMeasure>,
    ) -> Self {
        Self {
            state: State::Calling { fut },
            limit,
            span,
            progress,
            measure,
            _output: PhantomData,
        }
    }

    pub(crate) fn failed(error: Error) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
            limit: 0,
            span: Span::none(),
            progress: None,
            measure: None,
            _output: PhantomData,
        }
    }
}

impl<F, B, T> std::fmt::Debug for ResponseFuture<F, B, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("graph::ResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<F, E, B, T> Future for ResponseFuture<F, B, T>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<Error>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: DeserializeOwned + Succeeded,
{
    type Output = Result<Response<T>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = ready!(self.as_mut().poll_answer(cx));
        if let Some(m) = self.project().measure.take() {
            m.record(&result);
        }
        Poll::Ready(result)
    }
}

impl<F, E, B, T> ResponseFuture<F, B, T>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<Error>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: DeserializeOwned + Succeeded,
{
    fn poll_answer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Response<T>, Error>> {
        let mut this = self.project();
        let _entered = this.span.enter();
        loop {
            match this.state.as_mut().project() {
                StateProj::Failed { error } => {
                    let e = error.take().unwrap_or_else(|| {
                        Error::invalid_input("graph::ResponseFuture polled after completion")
                    });
                    return Poll::Ready(Err(e));
                }
                StateProj::Calling { fut } => {
                    let res = match ready!(fut.poll(cx)).map_err(Into::into) {
                        Ok(res) => res,
                        Err(e) => {
                            if let (Some(p), false) = (&this.progress, e.may_have_reached_server())
                            {
                                p.unsent();
                            }
                            return Poll::Ready(Err(e));
                        }
                    };
                    let (parts, body) = res.into_parts();
                    this.span
                        .record("http.response.status_code", parts.status.as_u16());
                    let meta = ResponseMeta::read(&parts.headers);
                    let declared = http_body::Body::size_hint(&body).lower();
                    if declared > *this.limit as u64 {
                        // Refuse before reading: the length alone says it is too large.
                        return Poll::Ready(Err(oversized(parts.status, *this.limit, meta)));
                    }
                    this.state.set(State::Reading {
                        body,
                        buf: Body::Empty,
                        status: parts.status,
                        meta: Some(meta),
                    });
                }
                StateProj::Reading {
                    mut body,
                    buf,
                    status,
                    meta,
                } => {
                    // Read frame by frame so an oversized answer stops at the cap.
                    let result = loop {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            None => break Ok(()),
                            Some(Ok(frame)) => {
                                if let Ok(data) = frame.into_data() {
                                    if buf.len() + data.len() > *this.limit {
                                        break Err(None);
                                    }
                                    buf.push(data);
                                }
                            }
                            Some(Err(e)) => {
                                let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                                break Err(Some(e));
                            }
                        }
                    };
                    let meta = meta.take().unwrap_or_default();
                    let status = *status;
                    let buf = std::mem::take(buf).into_bytes();
                    this.state.set(State::Failed { error: None });
                    return Poll::Ready(match result {
                        Ok(()) => decode(status, meta, &buf),
                        Err(None) => Err(oversized(status, *this.limit, meta)),
                        Err(Some(e)) => Err(Error::protocol(
                            Some(status),
                            format!("HTTP {} with a body cut short", status.as_u16()),
                            &buf,
                            meta,
                        )
                        .with_source(e)),
                    });
                }
            }
        }
    }
}

/// The answer's bytes: one frame is kept as is (the common case), more are joined.
#[derive(Default)]
enum Body {
    #[default]
    Empty,
    One(Bytes),
    Many(Vec<u8>),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::One(b) => b.len(),
            Body::Many(v) => v.len(),
        }
    }

    fn push(&mut self, data: Bytes) {
        *self = match std::mem::take(self) {
            Body::Empty => Body::One(data),
            Body::One(first) => {
                let mut v = Vec::with_capacity(first.len() + data.len());
                v.extend_from_slice(&first);
                v.extend_from_slice(&data);
                Body::Many(v)
            }
            Body::Many(mut v) => {
                v.extend_from_slice(&data);
                Body::Many(v)
            }
        };
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::One(b) => b,
            Body::Many(v) => v.into(),
        }
    }
}

fn oversized(status: StatusCode, limit: usize, meta: ResponseMeta) -> Error {
    Error::protocol(
        Some(status),
        format!(
            "HTTP {} with a body larger than the {limit}-byte cap; not read further",
            status.as_u16()
        ),
        b"",
        meta,
    )
}
