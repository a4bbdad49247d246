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
//! On a Redis Cluster (`kind = "redis_cluster"`), keys carry hash tags (a number's, each
//! WABA's, the app's), so a check runs shard by shard: the number's, the WABA's, then the
//! app's, one script call per hash tag for the whole batch. A shard that refuses ends the
//! check, and what the earlier shards took is given back before it answers, so "every
//! slot or none" holds once it returns; for about one round trip in between, a slot is
//! held that another call could have had.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use redis::Script;
use tokio::sync::oneshot;

mod batch;
mod cluster;
mod held;
mod inspect;
mod keys;
mod probe;
mod queue;
mod state;

use self::batch::{gcra, Check, ACQUIRE, S_GLOBAL, S_NUMBER, S_WABA};
use self::cluster::GIVE_BACK;
use self::keys::{Key, Number};
use self::queue::Queue;
use self::state::{micros, Inner};
use crate::error::Error;
use crate::rate_limit::limits::Limits;
use crate::rate_limit::quota::{Quota, Rate};
use crate::rate_limit::store::{
    Acquire, Admission, Lesson, MemoryStore, QuotaClass, RateLimitStore, Scope,
};
pub use crate::rate_limit::store::{OnStoreError, RedisUrl, StoreConfig};

/// KEYS: the cooldown key. ARGV: wait µs. Keeps the later of the two ends.
const COOLDOWN: &str = include_str!("cooldown.lua");

/// KEYS: the wrong-code counter. ARGV: window ms. The window starts at the first one.
const WRONG_CODE: &str = include_str!("wrong_code.lua");

/// The shared store. See the [module docs](self).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
    queue: Arc<Queue>,
    /// Refusals known until a set time, answered without a round trip.
    held: Arc<held::Held>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .field("limits", &self.inner.limits)
            .field("outage", &self.inner.outage.load(Ordering::Relaxed))
            .finish()
    }
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

impl RedisStore {
    /// A store over Redis at `config.url` enforcing `limits`. Connects lazily, so it
    /// can be built before Redis is up; calls use the fallback until it answers.
    ///
    /// # Errors
    ///
    /// `invalid_input` when the URL cannot be used.
    pub fn new(config: StoreConfig, limits: Limits) -> Result<Self, Error> {
        if config.replicas == 0 {
            return Err(Error::invalid_input(
                "rate_limit.store.replicas must be at least 1",
            ));
        }
        let client = state::client(&config)?;
        limits.validate()?;
        if config.timeout.is_zero() {
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
        for q in &limits.per_waba {
            quotas.push(gcra(*q, S_WABA));
        }
        let mut local = limits.clone();
        let shares = |qs: &[Quota]| -> Vec<Quota> {
            qs.iter().map(|q| share(*q, config.replicas)).collect()
        };
        local.per_number = shares(&limits.per_number);
        local.verify_per_number = shares(&limits.verify_per_number);
        local.global = limits.global.map(|q| share(q, config.replicas));
        local.per_waba = shares(&limits.per_waba);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn: Mutex::new(None),
                acquire: Script::new(ACQUIRE),
                give_back: Script::new(GIVE_BACK),
                cooldown: Script::new(COOLDOWN),
                wrong_code: Script::new(WRONG_CODE),
                quotas,
                per_class,
                fallback: MemoryStore::with_limits(local, 1 << 16),
                fallbacks: AtomicU64::new(0),
                limits,
                config,
                outage: AtomicBool::new(false),
                degraded: AtomicBool::new(false),
                probe_at: AtomicU64::new(0),
                epoch: tokio::time::Instant::now(),
            }),
            queue: Arc::new(Queue {
                tx: Mutex::new(None),
            }),
            held: Arc::new(held::Held::new()),
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

    /// The shared connection, for the dedup store that lives beside the limits. Only
    /// inside a runtime.
    pub(crate) fn connection(&self) -> redis::RedisResult<state::Conn> {
        self.inner.conn()
    }

    /// Whether the store runs on a Redis Cluster, where one script reads one hash tag.
    pub(crate) fn clustered(&self) -> bool {
        self.inner.clustered()
    }

    /// The prefix every key of this store carries.
    pub(crate) fn key_prefix(&self) -> &str {
        &self.inner.config.key_prefix
    }

    /// How long one Redis call may take before `on_store_error` answers.
    pub(crate) fn timeout(&self) -> Duration {
        self.inner.config.timeout
    }

    /// What to do while Redis cannot be used.
    pub(crate) fn on_store_error(&self) -> OnStoreError {
        self.inner.config.on_store_error
    }

    /// Whether Redis is skipped right now (an outage, between probes).
    pub(crate) fn skipping(&self) -> bool {
        self.inner.skipping()
    }

    /// Reports a failed Redis call about one number's keys: one Redis is treated as down
    /// until a probe answers; on a cluster only that number's shard may be.
    pub(crate) fn failed(&self, why: &str) {
        self.inner.number_failed(why);
    }

    /// [`failed`](Self::failed), saying what kind of failure `e` was.
    pub(crate) fn failed_on(&self, e: &redis::RedisError) {
        self.inner.number_failed(probe::why(e));
    }

    fn key(&self, key: Key) -> String {
        let prefix = &self.inner.config.key_prefix;
        match self.inner.clustered() {
            true => format!("{prefix}{key:#}"),
            false => format!("{prefix}{key}"),
        }
    }
}

/// The future of a Redis check: a place in the next batch, then the batch's answer.
/// Nothing is sent before it is first polled.
pub struct RedisFuture {
    inner: Arc<Inner>,
    held: Arc<held::Held>,
    key: Option<u64>,
    waba: Option<u64>,
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
                waba: this.waba,
                class: this.class,
                queued: tokio::time::Instant::now(),
                reply,
            };
            if queue.push(&this.inner, check).is_err() {
                return Poll::Ready(this.inner.on_error(this.key, this.waba, this.class));
            }
            this.reply = Some(rx);
        }
        let answer = match this.reply.as_mut() {
            Some(rx) => ready!(Pin::new(rx).poll(cx)).ok().flatten(),
            None => None,
        };
        this.reply = None;
        // The batch bounds the wait by the store timeout; a failed one answers `None`.
        match answer {
            Some(a) => {
                this.held.remember(this.key, this.class, a);
                Poll::Ready(a)
            }
            None => Poll::Ready(this.inner.on_error(this.key, this.waba, this.class)),
        }
    }
}

impl RateLimitStore for RedisStore {
    type Future = RedisFuture;
    type LearnFuture = LearnFuture;

    fn acquire(&self, key: Option<u64>, class: QuotaClass) -> Acquire<RedisFuture> {
        self.acquire_in(key, None, class)
    }

    fn acquire_in(
        &self,
        key: Option<u64>,
        waba: Option<u64>,
        class: QuotaClass,
    ) -> Acquire<RedisFuture> {
        let i = &*self.inner;
        if let Some(known) = self.held.check(key, class) {
            return Acquire::Ready(known);
        }
        if i.skipping() {
            return Acquire::Ready(i.on_error(key, waba, class));
        }
        Acquire::Pending(RedisFuture {
            inner: self.inner.clone(),
            held: self.held.clone(),
            key,
            waba,
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
        // A number's cooldown is held here for as long as Redis answers it lasts.
        let mut held = None;
        let (script, keys, args): (Pick, Vec<String>, Vec<String>) = match lesson {
            Lesson::Throttled {
                wait,
                app_wide,
                code,
            } => {
                let cap = self.inner.limits.cooldown_cap(class);
                let number_wide = !app_wide && key.is_some();
                // At least this long (Redis may double a number's): known here at once.
                match (number_wide, key) {
                    (true, Some(n)) => self.held.hold(n, class, wait.min(cap), Scope::Cooldown),
                    _ => self.held.hold_app(class, wait.min(cap)),
                }
                held = Some((self.held.clone(), key.filter(|_| number_wide)));
                let keys = if number_wide {
                    vec![
                        self.key(Key::Cooldown(class, number)),
                        self.key(Key::CooldownRecord(class, number)),
                    ]
                } else {
                    let k = self.key(Key::AppCooldown(class));
                    vec![k.clone(), k]
                };
                let args = vec![
                    micros(wait.min(cap)).to_string(),
                    micros(cap).to_string(),
                    if number_wide { "1" } else { "0" }.to_owned(),
                    code.map(|c| c.to_string()).unwrap_or_default(),
                ];
                (|i| &i.cooldown, keys, args)
            }
            Lesson::WabaThrottled { waba, wait, code } => {
                let cap = self.inner.limits.cooldown_cap(class);
                (
                    |i| &i.cooldown,
                    vec![
                        self.key(Key::WabaCooldown(class, waba)),
                        self.key(Key::WabaCooldownRecord(class, waba)),
                    ],
                    vec![
                        micros(wait.min(cap)).to_string(),
                        micros(cap).to_string(),
                        "1".to_owned(),
                        code.map(|c| c.to_string()).unwrap_or_default(),
                    ],
                )
            }
            Lesson::WrongCode => {
                let (Some(_), Some(w)) = (key, self.inner.limits.wrong_codes) else {
                    return LearnFuture(None);
                };
                (
                    |i| &i.wrong_code,
                    vec![self.key(Key::WrongCodes(number))],
                    vec![w.window().as_millis().min(i64::MAX as u128).to_string()],
                )
            }
        };
        let store = self.inner.clone();
        // An app-wide cooldown lives on the app's shard, which every check needs.
        let app_keys = held.as_ref().is_some_and(|(_, n)| n.is_none());
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
            for k in &keys {
                inv.key(k);
            }
            for a in &args {
                inv.arg(a);
            }
            let record = async { inv.invoke_async::<redis::Value>(&mut i.conn()?).await };
            match tokio::time::timeout(i.config.timeout, record).await {
                Ok(Ok(left)) => {
                    // The end Redis keeps, which a repeated throttle may have doubled.
                    let left = redis::from_redis_value::<u64>(left).ok();
                    if let (Some((held, n)), Some(left)) = (held, left) {
                        let left = Duration::from_micros(left);
                        match n {
                            Some(n) => held.hold(n, class, left, Scope::Cooldown),
                            None => held.hold_app(class, left),
                        }
                    }
                }
                _ if app_keys => i.failed("could not record a lesson"),
                _ => i.number_failed("could not record a lesson"),
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

    /// Nothing can reach Redis without a runtime; the fallback answers and nothing panics.
    #[test]
    fn outside_a_runtime_the_fallback_answers() {
        let limits = Limits::quotas(&[Quota::new("1/h".parse().unwrap(), 1)], None);
        let config = StoreConfig {
            url: Some("redis://127.0.0.1:1".parse().unwrap()),
            key_prefix: "t:".into(),
            ..StoreConfig::default()
        };
        let store = RedisStore::new(config, limits).unwrap();
        store.learn(
            Some(2),
            QuotaClass::RequestCode,
            Lesson::Throttled {
                wait: Duration::from_secs(60),
                app_wide: false,
                code: None,
            },
        );
        let poll = |key| {
            let mut f = match store.acquire(Some(key), QuotaClass::RequestCode) {
                Acquire::Pending(f) => f,
                // The cooldown just learned is held without asking anyone.
                Acquire::Ready(a) if key == 2 => return a,
                Acquire::Ready(a) => panic!("Redis is not known to be down yet: {a:?}"),
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
