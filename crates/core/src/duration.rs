//! Durations as operators write them (`500ms`, `2s`, `1m`, `1h`, `1d`), read and written
//! the same way everywhere: config files, flags, errors and logs.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

use std::fmt;

/// A duration that could not be read: the message says what was wrong and what is
/// accepted. It converts into the crate's [`Error`](crate::Error) as `invalid_input`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidDuration(String);

impl fmt::Display for InvalidDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidDuration {}

/// The longest duration anything takes: ten years. Every state both rate-limit stores
/// hold stays exact within it (governor's nanoseconds, the Redis script's microseconds
/// below 2^53), and no `Instant` arithmetic can overflow.
pub const MAX: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses `500ms`, `2s`, `1.5s`, `1m`, `2h`, `1d` (or a bare number of seconds); the
/// units may also be written `msec`, `sec`, `second(s)`, `min`, `minute(s)`, `hr`,
/// `hour(s)`, `day(s)`. At most 3650 days.
///
/// # Errors
///
/// [`InvalidDuration`] naming the accepted forms.
pub fn parse(s: &str) -> Result<Duration, InvalidDuration> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 0.001,
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        _ => f64::NAN,
    };
    let secs = num.parse::<f64>().ok().map(|n| n * scale);
    match secs {
        Some(secs) if secs.is_finite() && secs >= 0.0 => {
            if secs > MAX.as_secs_f64() {
                return Err(InvalidDuration(format!(
                    "duration must be at most 3650d, got {s:?}"
                )));
            }
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(InvalidDuration(format!(
            "duration must be a number with a unit like 500ms, 2s, 1m, 1h or 1d, got {s:?}"
        ))),
    }
}

/// Parses a timeout: a [`parse`]d duration that is not zero.
///
/// # Errors
///
/// [`InvalidDuration`] for a zero, naming what turns a timeout off instead.
pub fn parse_timeout(s: &str) -> Result<Duration, InvalidDuration> {
    nonzero(parse(s)?, s)
}

fn nonzero(d: Duration, s: &str) -> Result<Duration, InvalidDuration> {
    if d.is_zero() {
        return Err(InvalidDuration(format!(
            "a timeout must be longer than zero (a zero would time out before anything \
             is sent), got {s:?}; write \"off\" where a timeout may be turned off"
        )));
    }
    Ok(d)
}

/// Formats a duration the way [`parse`] reads it, exactly: `2h`, `1m`, `30s`, `2.5s`,
/// `250ms`, `0.5ms`. The one formatter of the crate: config, errors and logs agree.
pub fn format(d: Duration) -> String {
    const H: u128 = 3_600_000_000_000;
    const M: u128 = 60_000_000_000;
    const S: u128 = 1_000_000_000;
    const MS: u128 = 1_000_000;
    let ns = d.as_nanos();
    if ns == 0 {
        "0s".to_owned()
    } else if ns.is_multiple_of(H) {
        format!("{}h", ns / H)
    } else if ns.is_multiple_of(M) {
        format!("{}m", ns / M)
    } else if ns >= S {
        decimal(ns, S, 9, "s")
    } else {
        decimal(ns, MS, 6, "ms")
    }
}

/// A wait for a person or a script: [`format()`], rounded up to the millisecond (never
/// earlier than the wait really is).
pub fn format_wait(d: Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    format(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
}

/// `ns` in `unit`s with up to `digits` decimals, trailing zeros dropped.
fn decimal(ns: u128, unit: u128, digits: usize, suffix: &str) -> String {
    let (whole, frac) = (ns / unit, ns % unit);
    if frac == 0 {
        return format!("{whole}{suffix}");
    }
    let frac = format!("{frac:0digits$}");
    format!("{whole}.{}{suffix}", frac.trim_end_matches('0'))
}

pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Secs(f64),
    }
    match Raw::deserialize(d)? {
        Raw::Text(s) => parse(&s).map_err(serde::de::Error::custom),
        Raw::Secs(n) => parse(&n.to_string()).map_err(serde::de::Error::custom),
    }
}

pub(crate) mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format(*d)),
            None => s.serialize_str("off"),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        super::parse(&s).map(Some).map_err(serde::de::Error::custom)
    }
}

/// An optional timeout: `"off"`, or a duration longer than zero.
pub(crate) mod opt_timeout {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        super::opt_duration::serialize(d, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match super::opt_duration::deserialize(d)? {
            Some(t) if t.is_zero() => Err(serde::de::Error::custom(
                "a timeout must be longer than zero (it would time out before anything is sent); \
                 write \"off\" to turn it off",
            )),
            t => Ok(t),
        }
    }
}

/// A timeout that cannot be turned off: a duration longer than zero.
pub(crate) mod timeout {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        super::serialize(d, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match super::deserialize(d)? {
            t if t.is_zero() => Err(serde::de::Error::custom(
                "a timeout must be longer than zero (it would time out before anything is sent)",
            )),
            t => Ok(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("3").unwrap(), Duration::from_secs(3));
        for bad in ["", "s", "-1s", "1x", "1e400s", "1.2.3s"] {
            assert!(
                parse(bad).unwrap_err().to_string().contains("500ms"),
                "{bad}"
            );
        }
    }

    /// See: issue 16 (huge durations panicked) and issue 18 (one vocabulary).
    #[test]
    fn bounds_and_unit_words() {
        assert_eq!(parse("5second").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("2 minutes").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("3650d").unwrap(), MAX);
        let e = parse("3651d").unwrap_err().to_string();
        assert!(e.contains("at most 3650d"), "{e}");
        let e = parse_timeout("0s").unwrap_err().to_string();
        assert!(
            e.contains("longer than zero") && e.contains("\"off\""),
            "{e}"
        );
        assert_eq!(parse_timeout("2s").unwrap(), Duration::from_secs(2));
    }

    #[test]
    fn formats_round_trip() {
        for d in ["500ms", "2s", "1m", "2h", "0s", "2.5s", "0.5ms", "90s"] {
            assert_eq!(format(parse(d).unwrap()), d);
        }
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_wait(Duration::from_micros(2_400_001)), "2.401s");
    }
}
