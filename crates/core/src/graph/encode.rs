//! Request bodies in the three encodings the spec allows, written once to `Bytes`.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use http::HeaderValue;

use crate::error::Error;
use crate::operation::{Field, Operation};

/// The body encoding of a request; the spec allows all three, JSON is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `application/json`.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/form-data`.
    Multipart,
}

impl Encoding {
    /// The short name used in config and on the command line: `json`, `form`, `multipart`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Form => "form",
            Encoding::Multipart => "multipart",
        }
    }
}

impl FromStr for Encoding {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "json" | "application/json" => Ok(Encoding::Json),
            "form" | "application/x-www-form-urlencoded" => Ok(Encoding::Form),
            "multipart" | "multipart/form-data" => Ok(Encoding::Multipart),
            _ => Err(Error::invalid_input(format!(
                "encoding must be json, form or multipart, got {s:?}"
            ))),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const BOUNDARY: &str = "wa-verify-3f9c1d7e5b";

/// Serializes the operation's fields; returns the Content-Type and the body. An operation
/// with no fields (`deregister`) has neither: Meta's spec defines no body for it, real
/// clients send none, and a spec-validating server refuses `{}` (see: issue 16).
pub(crate) fn encode<O: Operation>(encoding: Encoding, op: &O) -> (Option<HeaderValue>, Bytes) {
    let mut fields: Vec<Field<'_>> = Vec::with_capacity(4);
    op.fields(&mut |f| fields.push(f));
    if fields.is_empty() {
        return (None, Bytes::new());
    }
    let (content_type, body) = encode_fields(encoding, &fields);
    (Some(content_type), body)
}

/// A read's fields as its query string (`fields=a%2Cb`).
pub(crate) fn encode_query<O: Operation>(op: &O) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    op.fields(&mut |f| {
        q.append_pair(f.name, f.value);
    });
    q.finish()
}

pub(crate) fn encode_fields(encoding: Encoding, fields: &[Field<'_>]) -> (HeaderValue, Bytes) {
    match encoding {
        Encoding::Json => {
            let mut out = Vec::with_capacity(64);
            out.push(b'{');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_string(&mut out, f.name);
                out.push(b':');
                if f.json {
                    out.extend_from_slice(f.value.as_bytes());
                } else {
                    json_string(&mut out, f.value);
                }
            }
            out.push(b'}');
            (HeaderValue::from_static("application/json"), out.into())
        }
        Encoding::Form => {
            let mut s = form_urlencoded::Serializer::new(String::with_capacity(64));
            for f in fields {
                s.append_pair(f.name, f.value);
            }
            (
                HeaderValue::from_static("application/x-www-form-urlencoded"),
                s.finish().into(),
            )
        }
        Encoding::Multipart => {
            // The boundary must occur in no value; free-form values (backup data) may
            // contain the default one, so lengthen it until it is unique.
            let mut boundary = String::from(BOUNDARY);
            while fields.iter().any(|f| f.value.contains(boundary.as_str())) {
                boundary.push('x');
            }
            let mut out = String::with_capacity(128 * fields.len().max(1));
            for f in fields {
                out.push_str("--");
                out.push_str(&boundary);
                out.push_str("\r\nContent-Disposition: form-data; name=\"");
                out.push_str(f.name);
                out.push_str("\"\r\n\r\n");
                out.push_str(f.value);
                out.push_str("\r\n");
            }
            out.push_str("--");
            out.push_str(&boundary);
            out.push_str("--\r\n");
            let content_type =
                HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
                    .unwrap_or_else(|_| HeaderValue::from_static("multipart/form-data"));
            (content_type, out.into())
        }
    }
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a `str` to a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::{RequestCode, VerifyCode};

    fn request_code() -> RequestCode {
        RequestCode::new(
            "1234567890".parse().unwrap(),
            "voice".parse().unwrap(),
            "pt_BR".parse().unwrap(),
        )
    }

    #[test]
    fn json_body_byte_for_byte() {
        let (ct, body) = encode(Encoding::Json, &request_code());
        assert_eq!(ct.unwrap(), "application/json");
        assert_eq!(&body[..], br#"{"code_method":"VOICE","language":"pt_BR"}"#);
        let verify = VerifyCode::new("1".parse().unwrap(), "012345".parse().unwrap());
        assert_eq!(
            &encode(Encoding::Json, &verify).1[..],
            br#"{"code":"012345"}"#
        );
    }

    #[test]
    fn form_body_byte_for_byte() {
        let (ct, body) = encode(Encoding::Form, &request_code());
        assert_eq!(ct.unwrap(), "application/x-www-form-urlencoded");
        assert_eq!(&body[..], b"code_method=VOICE&language=pt_BR");
    }

    #[test]
    fn multipart_body_byte_for_byte() {
        let (ct, body) = encode(Encoding::Multipart, &request_code());
        assert_eq!(
            ct.unwrap(),
            "multipart/form-data; boundary=wa-verify-3f9c1d7e5b"
        );
        let expected = "--wa-verify-3f9c1d7e5b\r\nContent-Disposition: form-data; name=\"code_method\"\r\n\r\nVOICE\r\n\
                        --wa-verify-3f9c1d7e5b\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\npt_BR\r\n\
                        --wa-verify-3f9c1d7e5b--\r\n";
        assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
    }

    #[test]
    fn escapes_json_and_form_values() {
        let f = [Field::text("x", "a\"b&c=d é")];
        assert_eq!(
            &encode_fields(Encoding::Json, &f).1[..],
            "{\"x\":\"a\\\"b&c=d é\"}".as_bytes()
        );
        assert_eq!(
            &encode_fields(Encoding::Form, &f).1[..],
            b"x=a%22b%26c%3Dd+%C3%A9"
        );
    }

    #[test]
    fn encoding_names() {
        for (s, e) in [
            ("json", Encoding::Json),
            ("FORM", Encoding::Form),
            ("multipart", Encoding::Multipart),
        ] {
            assert_eq!(s.parse::<Encoding>().unwrap(), e);
        }
        assert!("xml"
            .parse::<Encoding>()
            .unwrap_err()
            .to_string()
            .contains("json, form or multipart"));
    }
}

#[cfg(test)]
mod object_tests {
    use super::*;

    #[test]
    fn json_objects_are_nested_in_json_and_text_elsewhere() {
        let f = [
            Field::text("pin", "123456"),
            Field::json("backup", r#"{"password":"p","data":"d"}"#),
        ];
        assert_eq!(
            &encode_fields(Encoding::Json, &f).1[..],
            br#"{"pin":"123456","backup":{"password":"p","data":"d"}}"#
        );
        assert_eq!(
            &encode_fields(Encoding::Form, &f).1[..],
            b"pin=123456&backup=%7B%22password%22%3A%22p%22%2C%22data%22%3A%22d%22%7D"
        );
    }

    #[test]
    fn a_value_containing_the_boundary_gets_a_longer_one() {
        let f = [Field::text("data", "--wa-verify-3f9c1d7e5b--")];
        let (ct, body) = encode_fields(Encoding::Multipart, &f);
        assert_eq!(ct, "multipart/form-data; boundary=wa-verify-3f9c1d7e5bx");
        assert!(std::str::from_utf8(&body)
            .unwrap()
            .ends_with("--wa-verify-3f9c1d7e5bx--\r\n"));
    }
}
