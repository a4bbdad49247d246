//! [`BaseUrl`]: where the Graph API lives; `https`, or plain `http` to loopback only.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::Uri;

use crate::error::Error;

/// Where the Graph API lives: `https://graph.facebook.com` by default.
///
/// `http://` is accepted only for loopback hosts (the sandbox, a test server), so a token
/// never crosses a network in clear text.
#[derive(Clone)]
pub struct BaseUrl {
    text: Arc<str>,
    // Parsed once, so each request only appends its path.
    scheme: Scheme,
    authority: Authority,
    path: Arc<str>,
}

impl PartialEq for BaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for BaseUrl {}

impl BaseUrl {
    /// The URL without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host alone (no user info, no port): OpenTelemetry's `server.address`.
    pub fn host(&self) -> &str {
        self.authority.host()
    }

    /// `{base}/{version}/{id}/{name}` as a `Uri`, without parsing the base again.
    pub(crate) fn join(
        &self,
        version: &str,
        id: &str,
        tail: Option<&str>,
        query: Option<&str>,
    ) -> Result<Uri, Error> {
        let (tail, query) = (tail.unwrap_or(""), query.unwrap_or(""));
        let mut path = String::with_capacity(
            self.path.len() + version.len() + id.len() + tail.len() + query.len() + 4,
        );
        path.push_str(&self.path);
        for part in [version, id, tail] {
            if !part.is_empty() {
                path.push('/');
                path.push_str(part);
            }
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(query);
        }
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query =
            Some(PathAndQuery::try_from(path).map_err(|e| {
                Error::invalid_input(format!("could not build the request path: {e}"))
            })?);
        Uri::from_parts(parts)
            .map_err(|e| Error::invalid_input(format!("could not build the request URI: {e}")))
    }
}

impl Default for BaseUrl {
    fn default() -> Self {
        "https://graph.facebook.com"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid constant URL"))
    }
}

impl FromStr for BaseUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let uri: http::Uri = s.parse().map_err(|_| {
            Error::invalid_input(format!(
                "base URL must be an absolute URL like https://graph.facebook.com, got {s:?}"
            ))
        })?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(Error::invalid_input(format!(
                "base URL must be an absolute URL like https://graph.facebook.com, got {s:?}"
            )));
        };
        if authority.as_str().contains('@') || uri.query().is_some() {
            return Err(Error::invalid_input(
                "base URL must not carry credentials or a query string",
            ));
        }
        match scheme {
            "https" => {}
            "http" if is_loopback(authority.host()) => {}
            "http" => {
                return Err(Error::invalid_input(format!(
                    "http:// is allowed only to loopback hosts (127.0.0.1, ::1, localhost); \
                     use https:// for {}",
                    authority.host()
                )))
            }
            other => {
                return Err(Error::invalid_input(format!(
                    "base URL scheme must be https (or http to a loopback host), got {other}"
                )))
            }
        }
        let path = uri.path().trim_end_matches('/');
        Ok(Self {
            text: format!("{scheme}://{authority}{path}").into(),
            scheme: uri.scheme().cloned().unwrap_or(Scheme::HTTPS),
            authority: authority.clone(),
            path: path.into(),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_allows_https_and_loopback_http_only() {
        for ok in [
            "https://graph.facebook.com",
            "https://graph.facebook.com/",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.3.4.5",
        ] {
            assert!(ok.parse::<BaseUrl>().is_ok(), "{ok}");
        }
        assert_eq!(
            "https://graph.facebook.com/"
                .parse::<BaseUrl>()
                .unwrap()
                .as_str(),
            "https://graph.facebook.com"
        );
        let e = "http://graph.facebook.com".parse::<BaseUrl>().unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        for bad in [
            "ftp://x",
            "graph.facebook.com",
            "",
            "http://10.0.0.1",
            "https://u:p@host",
        ] {
            assert!(bad.parse::<BaseUrl>().is_err(), "{bad}");
        }
        assert!(!"https://u:secret@host"
            .parse::<BaseUrl>()
            .unwrap_err()
            .to_string()
            .contains("secret"));
    }
}
