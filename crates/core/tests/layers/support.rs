use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{HeaderMap, StatusCode};
use tokio::time::Instant;
use tower::Service;
use wa_verify_core::{
    CodeMethod, Error, GraphApiError, RequestCode, RequestCodeResponse, Response, ResponseMeta,
};

pub(crate) type Outcome = Result<Response<RequestCodeResponse>, Error>;

/// An inner service answering from a script, recording each request it received and
/// when, so a test sees what every attempt carried. Past the script it answers success,
/// or never (`then_hang`).
#[derive(Clone)]
pub(crate) struct Scripted {
    outcomes: Arc<Mutex<VecDeque<Outcome>>>,
    pub(crate) calls: Arc<Mutex<Vec<(Instant, RequestCode)>>>,
    hang_after: bool,
}

/// The answer of one scripted call: now, or never.
pub(crate) enum Answer {
    Now(Option<Outcome>),
    Never,
}

impl Future for Answer {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Outcome> {
        match self.get_mut() {
            Answer::Now(o) => Poll::Ready(o.take().unwrap_or_else(|| Ok(ok()))),
            Answer::Never => Poll::Pending,
        }
    }
}

impl Scripted {
    pub(crate) fn new(outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        Self {
            outcomes: Arc::new(Mutex::new(outcomes.into_iter().collect())),
            calls: Arc::default(),
            hang_after: false,
        }
    }

    /// Past the script, every call hangs (a request written, no answer).
    pub(crate) fn then_hang(mut self) -> Self {
        self.hang_after = true;
        self
    }

    pub(crate) fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    pub(crate) fn times(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }

    /// Every request received, in order: the operation each attempt carried.
    pub(crate) fn requests(&self) -> Vec<RequestCode> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }
}

impl Service<RequestCode> for Scripted {
    type Response = Response<RequestCodeResponse>;
    type Error = Error;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestCode) -> Self::Future {
        self.calls.lock().unwrap().push((Instant::now(), req));
        match self.outcomes.lock().unwrap().pop_front() {
            Some(next) => Answer::Now(Some(next)),
            None if self.hang_after => Answer::Never,
            None => Answer::Now(None),
        }
    }
}

pub(crate) fn op(id: &str) -> RequestCode {
    RequestCode::new(
        id.parse().unwrap(),
        CodeMethod::Sms,
        "en_US".parse().unwrap(),
    )
}

pub(crate) fn ok() -> Response<RequestCodeResponse> {
    Response::from_parts(
        StatusCode::OK,
        serde_json::from_str(r#"{"success":true}"#).unwrap(),
        ResponseMeta::default(),
    )
}

/// A Graph error answer with optional `is_transient` and headers.
pub(crate) fn graph(
    status: u16,
    code: i64,
    transient: Option<bool>,
    headers: &[(&str, &str)],
) -> Error {
    let mut g = GraphApiError::new("m", "OAuthException", code);
    g.is_transient = transient;
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    Error::from_graph(
        StatusCode::from_u16(status).unwrap(),
        g,
        ResponseMeta::from_headers(&h, SystemTime::now()),
    )
}
