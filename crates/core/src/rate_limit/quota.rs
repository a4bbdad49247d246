//! Quotas as operators write them: a rate (`5/min`) and a burst.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::duration;
use crate::error::Error;

/// A rate: `count` calls per `period`, written `2/s`, `5/min`, `10/h` or `10/72h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    count: NonZeroU32,
    period: Duration,
}

impl Rate {
    /// `count` calls per `period`.
    ///
    /// # Errors
    ///
    /// `invalid_input` when `period` is zero.
    pub fn new(count: NonZeroU32, period: Duration) -> Result<Self, Error> {
        if period.is_zero() {
            return Err(Error::invalid_input("rate period must be longer than zero"));
        }
        Ok(Self { count, period })
    }

    /// Calls per period.
    pub fn count(&self) -> NonZeroU32 {
        self.count
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The time between two calls at this rate.
    pub fn interval(&self) -> Duration {
        self.period / self.count.get()
    }
}

impl FromStr for Rate {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::invalid_input(format!(
                "rate must be COUNT/UNIT like 2/s, 5/min, 10/h or 10/72h, got {s:?}"
            ))
        };
        let (count, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: NonZeroU32 = count.trim().parse().map_err(|_| bad())?;
        let unit = unit.trim();
        let period = match unit {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86400),
            _ if unit.starts_with(|c: char| c.is_ascii_digit()) => {
                duration::parse(unit).map_err(|_| bad())?
            }
            _ => return Err(bad()),
        };
        Rate::new(count, period).map_err(|_| bad())
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 if self.period.subsec_nanos() == 0 => "s".to_owned(),
            60 if self.period.subsec_nanos() == 0 => "min".to_owned(),
            3600 if self.period.subsec_nanos() == 0 => "h".to_owned(),
            86400 if self.period.subsec_nanos() == 0 => "d".to_owned(),
            _ => duration::format(self.period),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A GCRA quota: a [`Rate`] plus a burst (how many calls may go at once after a pause).
///
/// ```
/// use wa_verify_core::rate_limit::Quota;
/// let q = Quota::new("1/min".parse()?, 3);
/// assert_eq!(q.burst().get(), 3);
/// # Ok::<(), wa_verify_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// The sustained rate.
    pub rate: Rate,
    /// The burst; defaults to the rate's count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    burst: Option<NonZeroU32>,
}

impl Quota {
    /// A quota of `rate` with `burst` (0 means the rate's count).
    pub fn new(rate: Rate, burst: u32) -> Self {
        Self {
            rate,
            burst: NonZeroU32::new(burst),
        }
    }

    /// The burst.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst.unwrap_or(self.rate.count)
    }

    pub(crate) fn to_governor(self) -> governor::Quota {
        // A sub-nanosecond interval cannot come from a `Rate` (count is u32, period ≥ 1 ns
        // per call), but governor refuses zero, so clamp.
        let interval = self.rate.interval().max(Duration::from_nanos(1));
        governor::Quota::with_period(interval)
            .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MAX))
            .allow_burst(self.burst())
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} burst {}", self.rate, self.burst())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        let r: Rate = "2/s".parse().unwrap();
        assert_eq!((r.count().get(), r.period()), (2, Duration::from_secs(1)));
        assert_eq!(
            "5/min".parse::<Rate>().unwrap().interval(),
            Duration::from_secs(12)
        );
        assert_eq!(
            "10/h".parse::<Rate>().unwrap().period(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            "10/72h".parse::<Rate>().unwrap().period(),
            Duration::from_secs(72 * 3600)
        );
        for bad in ["", "5", "0/s", "-1/s", "5/week", "x/s", "5/0s"] {
            let e = bad.parse::<Rate>().unwrap_err().to_string();
            assert!(e.contains("2/s, 5/min"), "{bad}: {e}");
        }
    }

    #[test]
    fn displays_round_trip() {
        for r in ["2/s", "5/min", "10/h", "10/72h", "3/d"] {
            assert_eq!(r.parse::<Rate>().unwrap().to_string(), r);
        }
    }

    #[test]
    fn burst_defaults_to_count() {
        assert_eq!(Quota::new("80/s".parse().unwrap(), 0).burst().get(), 80);
        assert_eq!(Quota::new("1/min".parse().unwrap(), 3).burst().get(), 3);
    }

    #[test]
    fn quota_from_toml() {
        #[derive(Deserialize)]
        struct T {
            q: Quota,
        }
        let t: T = toml::from_str("q = { rate = \"1/min\", burst = 3 }").unwrap();
        assert_eq!(t.q, Quota::new("1/min".parse().unwrap(), 3));
    }
}
