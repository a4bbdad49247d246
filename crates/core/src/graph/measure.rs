//! One attempt's metrics: started when the request is handed on, recorded when its
//! answer is read.

use std::sync::Arc;
use std::time::Instant;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::response::Response;

/// Where a boundary records its attempts, and the host it calls.
#[derive(Debug)]
pub(super) struct AttemptMeter {
    metrics: Metrics,
    /// The base URL's host, OpenTelemetry's `server.address`.
    server: Arc<str>,
}

impl AttemptMeter {
    pub(super) fn new(metrics: Metrics, host: &str) -> Self {
        Self {
            metrics,
            server: Arc::from(host),
        }
    }

    /// An attempt's measure, when metrics are on.
    pub(super) fn start(meter: &Arc<Self>, method: &http::Method) -> Option<AttemptMeasure> {
        meter.metrics.start().map(|start| AttemptMeasure {
            meter: meter.clone(),
            start,
            method: Metrics::method_name(method),
        })
    }
}

/// What an attempt's metrics need when it ends.
pub(crate) struct AttemptMeasure {
    meter: Arc<AttemptMeter>,
    start: Instant,
    method: &'static str,
}

impl AttemptMeasure {
    pub(super) fn record<T>(self, result: &Result<Response<T>, Error>) {
        let result = match result {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => Err(e),
        };
        let m = &*self.meter;
        m.metrics
            .attempt(self.start, self.method, &m.server, result);
    }
}
