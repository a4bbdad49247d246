//! Every layer's settings in one serde config, so deployments tune without recompiling.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::graph::{BaseUrl, Encoding, DEFAULT_BODY_LIMIT};
use crate::operation::ApiVersion;
use crate::rate_limit::{
    window_or_off, AnyStore, Limits, MemoryStore, OnStoreError, Quota, RateLimitLayer, RedisUrl,
    WindowLimit,
};
use crate::retry::{BackoffSettings, RetryPolicy, TpsBudget};
use crate::timeout::{AttemptTimeoutLayer, DeadlineLayer};
use crate::transport::TransportConfig;

/// The whole stack's settings, as read from TOML. Every field has a default.
///
/// ```
/// use wa_verify_core::config::StackConfig;
/// let cfg = StackConfig::from_toml(r#"
///     api_version = "v23.0"
///     [timeouts]
///     attempt = "2s"
///     deadline = "10s"
///     [retry]
///     max_attempts = 3
///     [rate_limit]
///     per_number = [{ rate = "1/min", burst = 3 }, { rate = "5/h" }]
///     global = { rate = "80/s" }
///     max_wait = "500ms"
/// "#)?;
/// assert_eq!(cfg.retry.max_attempts, 3);
/// assert_eq!(cfg.rate_limit.per_number.len(), 2);
/// # Ok::<(), wa_verify_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StackConfig {
    /// Where the Graph API lives.
    #[serde(with = "display_fromstr")]
    pub base_url: BaseUrl,
    /// The Graph API version in the path.
    #[serde(with = "display_fromstr")]
    pub api_version: ApiVersion,
    /// The request body encoding.
    #[serde(with = "display_fromstr")]
    pub encoding: Encoding,
    /// The `User-Agent`, when not the default `wa-verify/<version>`.
    pub user_agent: Option<String>,
    /// The largest answer body read.
    pub body_limit: usize,
    /// Attempt timeout and overall deadline.
    pub timeouts: TimeoutConfig,
    /// The retry policy.
    pub retry: RetryConfig,
    /// Per-number and global quotas.
    pub rate_limit: RateLimitConfig,
    /// The HTTP transport.
    pub transport: TransportConfig,
    /// Tracing.
    pub trace: TraceConfig,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            base_url: BaseUrl::default(),
            api_version: ApiVersion::default(),
            encoding: Encoding::default(),
            user_agent: None,
            body_limit: DEFAULT_BODY_LIMIT,
            timeouts: TimeoutConfig::default(),
            retry: RetryConfig::default(),
            rate_limit: RateLimitConfig::default(),
            transport: TransportConfig::default(),
            trace: TraceConfig::default(),
        }
    }
}

impl StackConfig {
    /// Parses TOML.
    ///
    /// # Errors
    ///
    /// `invalid_input` saying which key is wrong and why.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| {
            // The values' own refusals arrive inside the TOML error as our `Display`;
            // one "invalid input:" in front of the whole is enough.
            let text = e.to_string().replace("invalid input: ", "");
            Error::invalid_input(format!("invalid config: {}", text.trim_end()))
        })
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    ///
    /// `invalid_input` when the file cannot be read or parsed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!("cannot read config {}: {e}", path.display()))
        })?;
        Self::from_toml(&text)
    }
}

/// The two timeouts; `"off"` turns one off. A zero is refused: it would time out before
/// anything is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeoutConfig {
    /// One attempt's limit.
    #[serde(with = "opt_timeout")]
    pub attempt: Option<Duration>,
    /// The whole call's limit, backoff sleeps included.
    #[serde(with = "opt_timeout")]
    pub deadline: Option<Duration>,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            attempt: Some(Duration::from_secs(10)),
            deadline: Some(Duration::from_secs(30)),
        }
    }
}

impl TimeoutConfig {
    /// Refuses a zero timeout set in code (config files cannot hold one).
    ///
    /// # Errors
    ///
    /// `invalid_input` naming the timeout.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, t) in [("attempt", self.attempt), ("deadline", self.deadline)] {
            if t.is_some_and(|t| t.is_zero()) {
                return Err(Error::invalid_input(format!(
                    "timeouts.{name} must be longer than zero; write \"off\" to turn it off"
                )));
            }
        }
        Ok(())
    }

    /// The attempt timeout layer.
    pub fn attempt_layer(&self) -> AttemptTimeoutLayer {
        AttemptTimeoutLayer::new(self.attempt)
    }

    /// The deadline layer.
    pub fn deadline_layer(&self) -> DeadlineLayer {
        DeadlineLayer::new(self.deadline)
    }
}

/// The retry policy's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryConfig {
    /// `false` makes every call one attempt.
    pub enabled: bool,
    /// The most attempts per call, the first included.
    pub max_attempts: u32,
    /// Also retry ambiguous failures (may send a second code).
    pub retry_ambiguous: bool,
    /// The first backoff wait.
    #[serde(with = "duration")]
    pub initial_backoff: Duration,
    /// The factor between waits.
    pub multiplier: f64,
    /// The longest backoff wait.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// Jitter factor, 0 to 1.
    pub jitter: f64,
    /// The longest wait slept before a retry; a longer server hint fails fast.
    #[serde(with = "duration")]
    pub max_retry_wait: Duration,
    /// Retries allowed as a share of calls, in percent (0 turns the budget off).
    pub budget_percent: f32,
    /// Retries allowed per second whatever the share.
    pub budget_min_per_sec: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let b = BackoffSettings::default();
        Self {
            enabled: true,
            max_attempts: 4,
            retry_ambiguous: false,
            initial_backoff: b.initial,
            multiplier: b.multiplier,
            max_backoff: b.max,
            jitter: b.jitter,
            max_retry_wait: Duration::from_secs(60),
            budget_percent: 20.0,
            budget_min_per_sec: 10,
        }
    }
}

impl RetryConfig {
    /// The policy these settings describe, bounded by `deadline`.
    ///
    /// # Errors
    ///
    /// `invalid_input` for a zero `max_attempts`, a jitter outside 0..=1, a multiplier
    /// below 1 or a budget outside 0..=1000 percent.
    pub fn policy(&self, deadline: Option<Duration>) -> Result<RetryPolicy, Error> {
        let max_attempts = NonZeroU32::new(self.max_attempts)
            .ok_or_else(|| Error::invalid_input("retry.max_attempts must be at least 1"))?;
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::invalid_input(format!(
                "retry.jitter must be between 0 and 1, got {}",
                self.jitter
            )));
        }
        if !(self.multiplier >= 1.0 && self.multiplier <= 100.0) {
            return Err(Error::invalid_input(format!(
                "retry.multiplier must be between 1 and 100, got {}",
                self.multiplier
            )));
        }
        if !(0.0..=1000.0).contains(&self.budget_percent) {
            return Err(Error::invalid_input(format!(
                "retry.budget_percent must be between 0 and 1000, got {}",
                self.budget_percent
            )));
        }
        if !self.enabled {
            return Ok(RetryPolicy::never().budget(None));
        }
        let budget = (self.budget_percent > 0.0).then(|| {
            TpsBudget::new(
                Duration::from_secs(10),
                self.budget_min_per_sec,
                self.budget_percent / 100.0,
            )
        });
        Ok(RetryPolicy::new()
            .max_attempts(max_attempts)
            .retry_ambiguous(self.retry_ambiguous)
            .backoff(BackoffSettings {
                initial: self.initial_backoff,
                multiplier: self.multiplier,
                max: self.max_backoff,
                jitter: self.jitter,
            })
            .max_retry_wait(self.max_retry_wait)
            .deadline(deadline)
            .budget(budget))
    }
}

/// Per-number and global quotas; both empty by default (no local limit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// `false` turns the whole layer off: no quota, budget, guard or cooldown.
    pub enabled: bool,
    /// Quotas every number's `request_code` calls must satisfy at once (e.g. `1/min`
    /// against bursts and `5/h` against abuse). They limit sending codes only.
    pub per_number: Vec<Quota>,
    /// Quotas every number's `verify_code` calls must satisfy at once (none by default;
    /// the wrong-code guard protects verify_code too).
    pub verify_per_number: Vec<Quota>,
    /// The app-level quota over all numbers.
    pub global: Option<Quota>,
    /// How long a call may wait for its slot before failing with `rate_limited`.
    #[serde(with = "duration")]
    pub max_wait: Duration,
    /// Idle numbers are forgotten every this many calls (0: never).
    pub evict_every: u64,
    /// register/deregister calls per number in a moving window (Meta: 10 per 72 h);
    /// `"off"` (`None`) turns the budget off.
    #[serde(with = "window_or_off")]
    pub registration: Option<WindowLimit>,
    /// Wrong codes per number before verify_code pauses locally; `"off"` (`None`) turns
    /// the guard off.
    #[serde(with = "window_or_off")]
    pub wrong_codes: Option<WindowLimit>,
    /// The cooldown after a throttle that gave no wait hint.
    #[serde(with = "duration")]
    pub default_cooldown: Duration,
    /// The longest cooldown recorded, whatever Meta's hint says.
    #[serde(with = "duration")]
    pub max_cooldown: Duration,
    /// Where the state lives: this process (default) or Redis.
    pub store: StoreConfig,
}

/// Which store keeps the rate-limit state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In this process (governor): zero setup, per replica.
    #[default]
    Memory,
    /// In Redis, shared by every replica (the `redis` feature).
    Redis,
}

/// `[rate_limit.store]`: where the limiter's state lives and what to do when it fails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `memory` or `redis`.
    pub kind: StoreKind,
    /// The Redis URL (`redis://[:password@]host:port[/db]`); its password is never shown.
    pub url: Option<RedisUrl>,
    /// Prepended to every Redis key.
    pub key_prefix: String,
    /// The longest a Redis check (or lesson) may take before `on_store_error` applies;
    /// longer than zero.
    #[serde(with = "timeout")]
    pub timeout: Duration,
    /// What to do when Redis fails: `local`, `deny` or `allow`.
    pub on_store_error: OnStoreError,
    /// How many replicas share the quotas (the local fallback holds `1/replicas`).
    pub replicas: u32,
    /// Overrides `rate_limit.max_cooldown` when set.
    #[serde(with = "opt_duration")]
    pub max_cooldown: Option<Duration>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            url: None,
            key_prefix: "wa-verify:".to_owned(),
            timeout: Duration::from_millis(50),
            on_store_error: OnStoreError::Local,
            replicas: 1,
            max_cooldown: None,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            enabled: true,
            per_number: Vec::new(),
            verify_per_number: Vec::new(),
            global: None,
            max_wait: Duration::ZERO,
            evict_every: 1 << 16,
            registration: limits.registration,
            wrong_codes: limits.wrong_codes,
            default_cooldown: Duration::from_secs(600),
            max_cooldown: limits.max_cooldown,
            store: StoreConfig::default(),
        }
    }
}

impl RateLimitConfig {
    /// Every limit these settings describe.
    pub fn limits(&self) -> Limits {
        if !self.enabled {
            return Limits::none();
        }
        let mut limits = Limits::quotas(&self.per_number, self.global);
        limits.verify_per_number.clone_from(&self.verify_per_number);
        limits.registration = self.registration;
        limits.wrong_codes = self.wrong_codes;
        limits.max_cooldown = self.store.max_cooldown.unwrap_or(self.max_cooldown);
        limits
    }

    /// The store these settings describe.
    ///
    /// # Errors
    ///
    /// `invalid_input` when Redis is asked for without a URL, or without the `redis`
    /// feature.
    pub fn store(&self) -> Result<AnyStore, Error> {
        self.limits().validate()?;
        match self.store.kind {
            _ if !self.enabled => Ok(MemoryStore::with_limits(self.limits(), 0).into()),
            StoreKind::Memory => {
                Ok(MemoryStore::with_limits(self.limits(), self.evict_every).into())
            }
            #[cfg(feature = "redis")]
            StoreKind::Redis => {
                let url = self.store.url.clone().ok_or_else(|| {
                    Error::invalid_input(
                        "rate_limit.store.kind = \"redis\" needs rate_limit.store.url (redis://host:port)",
                    )
                })?;
                if self.store.replicas == 0 {
                    return Err(Error::invalid_input(
                        "rate_limit.store.replicas must be at least 1",
                    ));
                }
                let settings = crate::rate_limit::redis::RedisSettings {
                    url,
                    key_prefix: self.store.key_prefix.clone(),
                    timeout: self.store.timeout,
                    on_store_error: self.store.on_store_error,
                    replicas: self.store.replicas,
                };
                Ok(AnyStore::Redis(crate::rate_limit::redis::RedisStore::new(
                    settings,
                    self.limits(),
                )?))
            }
            #[cfg(not(feature = "redis"))]
            StoreKind::Redis => Err(Error::invalid_input(
                "rate_limit.store.kind = \"redis\" needs wa-verify-core's `redis` feature",
            )),
        }
    }

    /// The rate-limit layer these settings describe.
    ///
    /// # Errors
    ///
    /// As [`store`](Self::store).
    pub fn layer(&self) -> Result<RateLimitLayer<AnyStore>, Error> {
        Ok(RateLimitLayer::new(self.store()?)
            .max_wait(self.max_wait)
            .default_cooldown(self.default_cooldown)
            .learn(self.enabled))
    }
}

/// Tracing settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TraceConfig {
    /// Open a span per call.
    pub enabled: bool,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Durations in config files: `500ms`, `2s`, `1m`, `1h`, or a number of seconds.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::error::Error;
    use crate::rate_limit::MAX_SPAN;

    /// Parses `500ms`, `2s`, `1.5s`, `1m`, `2h`, `1d` (or a bare number of seconds); the
    /// units may also be written `msec`, `sec`, `second(s)`, `min`, `minute(s)`, `hr`,
    /// `hour(s)`, `day(s)`. At most 3650 days.
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
                if secs > MAX_SPAN.as_secs_f64() {
                    return Err(Error::invalid_input(format!(
                        "duration must be at most 3650d, got {s:?}"
                    )));
                }
                Ok(Duration::from_secs_f64(secs))
            }
            _ => Err(Error::invalid_input(format!(
                "duration must be a number with a unit like 500ms, 2s, 1m, 1h or 1d, got {s:?}"
            ))),
        }
    }

    /// Parses a timeout: a [`parse`]d duration that is not zero.
    ///
    /// # Errors
    ///
    /// `invalid_input` for a zero, naming what turns a timeout off instead.
    pub fn parse_timeout(s: &str) -> Result<Duration, Error> {
        nonzero(parse(s)?, s)
    }

    fn nonzero(d: Duration, s: &str) -> Result<Duration, Error> {
        if d.is_zero() {
            return Err(Error::invalid_input(format!(
                "a timeout must be longer than zero (a zero would time out before anything \
                 is sent), got {s:?}; write \"off\" where a timeout may be turned off"
            )));
        }
        Ok(d)
    }

    /// Formats a duration the way [`parse`] reads it.
    pub fn format(d: Duration) -> String {
        let ms = d.as_millis();
        if ms.is_multiple_of(3_600_000) && ms > 0 {
            format!("{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            format!("{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
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
            assert_eq!(parse("3650d").unwrap(), MAX_SPAN);
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
            for d in ["500ms", "2s", "1m", "2h", "0s", "1500ms"] {
                assert_eq!(format(parse(d).unwrap()), d);
            }
        }
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::duration::format(*d)),
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
        super::duration::parse(&s)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// An optional timeout: `"off"`, or a duration longer than zero.
mod opt_timeout {
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
mod timeout {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        super::duration::serialize(d, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match super::duration::deserialize(d)? {
            t if t.is_zero() => Err(serde::de::Error::custom(
                "a timeout must be longer than zero (it would time out before anything is sent)",
            )),
            t => Ok(t),
        }
    }
}

mod display_fromstr {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_is_the_default() {
        assert_eq!(StackConfig::from_toml("").unwrap(), StackConfig::default());
    }

    #[test]
    fn round_trips_through_toml() {
        let mut cfg = StackConfig::from_toml(
            r#"
            base_url = "http://127.0.0.1:8080"
            encoding = "form"
            [timeouts]
            attempt = "off"
            deadline = "1m"
            [rate_limit]
            per_number = [{ rate = "1/min", burst = 3 }]
            "#,
        )
        .unwrap();
        assert_eq!(cfg.timeouts.attempt, None);
        assert_eq!(cfg.encoding, Encoding::Form);
        cfg.retry.max_attempts = 2;
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(StackConfig::from_toml(&text).unwrap(), cfg);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values_with_the_reason() {
        let e = StackConfig::from_toml("[retry]\nmax_atempts = 3").unwrap_err();
        assert!(e.to_string().contains("max_atempts"), "{e}");
        let e = StackConfig::from_toml("base_url = \"http://example.com\"").unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = StackConfig::from_toml("[rate_limit]\nper_number = [{ rate = \"5/week\" }]")
            .unwrap_err();
        assert!(e.to_string().contains("5/min"), "{e}");
        let mut cfg = StackConfig::default();
        cfg.retry.max_attempts = 0;
        assert!(cfg
            .retry
            .policy(None)
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
    }
}
