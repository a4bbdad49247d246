//! Quotas as operators write them: a rate (`5/min`) and a burst.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration;
use crate::error::Error;

/// The shortest interval between two calls a rate may give.
const MIN_INTERVAL: Duration = Duration::from_micros(1);

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
    /// `invalid_input` when `period` is zero or longer than 3650 days, or the rate is
    /// faster than one call per microsecond (what both stores represent exactly).
    pub fn new(count: NonZeroU32, period: Duration) -> Result<Self, Error> {
        if period.is_zero() || period > duration::MAX {
            return Err(Error::invalid_input(format!(
                "rate period must be longer than zero and at most 3650d, got {}",
                duration::format(period)
            )));
        }
        if period / count.get() < MIN_INTERVAL {
            return Err(Error::invalid_input(format!(
                "rate must allow at most one call per microsecond, got {count}/{}",
                duration::format(period)
            )));
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
        // The unit is a duration (`72h`), or a unit of one (`min` is `1min`): the same
        // vocabulary as every duration in config.
        let unit = unit.trim();
        let period = if unit.starts_with(|c: char| c.is_ascii_digit()) {
            duration::parse(unit)
        } else if unit.starts_with(char::is_alphabetic) {
            duration::parse(&format!("1{unit}"))
        } else {
            return Err(bad());
        };
        period
            .map_err(Error::from)
            .and_then(|p| Rate::new(count, p))
            .map_err(|e| {
                Error::invalid_input(format!(
                    "{} (rates look like 2/s, 5/min, 10/h or 10/72h)",
                    e.message()
                ))
            })
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
#[serde(deny_unknown_fields, try_from = "QuotaTable")]
pub struct Quota {
    /// The sustained rate.
    pub rate: Rate,
    /// The burst; defaults to the rate's count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    burst: Option<NonZeroU32>,
}

impl Quota {
    /// A quota of `rate` with `burst` (0 means the rate's count).
    ///
    /// # Panics
    ///
    /// When the interval × burst is longer than [`duration::MAX`]; use
    /// [`try_new`](Self::try_new) for values that come from outside the program.
    pub fn new(rate: Rate, burst: u32) -> Self {
        match Self::try_new(rate, burst) {
            Ok(q) => q,
            Err(e) => panic!("{e}"),
        }
    }

    /// A quota of `rate` with `burst` (0 means the rate's count).
    ///
    /// # Errors
    ///
    /// `invalid_input` when the state it needs, interval × burst, spans more than 3650
    /// days (what both stores represent exactly).
    pub fn try_new(rate: Rate, burst: u32) -> Result<Self, Error> {
        let q = Self {
            rate,
            burst: NonZeroU32::new(burst),
        };
        let span = rate.interval().checked_mul(q.burst().get());
        if span.is_none_or(|s| s > duration::MAX) {
            return Err(Error::invalid_input(format!(
                "quota {rate} with burst {} spans more than 3650d (interval × burst); \
                 lower the burst or raise the rate",
                q.burst()
            )));
        }
        Ok(q)
    }

    /// The burst.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst.unwrap_or(self.rate.count)
    }

    pub(crate) fn to_governor(self) -> governor::Quota {
        // `Rate::new` keeps the interval at 1 µs or more, so governor's non-zero period
        // always holds; the fallback is never taken.
        governor::Quota::with_period(self.rate.interval())
            .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MAX))
            .allow_burst(self.burst())
    }
}

/// A quota as written in config, checked by [`Quota::try_new`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaTable {
    rate: Rate,
    #[serde(default)]
    burst: u32,
}

impl TryFrom<QuotaTable> for Quota {
    type Error = Error;

    fn try_from(t: QuotaTable) -> Result<Self, Error> {
        Quota::try_new(t.rate, t.burst)
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
        // See: issue 16 (a 584-year interval panicked; 1/200000d wrapped the script).
        for bad in ["1/200000d", "1/3651d", "2000000/s"] {
            let e = bad.parse::<Rate>().unwrap_err().to_string();
            assert!(
                e.contains("3650d") || e.contains("microsecond"),
                "{bad}: {e}"
            );
        }
        assert!("1/3650d".parse::<Rate>().is_ok());
        assert!("1000000/s".parse::<Rate>().is_ok());
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

    /// See: issue 16 (interval × burst past what the stores represent).
    #[test]
    fn interval_times_burst_is_bounded() {
        let e = Quota::try_new("1/d".parse().unwrap(), 4000).unwrap_err();
        assert!(e.to_string().contains("3650d"), "{e}");
        assert!(Quota::try_new("1/d".parse().unwrap(), 3650).is_ok());
        #[derive(Debug, Deserialize)]
        struct T {
            #[allow(dead_code)]
            q: Quota,
        }
        let e = toml::from_str::<T>("q = { rate = \"1/d\", burst = 4000 }").unwrap_err();
        assert!(e.to_string().contains("3650d"), "{e}");
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
