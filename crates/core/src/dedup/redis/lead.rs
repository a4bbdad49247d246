//! The lead of a call sending from this replica: its lease, and its outcome in Redis.

use std::sync::Arc;

use super::shared::{idempotency_key, ms, Keys, Record, Shared, LEASE, OUTCOME_KEPT, RENEW_EVERY};
use crate::dedup::begin::{BoxFuture, Key, SendCode};
use crate::dedup::outcome::{AsOutcome, Outcome};
use crate::operation::Progress;

/// The lead of a call sending from this replica: renews its lease while it lives, and
/// writes its outcome when it ends (or, dropped unfinished, what its progress allows).
pub(crate) struct RedisLead {
    shared: Arc<Shared>,
    keys: Keys,
    id: String,
    number: u64,
    tenant: String,
    send: Option<SendCode>,
    progress: Option<Arc<Progress>>,
    renew: Option<tokio::task::AbortHandle>,
}

impl RedisLead {
    pub(super) fn new(
        shared: Arc<Shared>,
        keys: Keys,
        id: String,
        key: &Key,
        send: Option<&SendCode>,
    ) -> Self {
        let renew = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let (shared, flight, id) = (shared.clone(), keys.flight.clone(), id.clone());
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    let renew = async {
                        let mut conn = shared.store.connection()?;
                        shared
                            .scripts
                            .refresh
                            .key(&flight)
                            .arg(&id)
                            .arg(ms(LEASE))
                            .invoke_async::<i64>(&mut conn)
                            .await
                    };
                    let _ = tokio::time::timeout(shared.store.timeout(), renew).await;
                }
            })
            .abort_handle()
        });
        Self {
            shared,
            keys,
            id,
            number: key.number,
            tenant: key.tenant_str().to_owned(),
            send: send.cloned(),
            progress: None,
            renew,
        }
    }

    pub(crate) fn watch(&mut self, progress: Arc<Progress>) {
        self.progress = Some(progress);
    }

    /// The write of `outcome`; `None` if this lead was already finished.
    pub(crate) fn finish(&mut self, outcome: Outcome) -> Option<BoxFuture<()>> {
        if self.id.is_empty() {
            return None;
        }
        Some(Box::pin(self.write(outcome)))
    }

    /// The script call that records `outcome`; `self` is left spent.
    fn write(
        &mut self,
        outcome: Outcome,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        if let Some(r) = self.renew.take() {
            r.abort();
        }
        let shared = self.shared.clone();
        let prefix = shared.store.key_prefix().to_owned();
        let send = self.send.take();
        let outcome_key = self.keys.outcome(&self.id);
        let keys = std::mem::replace(
            &mut self.keys,
            Keys {
                flight: String::new(),
                journal: String::new(),
                window: String::new(),
                base: String::new(),
            },
        );
        let id = std::mem::take(&mut self.id);
        let number = self.number;
        let tenant = std::mem::take(&mut self.tenant);
        async move {
            let class = match outcome.code_sent() {
                Some(true) => "sent",
                Some(false) => "maybe",
                None => "none",
            };
            let method = send.as_ref().map_or("", |s| s.method.as_str());
            let text = serde_json::to_string(&outcome).unwrap_or_default();
            let trace = outcome.fbtrace_id().unwrap_or_default().to_owned();
            let mut inv = shared.scripts.finish.prepare_invoke();
            inv.key(&keys.flight)
                .key(&keys.journal)
                .key(&keys.window)
                .key(&outcome_key);
            let mut record = String::new();
            let clustered = shared.store.clustered();
            // On a cluster: the record, written after the script (its own hash tag).
            let mut apart = None;
            if let (Some(k), true) = (
                send.as_ref().and_then(|s| s.idempotency_key.as_deref()),
                outcome.is_answer(),
            ) {
                let key = idempotency_key(&prefix, &tenant, k, clustered);
                match clustered {
                    true => apart = Some(key),
                    false => {
                        inv.key(key);
                    }
                }
                record = serde_json::to_string(&Record {
                    number,
                    method: method.to_owned(),
                    outcome,
                })
                .unwrap_or_default();
            }
            inv.arg(&id)
                .arg(class)
                .arg(&text)
                .arg(method)
                .arg(ms(shared.window))
                .arg(ms(OUTCOME_KEPT))
                .arg(&record)
                .arg(ms(shared.ttl))
                .arg(&trace);
            let write = async {
                let mut conn = shared.store.connection()?;
                let done = inv.invoke_async::<String>(&mut conn).await?;
                if let Some(key) = &apart {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(&record)
                        .arg("PX")
                        .arg(ms(shared.ttl))
                        .query_async::<()>(&mut conn)
                        .await?;
                }
                Ok::<_, redis::RedisError>(done)
            };
            if !matches!(
                tokio::time::timeout(shared.store.timeout(), write).await,
                Ok(Ok(_))
            ) {
                shared.store.failed("dedup: could not record an outcome");
                tracing::warn!(
                    "dedup: could not record an outcome in Redis; its followers will learn that a code may have been sent"
                );
            }
        }
    }
}

impl Drop for RedisLead {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        // Cancelled: whether its request may have been written decides what the number's
        // followers and later calls learn. Written by a task of its own, since the caller
        // has gone.
        let maybe = self
            .progress
            .as_ref()
            .is_none_or(|p| p.may_have_reached_server());
        let write = self.write(Outcome::abandoned(maybe));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(write);
        } else if let Some(r) = self.renew.take() {
            r.abort();
        }
    }
}
