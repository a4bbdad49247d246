//! What a store enforces: quotas per kind of call, the app's quota, the wrong-code guard
//! and the registration budget, each within bounds both stores represent exactly.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::quota::Quota;
use super::store::QuotaClass;
use crate::error::{Error, REGISTRATION_BLOCK};

/// The longest span any limit may cover: a quota's interval × burst, a window, a cooldown
/// (ten years, [`duration::MAX`](crate::duration::MAX)).
pub const MAX_SPAN: Duration = crate::duration::MAX;

/// How long a number (or the app) cools down after a throttle that gave no wait hint.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(600);

/// The most per-number quotas one kind of call may have: a check decides them all before
/// it takes any, on the stack.
pub const MAX_QUOTAS: usize = 8;

/// At most `max` events in a moving `window` (the wrong-code guard, the registration
/// budget). In config: `{ max = 5, window = "10m" }`, or `"off"` where the guard may be
/// turned off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimit {
    max: NonZeroU32,
    window: Duration,
}

impl WindowLimit {
    /// At most `max` events in `window`.
    ///
    /// # Errors
    ///
    /// `invalid_input` for a `max` of 0 (turn a guard off with `"off"`, never a zero), or a
    /// window that is zero or longer than [`MAX_SPAN`].
    pub fn new(max: u32, window: Duration) -> Result<Self, Error> {
        let max = NonZeroU32::new(max).ok_or_else(|| {
            Error::invalid_input(
                "max must be at least 1; to turn a guard off, write \"off\" instead of a table",
            )
        })?;
        if window.is_zero() || window > MAX_SPAN {
            return Err(Error::invalid_input(format!(
                "window must be longer than zero and at most 3650d, got {}",
                crate::duration::format(window)
            )));
        }
        Ok(Self { max, window })
    }

    /// The most events in any window.
    pub fn max(&self) -> u32 {
        self.max.get()
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

impl fmt::Display for WindowLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {}",
            self.max,
            crate::duration::format(self.window)
        )
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowTable {
    max: u32,
    #[serde(with = "crate::duration")]
    window: Duration,
}

impl Serialize for WindowLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WindowTable {
            max: self.max(),
            window: self.window,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for WindowLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = WindowTable::deserialize(d)?;
        WindowLimit::new(t.max, t.window).map_err(serde::de::Error::custom)
    }
}

/// `Option<WindowLimit>` in config: a table, or `"off"`.
pub(crate) mod window_or_off {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::WindowLimit;

    pub(crate) fn serialize<S: Serializer>(
        w: &Option<WindowLimit>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match w {
            Some(w) => w.serialize(s),
            None => s.serialize_str("off"),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<WindowLimit>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Table(toml::Table),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) if s.eq_ignore_ascii_case("off") => Ok(None),
            Raw::Text(s) => Err(serde::de::Error::custom(format!(
                "expected \"off\" or a table like {{ max = 5, window = \"10m\" }}, got {s:?}"
            ))),
            Raw::Table(t) => toml::Value::Table(t)
                .try_into::<WindowLimit>()
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Every limit a store enforces. Each kind of call has its own budget: sending codes
/// (`per_number`), checking them (`verify_per_number`, plus the wrong-code guard) and
/// registration never share one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// GCRA quotas every number's `request_code` calls must satisfy at once.
    pub per_number: Vec<Quota>,
    /// GCRA quotas every number's `verify_code` calls must satisfy at once (none by
    /// default: the wrong-code guard protects verify_code).
    pub verify_per_number: Vec<Quota>,
    /// The app-level GCRA quota over every call.
    pub global: Option<Quota>,
    /// GCRA quotas every WhatsApp Business Account's calls (of any kind) must satisfy
    /// (none by default; a call's WABA comes from the tenants config).
    pub per_waba: Vec<Quota>,
    /// register/deregister calls per number in a moving window (Meta: 10 per 72 hours).
    pub registration: Option<WindowLimit>,
    /// Wrong codes per number before verify_code pauses until the window passes.
    pub wrong_codes: Option<WindowLimit>,
    /// The longest cooldown recorded, whatever Meta's hint says (registration cooldowns
    /// are never shorter than Meta's 72-hour block).
    pub max_cooldown: Duration,
    /// `enforce` (default) or `shadow`: the quotas (per number, per WABA, global) count
    /// what they would refuse and refuse none of it.
    pub mode: LimitMode,
}

/// Whether the configured quotas refuse calls, or only count what they would refuse.
///
/// In `shadow` mode what protects the number from Meta stays enforced: learned cooldowns
/// (the 133016 block among them), the registration budget and the wrong-code guard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitMode {
    /// Quotas refuse (or make wait) what they do not allow.
    #[default]
    Enforce,
    /// Quotas let everything through; what they would have refused is counted (see
    /// [`StoreTallies`](super::StoreTallies)).
    Shadow,
}

impl Default for Limits {
    /// No quotas; Meta's registration budget (10 per 72 h); 5 wrong codes per 10 minutes;
    /// cooldowns capped at 72 hours.
    fn default() -> Self {
        Self {
            per_number: Vec::new(),
            verify_per_number: Vec::new(),
            global: None,
            per_waba: Vec::new(),
            registration: Some(WindowLimit {
                max: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
                window: REGISTRATION_BLOCK,
            }),
            wrong_codes: Some(WindowLimit {
                max: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
                window: Duration::from_secs(600),
            }),
            max_cooldown: Duration::from_secs(72 * 3600),
            mode: LimitMode::Enforce,
        }
    }
}

impl Limits {
    /// Only these GCRA quotas (request_code per number, and the app's), nothing else
    /// changed from the default.
    pub fn quotas(per_number: &[Quota], global: Option<Quota>) -> Self {
        Self {
            per_number: per_number.to_vec(),
            global,
            ..Self::default()
        }
    }

    /// No limit at all: no quota, budget or guard.
    pub fn none() -> Self {
        Self {
            registration: None,
            wrong_codes: None,
            ..Self::default()
        }
    }

    /// The per-number quotas a class of call must satisfy.
    pub fn per_number_for(&self, class: QuotaClass) -> &[Quota] {
        match class {
            QuotaClass::RequestCode => &self.per_number,
            QuotaClass::VerifyCode => &self.verify_per_number,
            QuotaClass::Registration | QuotaClass::Other => &[],
        }
    }

    /// The longest cooldown recorded for a class of calls: `max_cooldown`, except that
    /// Meta's 72-hour registration block (133016) is never cut short.
    pub fn cooldown_cap(&self, class: QuotaClass) -> Duration {
        match class {
            QuotaClass::Registration => self.max_cooldown.max(REGISTRATION_BLOCK),
            _ => self.max_cooldown,
        }
    }

    /// What a refusal for `scope` says, naming the configured budget where it binds.
    pub(crate) fn refusal_message(&self, scope: super::Scope) -> String {
        match (scope, self.registration) {
            (super::Scope::Registration, Some(budget)) => {
                format!("{} ({budget})", scope.message())
            }
            _ => scope.message().to_owned(),
        }
    }

    /// Checks what the fields' types cannot: at most [`MAX_QUOTAS`] per-number quotas
    /// per kind of call, and a `max_cooldown` within [`MAX_SPAN`].
    ///
    /// # Errors
    ///
    /// `invalid_input` naming the setting.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, quotas) in [
            ("per_number", &self.per_number),
            ("verify_per_number", &self.verify_per_number),
            ("per_waba", &self.per_waba),
        ] {
            if quotas.len() > MAX_QUOTAS {
                return Err(Error::invalid_input(format!(
                    "rate_limit.{name} takes at most {MAX_QUOTAS} quotas, got {}",
                    quotas.len()
                )));
            }
        }
        if self.max_cooldown > MAX_SPAN {
            return Err(Error::invalid_input(format!(
                "rate_limit.max_cooldown must be at most 3650d, got {}",
                crate::duration::format(self.max_cooldown)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct T {
        #[serde(default, with = "window_or_off")]
        w: Option<WindowLimit>,
    }

    /// See: issue 17 (the refusal named a fixed "10 per 72 hours").
    #[test]
    fn the_registration_refusal_names_the_configured_budget() {
        let limits = Limits {
            registration: Some(WindowLimit::new(3, Duration::from_secs(3600)).unwrap()),
            ..Limits::default()
        };
        let message = limits.refusal_message(super::super::Scope::Registration);
        assert!(message.ends_with("(3 per 1h)"), "{message}");
        assert!(!message.contains("10 per"), "{message}");
    }

    #[test]
    fn windows_are_a_table_or_off_never_a_zero() {
        let t: T = toml::from_str("w = { max = 5, window = \"10m\" }").unwrap();
        assert_eq!(
            t.w,
            Some(WindowLimit::new(5, Duration::from_secs(600)).unwrap())
        );
        let t: T = toml::from_str("w = \"off\"").unwrap();
        assert_eq!(t.w, None);
        let e = toml::from_str::<T>("w = { max = 0, window = \"10m\" }").unwrap_err();
        assert!(e.to_string().contains("\"off\""), "{e}");
        let e = toml::from_str::<T>("w = \"none\"").unwrap_err();
        assert!(e.to_string().contains("\"off\""), "{e}");
        let e = toml::from_str::<T>("w = { max = 1, window = \"0s\" }").unwrap_err();
        assert!(e.to_string().contains("longer than zero"), "{e}");
    }
}
