//! [`RedisUrl`]: a Redis URL whose secrets never show, in every form the redis crate
//! accepts. It exists with or without the `redis` feature, so a config naming Redis parses
//! (and is refused clearly) in every build.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A Redis URL whose secrets never appear in `Debug`, `Display`, `Serialize`, logs or
/// errors: the password of `user:pass@`, a lone userinfo (a password for the default
/// user), and the `pass`, `password`, `user` and `username` query parameters, in every form
/// the redis crate accepts (`redis://`, `rediss://`, `redis+unix://`, `unix://`,
/// `valkey://`, `valkeys://`).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL with its password, for connecting only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The URL with every secret replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

/// The schemes the redis crate accepts.
const SCHEMES: [&str; 6] = [
    "redis://",
    "rediss://",
    "redis+unix://",
    "unix://",
    "valkey://",
    "valkeys://",
];

impl FromStr for RedisUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if !SCHEMES.iter().any(|p| s.starts_with(p)) {
            return Err(Error::invalid_input(format!(
                "Redis URL must look like redis://[:password@]host:port[/db] or \
                 redis+unix:///path/to/socket, got {}",
                redact(s)
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

/// Query parameters that carry credentials.
fn is_secret_param(name: &str) -> bool {
    ["pass", "password", "user", "username"]
        .iter()
        .any(|p| name.eq_ignore_ascii_case(p))
}

/// `redis://user:secret@host?password=x` → `redis://user:***@host?password=***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    // Fragments are not part of Redis URLs; whatever follows `#` is dropped from view.
    let rest = rest.split('#').next().unwrap_or("");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://");
    // Userinfo ends at the last `@` before the path (a unix socket path has no userinfo,
    // but an `@` in it is hidden too: better too much than a leak).
    match before_query.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                // A lone userinfo is a password for Redis's default user.
                None => out.push_str("***"),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) if is_secret_param(name) => {
                    out.push_str(name);
                    out.push_str("=***");
                }
                Some(_) => out.push_str(pair),
                // A bare word could be a secret pasted in the wrong place.
                None if pair.is_empty() => {}
                None => out.push_str("***"),
            }
        }
    }
    out
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

/// Writes the redacted form: a config written back out never carries the password
/// (give it again through `REDIS_URL` or the file the deployment keeps it in).
impl Serialize for RedisUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact(&self.0))
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

    /// Every form the redis crate accepts. See: issue 16 (`?pass=` leaked in the warning
    /// log, in `Debug`, in errors and through `Serialize`).
    #[test]
    fn every_url_form_is_redacted() {
        for (url, shown) in [
            (
                "redis+unix:///run/redis.sock?pass=s3cret",
                "redis+unix:///run/redis.sock?pass=***",
            ),
            (
                "unix:///run/redis.sock?db=2&password=s3cret&user=s3cret",
                "unix:///run/redis.sock?db=2&password=***&user=***",
            ),
            (
                "redis://127.0.0.1:6379/0?password=s3cret&protocol=resp3",
                "redis://127.0.0.1:6379/0?password=***&protocol=resp3",
            ),
            (
                "rediss://alice:s3cret@host:6380?username=s3cret",
                "rediss://alice:***@host:6380?username=***",
            ),
            ("valkey://:s3cret@host", "valkey://:***@host"),
            ("redis://host?s3cret", "redis://host?***"),
            ("redis://host#s3cret", "redis://host"),
        ] {
            let u: RedisUrl = url.parse().unwrap();
            let json = serde_json::to_string(&u).unwrap();
            let toml = toml::to_string(&std::collections::BTreeMap::from([("url", &u)])).unwrap();
            for (what, text) in [
                ("Display", u.to_string()),
                ("Debug", format!("{u:?}")),
                ("Serialize (JSON)", json),
                ("Serialize (TOML)", toml),
                ("redacted", u.redacted()),
            ] {
                assert!(!text.contains("s3cret"), "{what} of {shown}: {text}");
            }
            assert_eq!(u.to_string(), shown);
        }
        let e = "http://host?password=s3cret"
            .parse::<RedisUrl>()
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("s3cret"));
    }
}
