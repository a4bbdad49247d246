//! Durations and quotas as the sandbox's config writes them (`10m`, `{ rate = "1/min" }`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration the config takes: ten years.
const MAX: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses `500ms`, `2s`, `1.5m`, `2h`, `1d` (or a bare number of seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    // Longer unit names first, so `ms` is not read as `s` and `min` not as `m`.
    const UNITS: [(&str, f64); 14] = [
        ("ms", 0.001),
        ("seconds", 1.0),
        ("second", 1.0),
        ("sec", 1.0),
        ("s", 1.0),
        ("minutes", 60.0),
        ("minute", 60.0),
        ("min", 60.0),
        ("m", 60.0),
        ("hours", 3600.0),
        ("hour", 3600.0),
        ("h", 3600.0),
        ("days", 86_400.0),
        ("d", 86_400.0),
    ];
    let text = s.trim();
    let (number, scale) = UNITS
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n.trim_end(), *scale)))
        .unwrap_or((text, 1.0));
    let valid = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let secs = if valid {
        number.parse::<f64>().ok()
    } else {
        None
    }
    .map(|n| n * scale);
    match secs {
        Some(secs) if secs.is_finite() && secs <= MAX.as_secs_f64() => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "duration must be a number with a unit like 500ms, 2s, 1m, 1h or 1d (at most 3650d), got {s:?}"
        )),
    }
}

/// Formats a duration the way [`parse_duration`] reads it.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_owned(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// Serde for a `Duration` written as text.
pub(crate) mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// A quota the sandbox enforces as Meta states its limits: at most `limit` calls in any
/// moving `window`. Written `{ rate = "COUNT/PERIOD", burst = N }`: `COUNT` calls per
/// `PERIOD`, of which up to `burst` (default `COUNT`) at once, that is `burst` calls in any
/// window of `burst` intervals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SandboxQuota {
    count: u32,
    period: Duration,
    burst: u32,
}

impl SandboxQuota {
    /// `count` calls per `period`, `burst` at once (0: `count`).
    ///
    /// # Errors
    ///
    /// When `count` is 0, or `period` is zero or longer than ten years.
    pub fn new(count: u32, period: Duration, burst: u32) -> Result<Self, String> {
        if count == 0 || period.is_zero() || period > MAX {
            return Err(format!(
                "a quota needs a count of at least 1 and a period between 1ms and 3650d, got {count}/{}",
                format_duration(period)
            ));
        }
        let burst = if burst == 0 { count } else { burst };
        Ok(Self {
            count,
            period,
            burst,
        })
    }

    /// The most calls in any window.
    pub fn limit(&self) -> u32 {
        self.burst
    }

    /// The moving window `limit` calls fit in.
    pub fn window(&self) -> Duration {
        (self.period / self.count)
            .saturating_mul(self.burst)
            .min(MAX)
    }
}

impl fmt::Display for SandboxQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, format_duration(self.period))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaText {
    rate: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    burst: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Serialize for SandboxQuota {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        QuotaText {
            rate: self.to_string(),
            burst: if self.burst == self.count {
                0
            } else {
                self.burst
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SandboxQuota {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let q = QuotaText::deserialize(d)?;
        let bad = || {
            format!(
                "rate must be COUNT/UNIT like 2/s, 5/min, 10/h, got {:?}",
                q.rate
            )
        };
        let (count, unit) = q
            .rate
            .split_once('/')
            .ok_or_else(bad)
            .map_err(serde::de::Error::custom)?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(bad()))?;
        let unit = unit.trim();
        let period = if unit.starts_with(|c: char| c.is_ascii_digit()) {
            parse_duration(unit)
        } else {
            parse_duration(&format!("1{unit}"))
        }
        .map_err(serde::de::Error::custom)?;
        SandboxQuota::new(count, period, q.burst).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_quotas() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("3651d").is_err() && parse_duration("x").is_err());
        for d in ["500ms", "2s", "1m", "2h", "0s"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
        #[derive(Deserialize)]
        struct T {
            q: SandboxQuota,
        }
        let q = toml::from_str::<T>("q = { rate = \"1/min\", burst = 3 }")
            .unwrap()
            .q;
        assert_eq!((q.limit(), q.window()), (3, Duration::from_secs(180)));
        let q = toml::from_str::<T>("q = { rate = \"5/h\" }").unwrap().q;
        assert_eq!((q.limit(), q.window()), (5, Duration::from_secs(3600)));
        assert!(toml::from_str::<T>("q = { rate = \"0/s\" }").is_err());
    }
}
