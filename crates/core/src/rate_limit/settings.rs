//! Settings of the shared store that exist with or without the `redis` feature, so a
//! config naming Redis parses (and is refused clearly) in every build.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What the store does when Redis fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// Fall back to an in-process store with `quota / replicas` (the default).
    #[default]
    Local,
    /// Fail closed: refuse every call while Redis is down.
    Deny,
    /// Fail open: let every call through while Redis is down. Risky: nothing limits.
    Allow,
}

/// A `redis://` URL whose password never appears in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL with its password, for connecting only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl FromStr for RedisUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|p| s.starts_with(p));
        if !ok {
            return Err(Error::invalid_input(format!(
                "Redis URL must look like redis://[:password@]host:port[/db], got {}",
                redact(s)
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                // A lone userinfo is a password for Redis's default user.
                format!("{scheme}://***@{host}")
            }
        }
        None => url.to_owned(),
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", redact(&self.0))
    }
}

impl Serialize for RedisUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RedisUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        for (url, shown) in [
            (
                "redis://:s3cret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            (
                "redis://s3cret@127.0.0.1:6379",
                "redis://***@127.0.0.1:6379",
            ),
            ("redis://user:s3cret@host:1", "redis://user:***@host:1"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ] {
            let u: RedisUrl = url.parse().unwrap();
            assert_eq!(u.to_string(), shown);
            assert!(!format!("{u:?}").contains("s3cret"));
        }
        let e = "http://:s3cret@x".parse::<RedisUrl>().unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
