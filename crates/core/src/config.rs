//! Every layer's settings in one serde config, so deployments tune without recompiling.

/// Durations in config files: `500ms`, `2s`, `1m`, `1h`, or a number of seconds.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::error::Error;

    /// Parses `500ms`, `2s`, `1.5s`, `1m`, `2h`, `1d` (or a bare number of seconds).
    ///
    /// # Errors
    ///
    /// `invalid_input` naming the accepted forms.
    pub fn parse(s: &str) -> Result<Duration, Error> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let scale = match unit.trim() {
            "ms" => 0.001,
            "" | "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            _ => f64::NAN,
        };
        num.parse::<f64>()
            .ok()
            .map(|n| n * scale)
            .filter(|secs| secs.is_finite() && *secs >= 0.0 && *secs < 1e12)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "duration must be a number with a unit like 500ms, 2s, 1m or 1h, got {s:?}"
                ))
            })
    }

    /// Formats a duration the way [`parse`] reads it.
    pub fn format(d: Duration) -> String {
        let ms = d.as_millis();
        if ms % 3_600_000 == 0 && ms > 0 {
            format!("{}h", ms / 3_600_000)
        } else if ms % 60_000 == 0 && ms > 0 {
            format!("{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
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
                assert!(parse(bad).unwrap_err().to_string().contains("500ms"), "{bad}");
            }
        }

        #[test]
        fn formats_round_trip() {
            for d in ["500ms", "2s", "1m", "2h", "0s", "1500ms"] {
                assert_eq!(format(parse(d).unwrap()), d);
            }
        }
    }
}
