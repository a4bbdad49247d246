//! Answers back into typed outputs or a precise [`Error`].

use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{Error, GraphApiError};
use crate::meta::ResponseMeta;
use crate::operation::Succeeded;
use crate::response::Response;

/// Decodes a complete body. Never panics, whatever the bytes.
pub(crate) fn decode<T: DeserializeOwned + Succeeded>(
    status: StatusCode,
    meta: ResponseMeta,
    body: &[u8],
) -> Result<Response<T>, Error> {
    if status.is_success() {
        return match serde_json::from_slice::<T>(body) {
            Ok(output) if output.succeeded() => Ok(Response::new(status, output, meta)),
            Ok(_) => Err(Error::unsuccessful(status, meta)),
            Err(e) => Err(Error::protocol(
                Some(status),
                format!("HTTP {} {}: {e}", status.as_u16(), describe(body)),
                body,
                meta,
            )),
        };
    }
    match GraphApiError::from_body(body) {
        Some(graph) => Err(Error::from_graph(status, graph, meta)),
        None => Err(Error::protocol(
            Some(status),
            format!("HTTP {} {}", status.as_u16(), describe(body)),
            body,
            meta,
        )),
    }
}

fn describe(body: &[u8]) -> &'static str {
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    match start {
        None => "with an empty body",
        Some(b'<') => "with an HTML or XML body instead of JSON",
        Some(b'{') if serde_json::from_slice::<serde_json::Value>(body).is_err() => {
            "with truncated or malformed JSON"
        }
        Some(b'{' | b'[') => "with JSON of an unexpected shape",
        Some(_) => "with a body that is not JSON",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::operation::{RequestCodeResponse, VerifyCodeResponse};

    fn rc(status: u16, body: &str) -> Result<Response<RequestCodeResponse>, Error> {
        decode(
            StatusCode::from_u16(status).unwrap(),
            ResponseMeta::default(),
            body.as_bytes(),
        )
    }

    #[test]
    fn success_and_verify_id() {
        assert!(rc(200, r#"{"success":true}"#).unwrap().output().success);
        let v: Response<VerifyCodeResponse> = decode(
            StatusCode::OK,
            ResponseMeta::default(),
            br#"{"success":true,"id":"123","extra":1}"#,
        )
        .unwrap();
        assert_eq!(v.output().id.as_deref(), Some("123"));
    }

    #[test]
    fn success_false_is_unsuccessful() {
        assert_eq!(
            rc(200, r#"{"success":false}"#).unwrap_err().kind(),
            ErrorKind::Unsuccessful
        );
    }

    #[test]
    fn unreadable_answers_are_protocol_errors_keeping_status_and_snippet() {
        for (status, body, what) in [
            (200, "", "empty"),
            (200, "{\"succ", "truncated"),
            (200, "{\"ok\":1}", "unexpected shape"),
            (502, "<html><body>Bad gateway</body></html>", "HTML"),
            (500, "", "empty"),
            (429, "{\"error\":", "truncated"),
        ] {
            let e = rc(status, body).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{body}");
            assert_eq!(e.status().unwrap().as_u16(), status);
            assert!(e.to_string().contains(what), "{e}");
            assert_eq!(e.body_snippet(), Some(body));
        }
        let long = "x".repeat(1000);
        assert_eq!(
            rc(500, &long).unwrap_err().body_snippet().unwrap().len(),
            200
        );
    }

    #[test]
    fn graph_error_answers_keep_the_body() {
        let e = rc(
            400,
            r#"{"error":{"message":"Verify code error","type":"OAuthException","code":136025,"error_subcode":2388093,"fbtrace_id":"T"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WrongCode);
        assert_eq!(e.fbtrace_id(), Some("T"));
        assert_eq!(e.graph().unwrap().error_subcode, Some(2388093));
    }

    #[test]
    fn invalid_utf8_never_panics() {
        let e = decode::<RequestCodeResponse>(
            StatusCode::BAD_GATEWAY,
            ResponseMeta::default(),
            &[0xff, 0xfe, b'{'],
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }
}
