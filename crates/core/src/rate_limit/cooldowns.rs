//! `[rate_limit.cooldowns]`: how long a throttle that gave no wait hint cools a number
//! down, by Graph code or code and subcode, with defaults from what Meta's blocks last.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::limits::{DEFAULT_COOLDOWN, MAX_SPAN};
use crate::error::GraphCode;

/// How long a number cools down after a throttle that gave no wait hint: the duration for
/// its code and subcode, else for its code, else `default` (`rate_limit.default_cooldown`).
///
/// The table's defaults (each can be overridden, and more codes added):
///
/// | key | cooldown | why |
/// |---|---|---|
/// | `136024/2388367` | 24 h | the request-code volume limit: observed to last hours to a day |
/// | `136024/2388091` | 1 h | "Request code failed … wait 1 hour" (seen to recur for a day) |
/// | `136024` | 1 h | any other request-code throttle |
///
/// A throttle that comes again for the same number and kind of call within one cooldown
/// length after the previous cooldown ended gets twice the previous length, up to
/// `max_cooldown`: asking early is what restarts Meta's blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cooldowns {
    /// The cooldown for a throttle whose code is not in the table.
    pub default: Duration,
    table: BTreeMap<GraphCode, Duration>,
}

impl Default for Cooldowns {
    fn default() -> Self {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        Self {
            default: DEFAULT_COOLDOWN,
            table: BTreeMap::from([
                (GraphCode::code(136_024), hours(1)),
                (GraphCode::with_subcode(136_024, 2_388_091), hours(1)),
                (GraphCode::with_subcode(136_024, 2_388_367), hours(24)),
            ]),
        }
    }
}

impl Cooldowns {
    /// The cooldown for an answer with `code` and `subcode` that gave no wait hint.
    pub fn for_code(&self, code: i64, subcode: Option<i64>) -> Duration {
        subcode
            .and_then(|s| self.table.get(&GraphCode::with_subcode(code, s)))
            .or_else(|| self.table.get(&GraphCode::code(code)))
            .copied()
            .unwrap_or(self.default)
    }

    /// Sets (or adds) the cooldown for `code`.
    pub fn set(&mut self, code: GraphCode, cooldown: Duration) {
        self.table.insert(code, cooldown);
    }

    /// The table, without the default.
    pub fn table(&self) -> impl Iterator<Item = (GraphCode, Duration)> + '_ {
        self.table.iter().map(|(k, v)| (*k, *v))
    }
}

/// The table as TOML writes it: `{ "136024/2388367" = "24h", ... }`. Keys read here are
/// set over the defaults (the others stay).
pub(crate) mod table {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(c: &Cooldowns, s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<String, String> = c
            .table
            .iter()
            .map(|(k, v)| (k.to_string(), crate::duration::format(*v)))
            .collect();
        map.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cooldowns, D::Error> {
        use serde::de::Error as _;
        let map = BTreeMap::<String, String>::deserialize(d)?;
        let mut c = Cooldowns::default();
        for (k, v) in map {
            let code: GraphCode = k.parse().map_err(D::Error::custom)?;
            let wait = crate::duration::parse(&v).map_err(D::Error::custom)?;
            if wait > MAX_SPAN {
                return Err(D::Error::custom(format!(
                    "rate_limit.cooldowns.\"{code}\" must be at most 3650d"
                )));
            }
            c.set(code, wait);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subcode_wins_over_its_code_and_the_default_over_nothing() {
        let c = Cooldowns::default();
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(c.for_code(136_024, Some(2_388_367)), h(24));
        assert_eq!(c.for_code(136_024, Some(2_388_091)), h(1));
        assert_eq!(c.for_code(136_024, Some(7)), h(1));
        assert_eq!(c.for_code(136_024, None), h(1));
        assert_eq!(c.for_code(4, None), DEFAULT_COOLDOWN);
        // A subcode counts only under its code.
        assert_eq!(c.for_code(100, Some(2_388_367)), DEFAULT_COOLDOWN);
    }

    #[test]
    fn keys_parse_strictly() {
        assert_eq!(
            "136024".parse::<GraphCode>().unwrap(),
            GraphCode::code(136_024)
        );
        assert_eq!(
            "136024/2388367".parse::<GraphCode>().unwrap(),
            GraphCode::with_subcode(136_024, 2_388_367)
        );
        for bad in [
            "",
            "/",
            "136024/",
            "x",
            "-1",
            "1/2/3",
            "1 ",
            "99999999999999",
        ] {
            assert!(bad.parse::<GraphCode>().is_err(), "{bad:?}");
        }
    }
}
