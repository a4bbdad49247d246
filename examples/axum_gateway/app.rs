//! The gateway's routes, apart from `main` so the end-to-end tests call the same router
//! in-process (`tests/e2e/cli.rs` includes this file).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{routing::post, Json, Router};
use serde_json::json;
use wa_verify_core::{Client, CodeMethod, Error, ErrorKind, RequestCode};

/// `POST /numbers/{id}/verification-code`, calling the shared stack from handler state.
pub(crate) fn router(client: Client) -> Router {
    Router::new()
        .route("/numbers/{id}/verification-code", post(request_code))
        .with_state(client)
}

async fn request_code(State(client): State<Client>, Path(id): Path<String>) -> Response {
    let op = match id.parse() {
        Ok(id) => RequestCode::new(id, CodeMethod::Sms, Default::default()),
        Err(e) => return failure(&e),
    };
    match client.request_code(op).await {
        Ok(r) => Json(json!({"sent": true, "fbtrace_id": r.fbtrace_id()})).into_response(),
        Err(e) => failure(&e),
    }
}

/// Our callers' view: their mistakes are 4xx, Meta's trouble is 502/503/504.
fn failure(e: &Error) -> Response {
    let status = match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Unprocessable | ErrorKind::WrongCode => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    let body = json!({"error": {"kind": e.kind().as_str(), "message": e.to_string(), "fbtrace_id": e.fbtrace_id()}});
    let mut res = (status, Json(body)).into_response();
    if let Some(wait) = e.retry_after() {
        res.headers_mut()
            .insert(header::RETRY_AFTER, wait.as_secs().max(1).into());
    }
    res
}
