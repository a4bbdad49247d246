//! Middleware that opens one span per call, named after the operation, and records the
//! outcome on it: attempts, status, Graph error code, `is_transient` and `fbtrace_id`.
//!
//! # Example
//!
//! ```
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use wa_verify_core::trace::TraceLayer;
//! use wa_verify_core::{Error, RequestCode, RequestCodeResponse, Response};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let svc = ServiceBuilder::new()
//!     .layer(TraceLayer::new())
//!     .service(service_fn(|_op: RequestCode| async {
//!         tracing::info!("inside the request_code span");
//!         Ok::<_, Error>(Response::<RequestCodeResponse>::from_parts(
//!             http::StatusCode::OK,
//!             serde_json::from_str(r#"{"success":true}"#).unwrap(),
//!             Default::default(),
//!         ))
//!     }));
//! # let op = RequestCode::new("1".parse()?, Default::default(), Default::default());
//! svc.oneshot(op).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Fields
//!
//! Names follow OpenTelemetry's HTTP conventions where one exists
//! (`http.response.status_code`, `error.type`); see [`fields`]. The token and
//! verification codes are never recorded.

pub mod fields;
pub mod future;

use std::task::{Context, Poll};

use tower::{Layer, Service};

use self::fields::RecordOutcome;
use self::future::ResponseFuture;
use crate::metrics::Metrics;
use crate::operation::{ApiVersion, Operation};

/// Applies [`Trace`]. See the [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct TraceLayer {
    api_version: Option<ApiVersion>,
    enabled: bool,
    metrics: Metrics,
}

impl Default for TraceLayer {
    fn default() -> Self {
        Self {
            api_version: None,
            enabled: true,
            metrics: Metrics::default(),
        }
    }
}

impl TraceLayer {
    /// A layer recording the fields of each call.
    pub fn new() -> Self {
        Self::default()
    }

    /// `false` opens no span (the layer then costs one branch per call).
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Also records each call's duration, attempts and outcome, and the codes it sent,
    /// in `metrics` (see [`metrics`](crate::metrics)).
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Also records the API version on each span.
    #[must_use]
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.api_version = Some(version);
        self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace {
            inner,
            api_version: self.api_version,
            enabled: self.enabled,
            metrics: self.metrics.clone(),
        }
    }
}

/// Opens a span per call. See the [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
    api_version: Option<ApiVersion>,
    enabled: bool,
    metrics: Metrics,
}

impl<S> Trace<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        TraceLayer::new().layer(inner)
    }

    /// A layer.
    pub fn layer() -> TraceLayer {
        TraceLayer::new()
    }

    inner_service_accessors!();
}

impl<S, O> Service<O> for Trace<S>
where
    O: Operation,
    S: Service<O>,
    S::Response: RecordOutcome,
    S::Error: RecordOutcome,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, op: O) -> Self::Future {
        let (op_name, code_method) = (op.name(), op.code_method().map(|m| m.as_str()));
        let span = if self.enabled {
            fields::call_span(&op, self.api_version)
        } else {
            tracing::Span::none()
        };
        let fut = {
            let _entered = span.enter();
            self.inner.call(op)
        };
        let measure = self.metrics.start().map(|start| future::Measure {
            metrics: self.metrics.clone(),
            start,
            operation: op_name,
            code_method,
        });
        ResponseFuture::new(fut, span, measure)
    }
}
