//! The Redis store: every replica shares one GCRA state per number, checked by one Lua
//! script on the server's clock in one round trip.
//!
//! One script checks a call's number cooldown, the app's cooldown, the wrong-code guard,
//! the registration budget, every per-number quota and the global quota together, and
//! takes a slot of each only when all allow. Calls made at the same moment share one
//! script call (a batch, answered in order as if one by one), which is what lets one
//! Redis core answer well over 100k calls a second. Keys carry a prefix and expire as soon
//! as their state no longer matters, so Redis memory stays bounded.
//!
//! When Redis fails (unreachable, or slower than the store timeout), `on_store_error`
//! decides: `local` (the default) falls back to an in-process store holding this
//! replica's share of each quota, `deny` refuses, `allow` lets the call through. During an
//! outage one call probes Redis every 200 ms, so it is used again soon after it is back,
//! while the other calls are answered by the policy at once.
//!
//! The keys of one call live in different hash slots, so the script needs a single Redis
//! (or a primary with replicas), not Redis Cluster.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::limits::Limits;
use super::memory::MemoryStore;
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

/// The most checks one script call answers.
const MAX_BATCH: usize = 128;

/// The most script calls out at once (see [`batcher`]).
const IN_FLIGHT: usize = 2;

/// Checks a batch of calls in order, as if each ran alone: a later check of the same
/// number sees what an earlier one took.
///
/// KEYS: every key of the batch. ARGV, every key given as its index in KEYS:
/// - the quota count Q, then Q × (interval µs, tolerance µs, scope);
/// - the shape count S, then per shape (what a class of call, with or without a number,
///   checks): app cooldown key, wrong-code max (0: none), registration max (0: none),
///   registration window µs, per-number quota count L, L × quota, global quota count G,
///   G × (key, quota);
/// - the check count, then per check: its shape and its first key. A check's own keys
///   follow one another: cooldown, wrong codes (if counted), registration log (if
///   budgeted), then one per per-number quota.
///
/// Returns one integer per check, in order: 0 to go, else wait µs × 8 + scope.
const ACQUIRE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Lua numbers are doubles: every integer must stay below 2^53 to stay exact. Config keeps
-- states within ten years, so this guard only stops a corrupted key from failing open.
local EXACT = 9007199254740992
-- One MGET for every key (the registration log is a set and reads as nil here).
local v = redis.call('MGET', unpack(KEYS))
local val = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  if val[k] == nil then val[k] = tonumber(v[i]) or 0 end
end
local nq = tonumber(ARGV[1])
local interval, tolerance, qscope = {}, {}, {}
for j = 1, nq do
  interval[j] = tonumber(ARGV[3 * j - 1])
  tolerance[j] = tonumber(ARGV[3 * j])
  qscope[j] = tonumber(ARGV[3 * j + 1])
end
local p = 3 * nq + 2
local shapes = {}
for s = 1, tonumber(ARGV[p]) do
  local sh = {app = KEYS[tonumber(ARGV[p + 1])], wc_max = tonumber(ARGV[p + 2]),
    reg_max = tonumber(ARGV[p + 3]), reg_window = tonumber(ARGV[p + 4]), lq = {}, gk = {}, gq = {}}
  p = p + 5
  for j = 1, tonumber(ARGV[p]) do sh.lq[j] = tonumber(ARGV[p + j]) end
  p = p + #sh.lq + 1
  for j = 1, tonumber(ARGV[p]) do
    sh.gk[j], sh.gq[j] = KEYS[tonumber(ARGV[p + 2 * j - 1])], tonumber(ARGV[p + 2 * j])
  end
  p = p + 2 * #sh.gk
  shapes[s] = sh
end
p = p + 1
local out, dirty = {}, {}
for c = 1, tonumber(ARGV[p]) do
  local sh, k = shapes[tonumber(ARGV[p + 2 * c - 1])], tonumber(ARGV[p + 2 * c])
  local cd_k, wc_k, reg_k = KEYS[k], nil, nil
  k = k + 1
  if sh.wc_max > 0 then wc_k, k = KEYS[k], k + 1 end
  if sh.reg_max > 0 then reg_k, k = KEYS[k], k + 1 end
  local nl = #sh.lq
  local wait, scope = 0, 0
  local cd = math.max(val[cd_k], val[sh.app])
  if cd > now then wait, scope = cd - now, 3 end
  if scope == 0 and wc_k and val[wc_k] >= sh.wc_max then
    local ttl = redis.call('PTTL', wc_k)
    if ttl > 0 then wait, scope = ttl * 1000, 4 end
  end
  if scope == 0 and reg_k then
    redis.call('ZREMRANGEBYSCORE', reg_k, '-inf', now - sh.reg_window)
    if redis.call('ZCARD', reg_k) >= sh.reg_max then
      local oldest = redis.call('ZRANGE', reg_k, 0, 0, 'WITHSCORES')
      wait, scope = tonumber(oldest[2]) + sh.reg_window - now, 5
    end
  end
  -- Quota j of the check: its per-number ones (keys from k on), then the global ones.
  if scope == 0 then
    for j = 1, nl + #sh.gk do
      local key, q = KEYS[k + j - 1], sh.lq[j]
      if j > nl then key, q = sh.gk[j - nl], sh.gq[j - nl] end
      local allow_at = math.max(val[key], now) - tolerance[q]
      if allow_at - now > wait then wait, scope = allow_at - now, qscope[q] end
    end
  end
  if scope == 0 then
    for j = 1, nl + #sh.gk do
      local key, q = KEYS[k + j - 1], sh.lq[j]
      if j > nl then key, q = sh.gk[j - nl], sh.gq[j - nl] end
      val[key] = math.max(val[key], now) + interval[q]
      if val[key] >= EXACT then return redis.error_reply('wa-verify: state out of range') end
      dirty[key] = true
    end
    if reg_k then
      redis.call('ZADD', reg_k, now, now .. ':' .. math.random(1000000))
      redis.call('PEXPIRE', reg_k, math.floor(sh.reg_window / 1000) + 1)
    end
    out[c] = 0
  else
    if wait * 8 + scope >= EXACT then return redis.error_reply('wa-verify: wait out of range') end
    out[c] = wait * 8 + scope
  end
end
-- Each key expires when its GCRA state is back to full.
-- Integers as '%d': Redis would print a Lua number with '%.17g', which costs more.
for k in pairs(dirty) do
  redis.call('SET', k, string.format('%d', val[k]), 'PX',
    string.format('%d', math.floor((val[k] - now) / 1000) + 1))
end
return out
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
    queue: Arc<Queue>,
}

struct Inner {
    client: redis::Client,
    conn_config: ConnectionManagerConfig,
    /// Made on first use, inside a runtime: the manager starts its driver task there,
    /// so it is made again when the batcher is (its runtime has gone).
    conn: Mutex<Option<ConnectionManager>>,
    acquire: Script,
    cooldown: Script,
    wrong_code: Script,
    settings: RedisSettings,
    limits: Limits,
    /// Per-number quotas (request_code's, then verify_code's) and the global one, as the
    /// script takes them: (interval µs, tolerance µs, scope).
    quotas: Vec<(i64, i64, i64)>,
    /// The indexes in `quotas` of each class's per-number quotas.
    per_class: [Vec<usize>; 4],
    fallback: MemoryStore,
    /// Checks answered by `on_store_error` instead of Redis.
    fallbacks: AtomicU64,
    outage: AtomicBool,
    /// During an outage, Redis is skipped until this instant (ms since `epoch`).
    probe_at: AtomicU64,
    /// On tokio's clock, so a paused clock drives the probes in tests.
    epoch: tokio::time::Instant,
}

/// One call waiting for its batch.
struct Check {
    key: Option<u64>,
    class: QuotaClass,
    queued: tokio::time::Instant,
    /// `None` when Redis failed.
    reply: oneshot::Sender<Option<Admission>>,
}

/// The way into the batcher task, started on first use in the caller's runtime (and
/// again if that runtime has gone). Dropping the last store ends the task.
struct Queue {
    tx: Mutex<Option<mpsc::UnboundedSender<Check>>>,
}

impl Queue {
    /// Hands a check to the batcher, or gives it back when no runtime can run one.
    fn push(&self, inner: &Arc<Inner>, check: Check) -> Result<(), Check> {
        let mut tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let check = match tx.as_ref() {
            Some(t) => match t.send(check) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(check)) => check,
            },
            None => check,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(check);
        };
        let (t, rx) = mpsc::unbounded_channel();
        *inner.conn.lock().unwrap_or_else(PoisonError::into_inner) = None;
        runtime.spawn(batcher(inner.clone(), rx));
        let sent = t.send(check).map_err(|e| e.0);
        *tx = Some(t);
        sent
    }
}

/// Gathers the checks that are ready together into one script call each, so Redis runs
/// one script per batch rather than per call, and every call still costs one round trip.
///
/// At most [`IN_FLIGHT`] batches are out at once: while they are, new checks gather into
/// the next one. Two keep both sides busy, this process building a batch while Redis runs
/// the other.
async fn batcher(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Check>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut checks = Vec::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if rx.recv_many(&mut checks, MAX_BATCH).await == 0 {
            return;
        }
        if checks.len() < MAX_BATCH {
            // Callers woken together enqueue one after another; one turn of the
            // scheduler lets them all in before the batch leaves.
            tokio::task::yield_now().await;
            while checks.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => checks.push(c),
                    Err(_) => break,
                }
            }
        }
        let batch = std::mem::replace(&mut checks, Vec::with_capacity(MAX_BATCH));
        tokio::spawn(run_batch(inner.clone(), batch, slot));
    }
}

async fn run_batch(inner: Arc<Inner>, mut checks: Vec<Check>, _slot: OwnedSemaphorePermit) {
    // A caller that went away before its batch left takes no slot.
    checks.retain(|c| !c.reply.is_closed());
    let Some(oldest) = checks.iter().map(|c| c.queued).min() else {
        return;
    };
    let cmd = inner.batch_command(&checks);
    // The store timeout runs from when the oldest check was queued, so time spent
    // waiting for a batch to leave counts too.
    let answer = tokio::time::timeout_at(oldest + inner.settings.timeout, inner.eval(&cmd)).await;
    let answers = match answer {
        Ok(Ok(v)) if v.len() == checks.len() => {
            inner.recovered();
            v
        }
        Ok(Ok(_)) => {
            inner.failed("unexpected script answer");
            Vec::new()
        }
        Ok(Err(e)) => {
            inner.failed(why(&e));
            Vec::new()
        }
        Err(_) => {
            inner.failed("timeout");
            Vec::new()
        }
    };
    if answers.is_empty() {
        for c in checks {
            let _ = c.reply.send(None);
        }
        return;
    }
    for (c, a) in checks.into_iter().zip(answers) {
        let _ = c.reply.send(Some(admission(a)));
    }
}

/// What went wrong, for the outage warning: the kind only, as an error's text could
/// carry more than an operator should see in a log.
fn why(e: &redis::RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connection_refusal() {
        "connection refused"
    } else if e.is_connection_dropped() {
        "connection dropped"
    } else if e.is_io_error() {
        "I/O error"
    } else {
        "error answer"
    }
}

/// A check's answer from the script: 0 to go, else wait µs × 8 + scope.
fn admission(answer: i64) -> Admission {
    if answer <= 0 {
        return Admission::Go;
    }
    Admission::Wait {
        wait: Duration::from_micros((answer / 8) as u64),
        scope: match answer % 8 {
            S_NUMBER => Scope::Number,
            S_GLOBAL => Scope::Global,
            S_COOLDOWN => Scope::Cooldown,
            S_WRONG => Scope::WrongCodes,
            S_REGISTRATION => Scope::Registration,
            _ => Scope::StoreUnavailable,
        },
    }
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

/// A quota held by one of `replicas` replicas: the same burst share, `replicas` times
/// slower (the quota itself when that would pass the bounds of a rate).
fn share(q: Quota, replicas: u32) -> Quota {
    let replicas = replicas.max(1);
    q.rate
        .period()
        .checked_mul(replicas)
        .and_then(|period| Rate::new(q.rate.count(), period).ok())
        .and_then(|rate| Quota::try_new(rate, (q.burst().get() / replicas).max(1)).ok())
        .unwrap_or(q)
}

/// A number as it appears in keys (`none` for calls of no number).
#[derive(Clone, Copy)]
struct Number(Option<u64>);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("none"),
        }
    }
}

/// Every key the store keeps, after the prefix. Named in one place, so the acquire
/// script and the lessons always meet on the same keys.
#[derive(Clone, Copy)]
enum Key {
    /// A class's cooldown for one number.
    Cooldown(QuotaClass, Number),
    /// A class's cooldown for the whole app.
    AppCooldown(QuotaClass),
    /// The wrong-code counter of a number.
    WrongCodes(Number),
    /// The register/deregister log of a number.
    Registration(Number),
    /// The GCRA state of per-number quota `idx` for a number.
    Quota(usize, Number),
    /// The GCRA state of the global quota at `idx`.
    Global(usize),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Cooldown(c, n) => write!(f, "cd:{}:{n}", c.as_str()),
            Key::AppCooldown(c) => write!(f, "cd:{}:app", c.as_str()),
            Key::WrongCodes(n) => write!(f, "wc:{n}"),
            Key::Registration(n) => write!(f, "reg:{n}"),
            Key::Quota(idx, n) => write!(f, "q{idx}:{n}"),
            Key::Global(idx) => write!(f, "g{idx}"),
        }
    }
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
        let conn_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout.max(Duration::from_millis(10)) * 4))
            .set_response_timeout(Some(settings.timeout))
            // No retries inside: a failed check falls back at once, and the outage probe
            // is the retry.
            .set_number_of_retries(0);
        limits.validate()?;
        if settings.timeout.is_zero() {
            return Err(Error::invalid_input(
                "rate_limit.store.timeout must be longer than zero",
            ));
        }
        let mut quotas = Vec::new();
        let mut per_class: [Vec<usize>; 4] = Default::default();
        for class in [QuotaClass::RequestCode, QuotaClass::VerifyCode] {
            for q in limits.per_number_for(class) {
                per_class[class.index()].push(quotas.len());
                quotas.push(gcra(*q, S_NUMBER));
            }
        }
        if let Some(g) = limits.global {
            quotas.push(gcra(g, S_GLOBAL));
        }
        let mut local = limits.clone();
        let shares = |qs: &[Quota]| -> Vec<Quota> {
            qs.iter().map(|q| share(*q, settings.replicas)).collect()
        };
        local.per_number = shares(&limits.per_number);
        local.verify_per_number = shares(&limits.verify_per_number);
        local.global = limits.global.map(|q| share(q, settings.replicas));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn_config,
                conn: Mutex::new(None),
                acquire: Script::new(ACQUIRE),
                cooldown: Script::new(COOLDOWN),
                wrong_code: Script::new(WRONG_CODE),
                quotas,
                per_class,
                fallback: MemoryStore::with_limits(local, 1 << 16),
                fallbacks: AtomicU64::new(0),
                limits,
                settings,
                outage: AtomicBool::new(false),
                probe_at: AtomicU64::new(0),
                epoch: tokio::time::Instant::now(),
            }),
            queue: Arc::new(Queue {
                tx: Mutex::new(None),
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

    /// How many checks so far were answered by `on_store_error` instead of Redis: the
    /// number to watch, since those calls were not limited across replicas.
    pub fn fallback_answers(&self) -> u64 {
        self.inner.fallbacks.load(Ordering::Relaxed)
    }

    fn key(&self, key: Key) -> String {
        format!("{}{key}", self.inner.settings.key_prefix)
    }
}

/// A quota as the script takes it. `Quota` keeps interval × burst within ten years, so
/// the products are exact; the checked ones only make sure nothing can wrap.
fn gcra(q: Quota, scope: i64) -> (i64, i64, i64) {
    let interval = micros(q.rate.interval()).max(1);
    let tolerance = interval
        .checked_mul(i64::from(q.burst().get() - 1))
        .unwrap_or(i64::MAX);
    (interval, tolerance, scope)
}

/// The keys of one script call, written end to end; a key's index is its place in KEYS.
#[derive(Default)]
struct Keys {
    text: String,
    ends: Vec<usize>,
}

impl Keys {
    fn add(&mut self, prefix: &str, key: Key) -> i64 {
        use fmt::Write as _;
        self.text.push_str(prefix);
        let _ = write!(self.text, "{key}");
        self.ends.push(self.text.len());
        self.ends.len() as i64
    }
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether a check skips Redis. During an outage, once the probe time has come, one
    /// check claims the probe and asks Redis; the others keep to the fallback, answered at
    /// once, until Redis has answered (or the next probe time if it never does). So an
    /// outage costs one call per [`PROBE_EVERY`] the store timeout, not every call made
    /// while a probe is out.
    fn skipping(&self) -> bool {
        if !self.outage.load(Ordering::Relaxed) {
            return false;
        }
        let at = self.probe_at.load(Ordering::Relaxed);
        let now = self.now_ms();
        now < at
            || self
                .probe_at
                .compare_exchange(
                    at,
                    now + PROBE_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
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
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
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

    /// The `EVALSHA` of the acquire script for `checks` (see [`ACQUIRE`] for the layout).
    /// Keys every check of a shape shares (app cooldowns, global quotas) go in once.
    fn batch_command(&self, checks: &[Check]) -> redis::Cmd {
        let prefix = self.settings.key_prefix.as_str();
        let mut keys = Keys::default();
        let mut shapes: Vec<i64> = Vec::new();
        // Shape ids by class and whether the call has a number (0: not yet described).
        let mut shape_ids = [[0i64; 2]; 4];
        let mut shape_count = 0;
        let mut per_check: Vec<i64> = Vec::with_capacity(2 * checks.len());
        for check in checks {
            let (class, numbered) = (check.class, check.key.is_some());
            let wrong_max = match self.limits.wrong_codes {
                Some(w) if class == QuotaClass::VerifyCode && numbered => i64::from(w.max()),
                _ => 0,
            };
            let (reg_max, reg_window) = match self.limits.registration {
                Some(r) if class == QuotaClass::Registration && numbered => {
                    (i64::from(r.max()), micros(r.window()))
                }
                _ => (0, 0),
            };
            let mine: &[usize] = if numbered {
                &self.per_class[class.index()]
            } else {
                &[]
            };
            let id = &mut shape_ids[class.index()][usize::from(numbered)];
            if *id == 0 {
                shape_count += 1;
                *id = shape_count;
                shapes.push(keys.add(prefix, Key::AppCooldown(class)));
                shapes.extend([wrong_max, reg_max, reg_window]);
                shapes.push(mine.len() as i64);
                shapes.extend(mine.iter().map(|&idx| idx as i64 + 1));
                let shared = || {
                    self.quotas
                        .iter()
                        .enumerate()
                        .filter(|(_, q)| q.2 != S_NUMBER)
                };
                shapes.push(shared().count() as i64);
                for (idx, _) in shared() {
                    shapes.push(keys.add(prefix, Key::Global(idx)));
                    shapes.push(idx as i64 + 1);
                }
            }
            per_check.push(*id);
            let number = Number(check.key);
            per_check.push(keys.add(prefix, Key::Cooldown(class, number)));
            if wrong_max > 0 {
                keys.add(prefix, Key::WrongCodes(number));
            }
            if reg_max > 0 {
                keys.add(prefix, Key::Registration(number));
            }
            for &idx in mine {
                keys.add(prefix, Key::Quota(idx, number));
            }
        }
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.acquire.get_hash()).arg(keys.ends.len());
        let mut start = 0;
        for &end in &keys.ends {
            cmd.arg(&keys.text.as_bytes()[start..end]);
            start = end;
        }
        cmd.arg(self.quotas.len());
        for &(interval, tolerance, scope) in &self.quotas {
            cmd.arg(interval).arg(tolerance).arg(scope);
        }
        cmd.arg(shape_count)
            .arg(shapes)
            .arg(checks.len())
            .arg(per_check);
        cmd
    }

    /// The shared connection. Only called inside a runtime (from the batch and lesson
    /// tasks).
    fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = conn.as_ref() {
            return Ok(c.clone());
        }
        let made = self
            .client
            .get_connection_manager_lazy(self.conn_config.clone())?;
        Ok(conn.insert(made).clone())
    }

    /// Runs an `EVALSHA`, loading the script first if Redis has lost it.
    async fn eval(&self, cmd: &redis::Cmd) -> redis::RedisResult<Vec<i64>> {
        let mut conn = self.conn()?;
        match cmd.query_async(&mut conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.acquire.load_async(&mut conn).await?;
                cmd.query_async(&mut conn).await
            }
            answer => answer,
        }
    }
}

/// The future of a Redis check: a place in the next batch, then the batch's answer.
/// Nothing is sent before it is first polled.
pub struct RedisFuture {
    inner: Arc<Inner>,
    key: Option<u64>,
    class: QuotaClass,
    /// Until the check is handed to the batcher.
    queue: Option<Arc<Queue>>,
    reply: Option<oneshot::Receiver<Option<Admission>>>,
}

impl fmt::Debug for RedisFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFuture")
            .field("key", &self.key)
            .field("class", &self.class)
            .finish_non_exhaustive()
    }
}

impl Future for RedisFuture {
    type Output = Admission;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Admission> {
        let this = self.get_mut();
        if let Some(queue) = this.queue.take() {
            let (reply, rx) = oneshot::channel();
            let check = Check {
                key: this.key,
                class: this.class,
                queued: tokio::time::Instant::now(),
                reply,
            };
            if queue.push(&this.inner, check).is_err() {
                return Poll::Ready(this.inner.on_error(this.key, this.class));
            }
            this.reply = Some(rx);
        }
        let answer = match this.reply.as_mut() {
            Some(rx) => ready!(Pin::new(rx).poll(cx)).ok().flatten(),
            None => None,
        };
        this.reply = None;
        // The batch bounds the wait by the store timeout; a failed one answers `None`.
        Poll::Ready(answer.unwrap_or_else(|| this.inner.on_error(this.key, this.class)))
    }
}

impl RateLimitStore for RedisStore {
    type Future = RedisFuture;
    type LearnFuture = LearnFuture;

    fn acquire(&self, key: Option<u64>, class: QuotaClass) -> Acquire<RedisFuture> {
        let i = &*self.inner;
        if i.skipping() {
            return Acquire::Ready(i.on_error(key, class));
        }
        Acquire::Pending(RedisFuture {
            inner: self.inner.clone(),
            key,
            class,
            queue: Some(self.queue.clone()),
            reply: None,
        })
    }

    fn refusal_message(&self, scope: Scope) -> String {
        self.inner.limits.refusal_message(scope)
    }

    fn learn(&self, key: Option<u64>, class: QuotaClass, lesson: Lesson) -> LearnFuture {
        // The fallback learns too, so an outage right after does not forget it.
        self.inner.fallback.record_lesson(key, class, lesson);
        let number = Number(key);
        // The script as a way to find it, since the task below owns the store.
        type Pick = fn(&Inner) -> &Script;
        let (script, redis_key, arg): (Pick, _, _) = match lesson {
            Lesson::Throttled { wait, app_wide } => {
                let cap = self.inner.limits.cooldown_cap(class);
                let k = if app_wide || key.is_none() {
                    self.key(Key::AppCooldown(class))
                } else {
                    self.key(Key::Cooldown(class, number))
                };
                (|i| &i.cooldown, k, micros(wait.min(cap)))
            }
            Lesson::WrongCode => {
                let (Some(_), Some(w)) = (key, self.inner.limits.wrong_codes) else {
                    return LearnFuture(None);
                };
                (
                    |i| &i.wrong_code,
                    self.key(Key::WrongCodes(number)),
                    i64::try_from(w.window().as_millis()).unwrap_or(i64::MAX),
                )
            }
        };
        let store = self.inner.clone();
        // Outside a runtime only the fallback learns; Redis hears of it from the next
        // replica that meets the same answer.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return LearnFuture(None);
        };
        // A task of its own, awaited by the call: the lesson lands even if the caller
        // gives up on the call meanwhile, and the call returns only once it has landed
        // (or the store timeout passed), so a process that exits right after keeps it.
        LearnFuture(Some(runtime.spawn(async move {
            let i = &*store;
            let mut inv = script(i).prepare_invoke();
            inv.key(&redis_key).arg(arg);
            let record = async { inv.invoke_async::<i64>(&mut i.conn()?).await };
            match tokio::time::timeout(i.settings.timeout, record).await {
                Ok(Ok(_)) => {}
                _ => i.failed("could not record a lesson"),
            }
        })))
    }
}

/// The future of recording a lesson in Redis: done when the lesson is in Redis, or the
/// store timeout has passed (the fallback has it either way).
#[derive(Debug)]
pub struct LearnFuture(Option<tokio::task::JoinHandle<()>>);

impl Future for LearnFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut().0.as_mut() {
            // A task that panicked or was cancelled has nothing more to wait for.
            Some(task) => Pin::new(task).poll(cx).map(|_| ()),
            None => Poll::Ready(()),
        }
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

    #[test]
    fn script_answers_decode_to_admissions() {
        assert_eq!(admission(0), Admission::Go);
        let wait = |micros: i64, scope| Admission::Wait {
            wait: Duration::from_micros(micros as u64),
            scope,
        };
        assert_eq!(admission(1500 * 8 + S_NUMBER), wait(1500, Scope::Number));
        assert_eq!(admission(2 * 8 + S_GLOBAL), wait(2, Scope::Global));
        assert_eq!(admission(7 * 8 + S_COOLDOWN), wait(7, Scope::Cooldown));
        assert_eq!(admission(9 * 8 + S_WRONG), wait(9, Scope::WrongCodes));
        assert_eq!(
            admission(72 * 3600 * 1_000_000 * 8 + S_REGISTRATION),
            wait(72 * 3600 * 1_000_000, Scope::Registration)
        );
    }

    /// Nothing can reach Redis without a runtime; the fallback answers and nothing panics.
    #[test]
    fn outside_a_runtime_the_fallback_answers() {
        let limits = Limits::quotas(&[Quota::new("1/h".parse().unwrap(), 1)], None);
        let settings = RedisSettings {
            url: "redis://127.0.0.1:1".parse().unwrap(),
            key_prefix: "t:".into(),
            timeout: Duration::from_millis(50),
            on_store_error: OnStoreError::Local,
            replicas: 1,
        };
        let store = RedisStore::new(settings, limits).unwrap();
        store.learn(
            Some(2),
            QuotaClass::RequestCode,
            Lesson::Throttled {
                wait: Duration::from_secs(60),
                app_wide: false,
            },
        );
        let poll = |key| {
            let Acquire::Pending(mut f) = store.acquire(Some(key), QuotaClass::RequestCode) else {
                panic!("Redis is not known to be down yet");
            };
            let mut cx = Context::from_waker(std::task::Waker::noop());
            match Pin::new(&mut f).poll(&mut cx) {
                Poll::Ready(a) => a,
                Poll::Pending => panic!("answered at once"),
            }
        };
        assert_eq!(poll(1), Admission::Go);
        assert!(matches!(
            poll(1),
            Admission::Wait {
                scope: Scope::Number,
                ..
            }
        ));
        assert!(matches!(
            poll(2),
            Admission::Wait {
                scope: Scope::Cooldown,
                ..
            }
        ));
    }
}
