//! The Redis store: every replica shares one GCRA state per number, checked by one Lua
//! script on the server's clock in one round trip.
//!
//! One call runs one script that checks the number's cooldown, the app's cooldown, the
//! wrong-code guard, the registration budget, every per-number quota and the global quota
//! together, and takes a slot of each only when all allow. Keys carry a prefix and expire
//! as soon as their state no longer matters, so Redis memory stays bounded.
//!
//! When Redis fails (unreachable, or slower than the store timeout), `on_store_error`
//! decides: `local` (the default) falls back to an in-process store holding this
//! replica's share of each quota, `deny` refuses, `allow` lets the call through. During an
//! outage Redis is probed again every 200 ms, so it is used again soon after it is back.
//!
//! The keys of one call live in different hash slots, so the script needs a single Redis
//! (or a primary with replicas), not Redis Cluster.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::memory::{Limits, MemoryStore};
use super::quota::{Quota, Rate};
pub use super::settings::{OnStoreError, RedisUrl};
use super::store::{Acquire, Admission, Lesson, QuotaClass, RateLimitStore, Scope};
use crate::error::Error;

/// How to reach Redis and what to do without it.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// Where Redis is.
    pub url: RedisUrl,
    /// Prepended to every key.
    pub key_prefix: String,
    /// The longest a check may take before the fallback applies (counts inside the
    /// call's deadline).
    pub timeout: Duration,
    /// What to do when Redis fails.
    pub on_store_error: OnStoreError,
    /// How many replicas share the quotas (the local fallback holds `1/replicas` of each).
    pub replicas: u32,
}

// Scopes as the script returns them.
const S_NUMBER: i64 = 1;
const S_GLOBAL: i64 = 2;
const S_COOLDOWN: i64 = 3;
const S_WRONG: i64 = 4;
const S_REGISTRATION: i64 = 5;

/// KEYS: cooldown, app cooldown, wrong codes, registration log, then one per GCRA quota.
/// ARGV: wrong-code max (0: off), registration max (0: off), registration window µs,
/// quota count, then per quota: interval µs, tolerance µs, scope.
/// Returns {allowed, wait µs, scope}.
const ACQUIRE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- One MGET for every string key (the registration log is a set, read apart).
local v = redis.call('MGET', unpack(KEYS))
local function num(i) if v[i] then return tonumber(v[i]) or 0 end return 0 end
local cd = math.max(num(1), num(2))
if cd > now then return {0, cd - now, 3} end
local wrong_max = tonumber(ARGV[1])
if wrong_max > 0 and num(3) >= wrong_max then
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl > 0 then return {0, ttl * 1000, 4} end
end
local reg_max = tonumber(ARGV[2])
local reg_window = tonumber(ARGV[3])
if reg_max > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - reg_window)
  if redis.call('ZCARD', KEYS[4]) >= reg_max then
    local oldest = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    return {0, tonumber(oldest[2]) + reg_window - now, 5}
  end
end
local n = tonumber(ARGV[4])
local tats = {}
local wait, scope = 0, 0
for i = 1, n do
  local interval = tonumber(ARGV[4 + 3 * i - 2])
  local tolerance = tonumber(ARGV[4 + 3 * i - 1])
  local tat = math.max(num(4 + i), now)
  local allow_at = tat - tolerance
  if now < allow_at then
    if allow_at - now > wait then wait, scope = allow_at - now, tonumber(ARGV[4 + 3 * i]) end
  else
    tats[i] = tat + interval
  end
end
if wait > 0 then return {0, wait, scope} end
for i = 1, n do
  redis.call('SET', KEYS[4 + i], tats[i], 'PX', math.floor((tats[i] - now) / 1000) + 1)
end
if reg_max > 0 then
  redis.call('ZADD', KEYS[4], now, now .. ':' .. math.random(1000000))
  redis.call('PEXPIRE', KEYS[4], math.floor(reg_window / 1000) + 1)
end
return {1, 0, 0}
"#;

/// KEYS: the cooldown key. ARGV: wait µs. Keeps the later of the two ends.
const COOLDOWN: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > cur then
  redis.call('SET', KEYS[1], until_, 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1)
end
return until_
"#;

/// KEYS: the wrong-code counter. ARGV: window ms. The window starts at the first one.
const WRONG_CODE: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"#;

/// The shared store. See the [module docs](self).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    acquire: Script,
    cooldown: Script,
    wrong_code: Script,
    settings: RedisSettings,
    limits: Limits,
    /// Per-number quotas and the global one, as the script takes them.
    quotas: Vec<(i64, i64, i64)>,
    fallback: MemoryStore,
    outage: AtomicBool,
    /// During an outage, Redis is skipped until this instant (ms since `epoch`).
    probe_at: AtomicU64,
    epoch: Instant,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("settings", &self.inner.settings)
            .field("limits", &self.inner.limits)
            .field("outage", &self.inner.outage.load(Ordering::Relaxed))
            .finish()
    }
}

/// How long Redis is skipped after a failure before it is tried again.
const PROBE_EVERY: Duration = Duration::from_millis(200);

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A quota held by one of `replicas` replicas: the same burst share, `replicas` times slower.
fn share(q: Quota, replicas: u32) -> Quota {
    let replicas = replicas.max(1);
    let rate = Rate::new(q.rate.count(), q.rate.period() * replicas).unwrap_or(q.rate);
    Quota::new(rate, (q.burst().get() / replicas).max(1))
}

impl RedisStore {
    /// A store over Redis at `settings.url` enforcing `limits`. Connects lazily, so it
    /// can be built before Redis is up; calls use the fallback until it answers.
    ///
    /// # Errors
    ///
    /// `invalid_input` when the URL cannot be used.
    pub fn new(settings: RedisSettings, limits: Limits) -> Result<Self, Error> {
        let client = redis::Client::open(settings.url.expose_secret())
            .map_err(|_| Error::invalid_input(format!("cannot use Redis URL {}", settings.url)))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout.max(Duration::from_millis(10)) * 4))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = client
            .get_connection_manager_lazy(config)
            .map_err(|_| Error::invalid_input(format!("cannot use Redis URL {}", settings.url)))?;
        let mut quotas: Vec<(i64, i64, i64)> = limits
            .per_number
            .iter()
            .map(|q| gcra(*q, S_NUMBER))
            .collect();
        if let Some(g) = limits.global {
            quotas.push(gcra(g, S_GLOBAL));
        }
        let mut local = limits.clone();
        local.per_number = limits
            .per_number
            .iter()
            .map(|q| share(*q, settings.replicas))
            .collect();
        local.global = limits.global.map(|q| share(q, settings.replicas));
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                acquire: Script::new(ACQUIRE),
                cooldown: Script::new(COOLDOWN),
                wrong_code: Script::new(WRONG_CODE),
                quotas,
                fallback: MemoryStore::with_limits(local, 1 << 16),
                limits,
                settings,
                outage: AtomicBool::new(false),
                probe_at: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        })
    }

    /// The in-process store used while Redis is down (this replica's share).
    pub fn fallback(&self) -> &MemoryStore {
        &self.inner.fallback
    }

    /// Whether Redis is considered down right now.
    pub fn is_in_outage(&self) -> bool {
        self.inner.outage.load(Ordering::Relaxed)
    }

    fn key(&self, parts: fmt::Arguments<'_>) -> String {
        format!("{}{parts}", self.inner.settings.key_prefix)
    }
}

fn gcra(q: Quota, scope: i64) -> (i64, i64, i64) {
    let interval = micros(q.rate.interval()).max(1);
    (interval, interval * i64::from(q.burst().get() - 1), scope)
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn skipping(&self) -> bool {
        self.outage.load(Ordering::Relaxed) && self.now_ms() < self.probe_at.load(Ordering::Relaxed)
    }

    fn failed(&self, why: &str) {
        self.probe_at.store(
            self.now_ms() + PROBE_EVERY.as_millis() as u64,
            Ordering::Relaxed,
        );
        if !self.outage.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                url = %self.settings.url,
                why,
                policy = ?self.settings.on_store_error,
                "rate-limit store unavailable; applying on_store_error until it answers"
            );
        }
    }

    fn recovered(&self) {
        if self.outage.swap(false, Ordering::Relaxed) {
            tracing::info!(url = %self.settings.url, "rate-limit store answers again");
        }
    }

    fn on_error(&self, key: Option<u64>, class: QuotaClass) -> Admission {
        match self.settings.on_store_error {
            OnStoreError::Local => match self.fallback.acquire(key, class) {
                Acquire::Ready(a) => a,
                Acquire::Pending(_) => Admission::Go,
            },
            OnStoreError::Deny => Admission::Wait {
                wait: PROBE_EVERY,
                scope: Scope::StoreUnavailable,
            },
            OnStoreError::Allow => Admission::Go,
        }
    }
}

/// The future of a Redis check: one script, bounded by the store timeout.
pub type RedisFuture = Pin<Box<dyn Future<Output = Admission> + Send>>;

impl RateLimitStore for RedisStore {
    type Future = RedisFuture;

    fn acquire(&self, key: Option<u64>, class: QuotaClass) -> Acquire<RedisFuture> {
        let i = &*self.inner;
        if i.skipping() {
            return Acquire::Ready(i.on_error(key, class));
        }
        let number = key.map_or_else(|| "none".to_owned(), |k| k.to_string());
        let c = class.as_str();
        let wrong_max = match (class, i.limits.wrong_codes) {
            (QuotaClass::VerifyCode, Some(w)) if key.is_some() => i64::from(w.max),
            _ => 0,
        };
        let (reg_max, reg_window) = match (class, i.limits.registration) {
            (QuotaClass::Registration, Some(r)) if key.is_some() => {
                (i64::from(r.max), micros(r.window))
            }
            _ => (0, 0),
        };
        let mut keys = vec![
            self.key(format_args!("cd:{c}:{number}")),
            self.key(format_args!("cd:{c}:app")),
            self.key(format_args!("wc:{number}")),
            self.key(format_args!("reg:{number}")),
        ];
        let mut args = vec![wrong_max, reg_max, reg_window, 0];
        let mut n = 0;
        for (idx, &(interval, tolerance, scope)) in i.quotas.iter().enumerate() {
            let applies = match scope {
                S_NUMBER => key.is_some() && class.per_number_quotas(),
                _ => true,
            };
            if applies {
                keys.push(match scope {
                    S_NUMBER => self.key(format_args!("q{idx}:{number}")),
                    _ => self.key(format_args!("g{idx}")),
                });
                args.extend([interval, tolerance, scope]);
                n += 1;
            }
        }
        args[3] = n;
        let store = self.clone();
        Acquire::Pending(Box::pin(async move {
            let i = &*store.inner;
            let mut inv = i.acquire.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            for a in &args {
                inv.arg(*a);
            }
            let mut conn = i.conn.clone();
            let answer =
                tokio::time::timeout(i.settings.timeout, inv.invoke_async::<Vec<i64>>(&mut conn))
                    .await;
            match answer {
                Ok(Ok(v)) if v.len() == 3 => {
                    i.recovered();
                    if v[0] == 1 {
                        return Admission::Go;
                    }
                    let scope = match v[2] {
                        S_NUMBER => Scope::Number,
                        S_GLOBAL => Scope::Global,
                        S_COOLDOWN => Scope::Cooldown,
                        S_WRONG => Scope::WrongCodes,
                        S_REGISTRATION => Scope::Registration,
                        _ => Scope::StoreUnavailable,
                    };
                    Admission::Wait {
                        wait: Duration::from_micros(v[1].max(0) as u64),
                        scope,
                    }
                }
                Ok(Ok(_)) => {
                    i.failed("unexpected script answer");
                    i.on_error(key, class)
                }
                Ok(Err(e)) => {
                    i.failed(if e.is_timeout() { "timeout" } else { "error" });
                    i.on_error(key, class)
                }
                Err(_) => {
                    i.failed("timeout");
                    i.on_error(key, class)
                }
            }
        }))
    }

    fn learn(&self, key: Option<u64>, class: QuotaClass, lesson: Lesson) {
        // The fallback learns too, so an outage right after does not forget it.
        self.inner.fallback.learn(key, class, lesson);
        let number = key.map_or_else(|| "none".to_owned(), |k| k.to_string());
        let c = class.as_str();
        let (script, redis_key, arg) = match lesson {
            Lesson::Throttled { wait, app_wide } => {
                let cap = self.inner.limits.cooldown_cap(class);
                let k = if app_wide || key.is_none() {
                    self.key(format_args!("cd:{c}:app"))
                } else {
                    self.key(format_args!("cd:{c}:{number}"))
                };
                (1, k, micros(wait.min(cap)))
            }
            Lesson::WrongCode => {
                let (Some(_), Some(w)) = (key, self.inner.limits.wrong_codes) else {
                    return;
                };
                (
                    2,
                    self.key(format_args!("wc:{number}")),
                    w.window.as_millis() as i64,
                )
            }
        };
        let store = self.clone();
        // Recording must not delay the answer: it runs beside it, bounded by the timeout.
        tokio::spawn(async move {
            let i = &*store.inner;
            let s = if script == 1 {
                &i.cooldown
            } else {
                &i.wrong_code
            };
            let mut inv = s.prepare_invoke();
            inv.key(&redis_key).arg(arg);
            let mut conn = i.conn.clone();
            match tokio::time::timeout(i.settings.timeout * 4, inv.invoke_async::<i64>(&mut conn))
                .await
            {
                Ok(Ok(_)) => {}
                _ => i.failed("could not record a lesson"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_share_is_slower_by_the_replica_count() {
        let q = Quota::new("6/min".parse().unwrap(), 3);
        let s = share(q, 3);
        assert_eq!(s.rate.interval(), Duration::from_secs(30));
        assert_eq!(s.burst().get(), 1);
    }
}
