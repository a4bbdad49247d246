//! The sandbox's answers: Graph error bodies, the spec's error for each status, quota and
//! fault answers, each carrying the trace ids every Graph answer has.

use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use crate::app::App;
use crate::faults::{Fault, FaultBody, FaultKind};

/// Marks a response that must not be sent: the server closes the connection instead.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropConnection;

/// The `error` object of a Graph error answer, as the spec's `GraphAPIError` writes it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct GraphError {
    pub(crate) message: String,
    #[serde(rename = "type")]
    pub(crate) error_type: String,
    pub(crate) code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_subcode: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) is_transient: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_user_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_user_msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_data: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fbtrace_id: Option<String>,
}

impl GraphError {
    pub(crate) fn new(message: &str, error_type: &str, code: i64) -> Self {
        Self {
            message: message.to_owned(),
            error_type: error_type.to_owned(),
            code,
            error_subcode: None,
            is_transient: None,
            error_user_title: None,
            error_user_msg: None,
            error_data: None,
            fbtrace_id: None,
        }
    }

    /// The whole body: `{"error": {...}}`.
    pub(crate) fn to_body(&self) -> String {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: &'a GraphError,
        }
        // Strings, numbers and JSON values always serialize.
        serde_json::to_string(&Envelope { error: self }).unwrap_or_default()
    }
}

/// One answer in the making: the response, its status for stats, and an error body still to
/// be written with the trace id.
pub(crate) struct Reply {
    pub(crate) response: Response,
    pub(crate) status: Option<u16>,
    /// An error body still to be written, so it can carry the answer's trace id.
    pub(crate) graph: Option<GraphError>,
}

impl Reply {
    pub(crate) fn ok(body: serde_json::Value) -> Self {
        Self {
            response: Json(body).into_response(),
            status: Some(200),
            graph: None,
        }
    }

    pub(crate) fn error(status: StatusCode, error: GraphError) -> Self {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        Self {
            response,
            status: Some(status.as_u16()),
            graph: Some(error),
        }
    }

    pub(crate) fn raw(response: Response) -> Self {
        Self {
            status: Some(response.status().as_u16()),
            response,
            graph: None,
        }
    }

    pub(crate) fn dropped() -> Self {
        let mut response = Response::new(Body::empty());
        response.extensions_mut().insert(DropConnection);
        Self {
            response,
            status: None,
            graph: None,
        }
    }

    /// Writes the error body with the trace id, and the trace headers every answer has.
    pub(crate) fn finish(self, trace: &str) -> Response {
        let Reply {
            mut response,
            graph,
            ..
        } = self;
        if response.extensions().get::<DropConnection>().is_some() {
            return response;
        }
        if let Some(mut graph) = graph {
            graph.fbtrace_id = Some(trace.to_owned());
            *response.body_mut() = Body::from(graph.to_body());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Ok(v) = HeaderValue::from_str(trace) {
            let h = response.headers_mut();
            h.insert("x-fb-trace-id", v.clone());
            h.insert("x-fb-request-id", v);
        }
        response
    }
}

pub(crate) fn graph_error(
    message: &str,
    kind: &str,
    code: i64,
    subcode: Option<i64>,
    transient: Option<bool>,
) -> GraphError {
    let mut e = GraphError::new(message, kind, code);
    e.error_subcode = subcode;
    e.is_transient = transient;
    e
}

pub(crate) fn bad_param(message: impl AsRef<str>) -> Reply {
    Reply::error(
        StatusCode::BAD_REQUEST,
        graph_error(
            &format!("(#100) {}", message.as_ref()),
            "OAuthException",
            100,
            None,
            None,
        ),
    )
}

/// 404 for a path Graph does not know.
pub(crate) fn not_found(path: &str) -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        graph_error(
            &format!("Unknown path components: {path}"),
            "OAuthException",
            2500,
            None,
            None,
        ),
    )
}

/// 405 for a method the path does not take.
pub(crate) fn method_not_allowed(method: &http::Method) -> Reply {
    Reply::error(
        StatusCode::METHOD_NOT_ALLOWED,
        graph_error(
            &format!(
                "Unsupported {} request",
                method.as_str().to_ascii_lowercase()
            ),
            "GraphMethodException",
            100,
            None,
            None,
        ),
    )
}

/// 413 for a body past the cap; the connection closes after it.
pub(crate) fn too_large(limit: usize) -> Reply {
    let mut r = Reply::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        graph_error(
            &format!("(#100) The request body is larger than {limit} bytes"),
            "OAuthException",
            100,
            None,
            None,
        ),
    );
    r.response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// 408 for a body that did not arrive in time; the connection closes after it.
pub(crate) fn body_timeout(after: Duration) -> Reply {
    let mut r = Reply::error(
        StatusCode::REQUEST_TIMEOUT,
        graph_error(
            &format!(
                "(#100) The request body did not arrive within {}",
                crate::units::format_duration(after)
            ),
            "OAuthException",
            100,
            None,
            Some(true),
        ),
    );
    r.response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

pub(crate) fn usage_headers(reply: &mut Reply, id: &str, wait: Duration) {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let minutes = secs.div_ceil(60).max(1);
    let h = reply.response.headers_mut();
    h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    let usage = format!(
        r#"{{"{id}":[{{"type":"whatsapp_business_api","call_count":100,"total_cputime":0,"total_time":0,"estimated_time_to_regain_access":{minutes}}}]}}"#
    );
    if let Ok(v) = HeaderValue::from_str(&usage) {
        h.insert("x-business-use-case-usage", v);
    }
}

pub(crate) fn app_limited(id: &str, wait: Duration) -> Reply {
    let mut r = spec_reply(429);
    usage_headers(&mut r, id, wait);
    r
}

/// Meta's WABA-level throttle: 429 with code 80007 and a usage header keyed by the WABA.
pub(crate) fn waba_limited(waba: &str, wait: Duration) -> Reply {
    let mut r = Reply::error(
        StatusCode::TOO_MANY_REQUESTS,
        graph_error(
            "(#80007) Rate limit issues",
            "OAuthException",
            80_007,
            None,
            Some(true),
        ),
    );
    usage_headers(&mut r, waba, wait);
    r
}

pub(crate) fn fault_reply(app: &App, fault: Fault) -> Reply {
    match fault.kind {
        FaultKind::Answer => answer(fault.status, fault.body),
        FaultKind::Transient500 => Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            graph_error(
                "An unexpected error occurred. Please retry your request later.",
                "GraphMethodException",
                2,
                None,
                Some(true),
            ),
        ),
        FaultKind::Server500 => Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            graph_error("An unknown error occurred", "OAuthException", 1, None, None),
        ),
        FaultKind::BadGateway502 => Reply::error(
            StatusCode::BAD_GATEWAY,
            graph_error("An unknown error occurred", "OAuthException", 1, None, None),
        ),
        FaultKind::GatewayTimeout504 => Reply::error(
            StatusCode::GATEWAY_TIMEOUT,
            graph_error(
                "Service temporarily unavailable",
                "OAuthException",
                2,
                None,
                None,
            ),
        ),
        FaultKind::Unavailable503 => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                "<html><head><title>503 Service Unavailable</title></head><body>Service Unavailable</body></html>",
            )
                .into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            Reply::raw(response)
        }
        FaultKind::RateLimited429 => {
            let mut r = spec_reply(429);
            r.response.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from(app.config.faults.retry_after_secs),
            );
            r
        }
        FaultKind::TruncatedBody => {
            let mut response = Response::new(cut_short(b"{\"succ"));
            let h = response.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(CONTENT_LENGTH, HeaderValue::from_static("16"));
            Reply::raw(response)
        }
        FaultKind::OversizedBody => {
            let mut body = String::with_capacity(1 << 20);
            body.push_str("{\"success\":true,\"padding\":\"");
            body.extend(std::iter::repeat_n('x', 1 << 20));
            body.push_str("\"}");
            let mut response = Response::new(Body::from(body));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Reply::raw(response)
        }
        FaultKind::DropBeforeSend | FaultKind::DropAfterSend | FaultKind::Hang => Reply::dropped(),
        FaultKind::Latency => Reply::dropped(),
    }
}

/// The spec's error body for a status: type, code, and `is_transient` where it gives one.
pub(crate) fn spec_error(status: u16) -> GraphError {
    match status {
        401 => graph_error(
            "Invalid OAuth access token",
            "OAuthException",
            190,
            Some(463),
            None,
        ),
        403 => graph_error(
            "Your app doesn't have permission to access this phone number",
            "OAuthException",
            200,
            Some(1_349_174),
            None,
        ),
        404 => graph_error(
            "Phone number not found",
            "GraphMethodException",
            803,
            None,
            None,
        ),
        422 => graph_error(
            "Phone number is not eligible for verification at this time",
            "GraphMethodException",
            100,
            None,
            None,
        ),
        429 => graph_error(
            "Application request limit reached",
            "OAuthException",
            4,
            Some(2_446_079),
            Some(true),
        ),
        500 => graph_error(
            "An unexpected error occurred. Please retry your request",
            "GraphMethodException",
            2,
            None,
            Some(true),
        ),
        502 | 504 => graph_error("An unknown error occurred", "OAuthException", 1, None, None),
        503 => graph_error(
            "Service temporarily unavailable",
            "OAuthException",
            2,
            None,
            None,
        ),
        _ => graph_error("Invalid parameter", "OAuthException", 100, None, None),
    }
}

/// A body that sends `head`, then breaks off: the connection dies mid-answer.
fn cut_short(head: &'static [u8]) -> Body {
    use futures_util::StreamExt;
    let head = futures_util::stream::once(async move { Ok(Bytes::from_static(head)) });
    let cut = futures_util::stream::once(async {
        // Pending once, so hyper flushes the head and first bytes before the cut.
        tokio::task::yield_now().await;
        Err::<Bytes, _>(std::io::Error::other("sandbox: truncated body"))
    });
    Body::from_stream(head.chain(cut))
}

/// The spec's error answer for a status.
pub(crate) fn spec_reply(status: u16) -> Reply {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    Reply::error(code, spec_error(status))
}

/// An `answer` fault: `status` with the chosen body.
pub(crate) fn answer(status: u16, body: FaultBody) -> Reply {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let raw = |content_type: &'static str, body: Body| {
        let mut response = Response::new(body);
        *response.status_mut() = code;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Reply::raw(response)
    };
    match body {
        FaultBody::Graph => Reply::error(code, spec_error(status)),
        FaultBody::Html => raw(
            "text/html",
            Body::from("<html><body><h1>Error</h1>An error occurred.</body></html>"),
        ),
        FaultBody::Empty => raw("application/json", Body::empty()),
        FaultBody::Truncated => {
            let mut r = raw("application/json", cut_short(b"{\"error\":{\"mess"));
            r.response
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from_static("64"));
            r
        }
    }
}
