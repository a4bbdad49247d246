//! What the Redis store holds for one number, for operators: read and cleared, on the
//! state every replica shares.

use std::time::Duration;

use redis::Script;

use super::keys::{Key, Number};
use super::RedisStore;
use crate::error::Error;
use crate::error::GraphCode;
use crate::rate_limit::store::inspect::{HeldCooldown, NumberLimits};
use crate::rate_limit::store::QuotaClass;
#[cfg(feature = "metrics")]
use crate::rate_limit::store::{StoreObserver, StoreView};

impl RedisStore {
    /// What the metrics read of this store (its fallback's tallies and cooldowns, the
    /// checks answered by `on_store_error`), without keeping it alive.
    #[cfg(feature = "metrics")]
    pub(crate) fn observer(&self) -> StoreObserver {
        let weak = std::sync::Arc::downgrade(&self.inner);
        Box::new(move || {
            let inner = weak.upgrade()?;
            let fallbacks = inner.fallbacks.load(std::sync::atomic::Ordering::Relaxed);
            let m = &inner.fallback;
            Some(StoreView::of(m.tallies(), m.active_cooldowns(), fallbacks))
        })
    }

    /// What Redis holds for `number` (a [`PhoneNumberId::key`]): its cooldowns still in
    /// force (the app's too, as they stop it as well), wrong codes in the current window
    /// and the registration budget left.
    ///
    /// # Errors
    ///
    /// `transport` when Redis does not answer within the store timeout.
    ///
    /// [`PhoneNumberId::key`]: crate::PhoneNumberId::key
    pub async fn inspect(&self, number: u64) -> Result<NumberLimits, Error> {
        let n = Number(Some(number));
        // The number's keys, then the app's: two hash tags, two reads on a cluster.
        let mut keys: Vec<String> = Vec::with_capacity(10);
        keys.extend(QuotaClass::ALL.map(|c| self.key(Key::Cooldown(c, n))));
        keys.extend(QuotaClass::ALL.map(|c| self.key(Key::CooldownRecord(c, n))));
        keys.push(self.key(Key::WrongCodes(n)));
        keys.push(self.key(Key::Registration(n)));
        let app: Vec<String> = QuotaClass::ALL
            .map(|c| self.key(Key::AppCooldown(c)))
            .into();
        let window = self
            .inner
            .limits
            .registration
            .map_or(0, |r| r.window().as_micros());
        let script = Script::new(include_str!("show.lua"));
        let show = |keys: &[String], log: bool| {
            let mut inv = script.prepare_invoke();
            for k in keys {
                inv.key(k);
            }
            inv.arg(window.min(i64::MAX as u128).to_string())
                .arg(if log { "1" } else { "0" });
            inv
        };
        let (mut reply, app) = (
            self.run(show(&keys, true)).await?,
            self.run(show(&app, false)).await?,
        );
        // Laid out as one read: now, own cooldowns, records, the app's, wrong codes, log.
        let tail = reply.split_off(9);
        reply.extend(app.into_iter().skip(1));
        reply.extend(tail);
        let field = |i: usize| reply.get(i).map_or("", String::as_str);
        let int = |i: usize| field(i).parse::<u64>().unwrap_or(0);
        let now = int(0);
        let mut out = NumberLimits {
            registrations_left: self.inner.limits.registration.map(|r| r.max()),
            ..NumberLimits::default()
        };
        for (j, class) in QuotaClass::ALL.into_iter().enumerate() {
            let (own, app) = (int(1 + j), int(9 + j));
            // The record: "length|end|code".
            let code = field(5 + j)
                .splitn(3, '|')
                .nth(2)
                .and_then(|c| c.parse::<GraphCode>().ok());
            let (until, code) = if own >= app { (own, code) } else { (app, None) };
            if until > now {
                out.cooldowns.push(HeldCooldown::new(
                    class,
                    Duration::from_micros(until - now),
                    code,
                ));
            }
        }
        out.wrong_codes = u32::try_from(int(13)).unwrap_or(u32::MAX);
        if let Some(r) = self.inner.limits.registration {
            let used = u32::try_from(int(14)).unwrap_or(u32::MAX);
            out.registrations_left = Some(r.max().saturating_sub(used));
        }
        Ok(out)
    }

    /// Removes `number`'s cooldowns in Redis (and in this replica's fallback), of one
    /// kind of call or of every kind; returns how many were in force. The app's
    /// cooldowns stay.
    ///
    /// # Errors
    ///
    /// `transport` when Redis does not answer within the store timeout.
    pub async fn clear(&self, number: u64, kind: Option<QuotaClass>) -> Result<usize, Error> {
        self.inner.fallback.clear(number, kind);
        self.held.clear(number, kind);
        let n = Number(Some(number));
        let classes: Vec<QuotaClass> = QuotaClass::ALL
            .into_iter()
            .filter(|c| kind.is_none_or(|k| k == *c))
            .collect();
        let ends: Vec<String> = classes
            .iter()
            .map(|c| self.key(Key::Cooldown(*c, n)))
            .collect();
        let records: Vec<String> = classes
            .iter()
            .map(|c| self.key(Key::CooldownRecord(*c, n)))
            .collect();
        let mut pipe = redis::pipe();
        pipe.atomic().del(&ends).del(&records);
        let conn = self.inner.conn().map_err(|e| self.unreachable(&e));
        let (cleared, _): (usize, usize) =
            match tokio::time::timeout(self.inner.config.timeout, async {
                pipe.query_async(&mut conn?)
                    .await
                    .map_err(|e| self.unreachable(&e))
            })
            .await
            {
                Ok(r) => r?,
                Err(_) => return Err(self.timed_out()),
            };
        Ok(cleared)
    }

    async fn run(&self, inv: redis::ScriptInvocation<'_>) -> Result<Vec<String>, Error> {
        let call = async {
            let mut conn = self.inner.conn().map_err(|e| self.unreachable(&e))?;
            inv.invoke_async(&mut conn)
                .await
                .map_err(|e| self.unreachable(&e))
        };
        match tokio::time::timeout(self.inner.config.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out()),
        }
    }

    fn unreachable(&self, e: &redis::RedisError) -> Error {
        Error::transport(
            std::io::Error::other(format!(
                "Redis at {} answered with: {}",
                self.inner.url(),
                super::probe::why(e)
            )),
            false,
        )
    }

    fn timed_out(&self) -> Error {
        Error::transport(
            std::io::Error::other(format!(
                "Redis at {} did not answer within {}",
                self.inner.url(),
                crate::duration::format(self.inner.config.timeout)
            )),
            false,
        )
    }
}
