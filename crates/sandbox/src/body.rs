//! Request parameters from any of the places Graph reads them: a JSON, form-urlencoded or
//! multipart body, and the query string.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::HeaderMap;

/// The parameters of one call; body values win over query values.
pub(crate) type Params = HashMap<String, String>;

/// Why a body could not be read, for the 400 answer.
#[derive(Debug)]
pub(crate) struct BadBody(pub(crate) String);

pub(crate) async fn params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<Params, BadBody> {
    let mut out = Params::new();
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace());
    if trimmed.is_some() {
        // curl's `-d` labels JSON as a form; Graph reads it as JSON, so do we.
        let looks_json = body.trim_ascii_start().starts_with(b"{");
        if ct.starts_with("application/json")
            || (looks_json
                && (ct.is_empty() || ct.starts_with("application/x-www-form-urlencoded")))
        {
            json(&body, &mut out)?;
        } else if ct.starts_with("application/x-www-form-urlencoded") || ct.is_empty() {
            form(&body, &mut out);
        } else if ct.starts_with("multipart/form-data") {
            multipart(&ct, headers, body, &mut out).await?;
        } else {
            return Err(BadBody(format!(
                "unsupported Content-Type {ct:?}: use application/json, \
                 application/x-www-form-urlencoded or multipart/form-data"
            )));
        }
    }
    if let Some(q) = query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    Ok(out)
}

fn json(body: &[u8], out: &mut Params) -> Result<(), BadBody> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| BadBody(format!("malformed JSON body: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(BadBody("the JSON body must be an object".into()));
    };
    for (k, v) in map {
        let v = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => other.to_string(),
        };
        out.insert(k, v);
    }
    Ok(())
}

fn form(body: &[u8], out: &mut Params) {
    for (k, v) in form_urlencoded::parse(body) {
        out.insert(k.into_owned(), v.into_owned());
    }
}

async fn multipart(
    ct: &str,
    headers: &HeaderMap,
    body: Bytes,
    out: &mut Params,
) -> Result<(), BadBody> {
    // Parse the boundary from the original header: boundaries are case-sensitive.
    let original = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(ct);
    let boundary = multer::parse_boundary(original)
        .map_err(|e| BadBody(format!("multipart body without a valid boundary: {e}")))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    loop {
        match mp.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let text = field
                    .text()
                    .await
                    .map_err(|e| BadBody(format!("malformed multipart field: {e}")))?;
                out.insert(name, text);
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(BadBody(format!("malformed multipart body: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn reads_every_encoding_and_the_query() {
        let p = params(
            &headers("application/json"),
            None,
            Bytes::from_static(br#"{"code_method":"SMS","language":"en"}"#),
        )
        .await
        .unwrap();
        assert_eq!(p["code_method"], "SMS");
        let p = params(
            &headers("application/x-www-form-urlencoded"),
            Some("language=en_US"),
            Bytes::from_static(b"code_method=VOICE"),
        )
        .await
        .unwrap();
        assert_eq!(
            (p["code_method"].as_str(), p["language"].as_str()),
            ("VOICE", "en_US")
        );
        let body =
            "--XyZ\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\n123456\r\n--XyZ--\r\n";
        let p = params(
            &headers("multipart/form-data; boundary=XyZ"),
            None,
            Bytes::from(body),
        )
        .await
        .unwrap();
        assert_eq!(p["code"], "123456");
        let p = params(
            &HeaderMap::new(),
            Some("code=654321&access_token=t"),
            Bytes::new(),
        )
        .await
        .unwrap();
        assert_eq!(p["code"], "654321");
    }

    #[tokio::test]
    async fn refuses_malformed_bodies() {
        assert!(params(
            &headers("application/json"),
            None,
            Bytes::from_static(b"{\"a\":")
        )
        .await
        .is_err());
        assert!(params(
            &headers("application/json"),
            None,
            Bytes::from_static(b"[1]")
        )
        .await
        .is_err());
        assert!(params(
            &headers("multipart/form-data"),
            None,
            Bytes::from_static(b"x")
        )
        .await
        .is_err());
        assert!(
            params(&headers("text/xml"), None, Bytes::from_static(b"<a/>"))
                .await
                .is_err()
        );
    }
}
