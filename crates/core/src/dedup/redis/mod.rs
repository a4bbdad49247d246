//! The dedup state in Redis, shared by every replica: a flight key with its leader's
//! lease, a journal entry written before a code may go out, the live-code window and the
//! idempotency records. A call costs two round trips: one script before it is sent (the
//! journal entry), one after (the outcome).
//!
//! A leader keeps its lease while it lives; one that crashes lets it run out, and its
//! journal entry then says that a code may have been sent, so no replica sends blindly.
//! While Redis cannot be used, the caller is told ([`Unavailable`]) what
//! `on_store_error` says to do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;

mod lead;
mod shared;

pub(crate) use self::lead::RedisLead;
use self::shared::{
    at_ms, idempotency_key, ms, Keys, Record, Scripts, Shared, LEASE, MAX_POLL_ERRORS, POLL_EVERY,
};
use super::begin::{Begin, BoxFuture, Follow, Key, SendCode};
use super::config::DedupConfig;
use super::mark::{AlreadySent, Deduplicated};
use super::outcome::Outcome;
use crate::error::{Error, ErrorKind};
use crate::operation::CodeMethod;
use crate::rate_limit::redis::{OnStoreError, RedisStore};

/// The Redis dedup state, shared by every clone.
#[derive(Clone)]
pub(crate) struct RedisDedup {
    shared: Arc<Shared>,
}

/// Redis cannot be used right now: what `on_store_error` says to do instead.
pub(crate) enum Unavailable {
    /// Refuse the call.
    Deny,
    /// Use this process's own dedup state.
    Local,
}

impl RedisDedup {
    pub(crate) fn new(store: &RedisStore, config: &DedupConfig) -> Self {
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            h.write_u32(std::process::id());
            h.finish()
        };
        Self {
            shared: Arc::new(Shared {
                store: store.clone(),
                scripts: Scripts {
                    begin: Script::new(include_str!("begin.lua")),
                    finish: Script::new(include_str!("finish.lua")),
                    poll: Script::new(include_str!("poll.lua")),
                    refresh: Script::new(include_str!("refresh.lua")),
                },
                window: config.window,
                ttl: config.idempotency_ttl,
                next_id: AtomicU64::new(seed),
            }),
        }
    }

    /// Decides what a sending call does, in one round trip.
    pub(crate) async fn begin(
        &self,
        key: &Key,
        send: Option<&SendCode>,
    ) -> Result<Begin<RedisLead>, Unavailable> {
        let shared = &self.shared;
        let unavailable = || match shared.store.on_store_error() {
            OnStoreError::Deny => Unavailable::Deny,
            OnStoreError::Local | OnStoreError::Allow => Unavailable::Local,
        };
        if shared.store.skipping() {
            return Err(unavailable());
        }
        match tokio::time::timeout(shared.store.timeout(), shared.begin(key, send)).await {
            Ok(Ok(begin)) => Ok(begin),
            Ok(Err(e)) => {
                shared.store.failed_on(&e);
                Err(unavailable())
            }
            Err(_) => {
                shared.store.failed("timeout");
                Err(unavailable())
            }
        }
    }

    /// Ends a number's live-code window (a code was verified).
    pub(crate) fn verified(&self, key: &Key) -> BoxFuture<()> {
        let shared = self.shared.clone();
        let keys = Keys::of(shared.store.key_prefix(), key);
        Box::pin(async move {
            let del = async {
                let mut conn = shared.store.connection()?;
                redis::cmd("DEL")
                    .arg(&keys.window)
                    .arg(&keys.journal)
                    .query_async::<i64>(&mut conn)
                    .await
            };
            if !matches!(
                tokio::time::timeout(shared.store.timeout(), del).await,
                Ok(Ok(_))
            ) {
                tracing::warn!("dedup: could not end a number's live-code window in Redis");
            }
        })
    }
}

impl Shared {
    async fn begin(
        self: &Arc<Self>,
        key: &Key,
        send: Option<&SendCode>,
    ) -> redis::RedisResult<Begin<RedisLead>> {
        let prefix = self.store.key_prefix();
        let keys = Keys::of(prefix, key);
        let id = format!("{:x}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let clustered = self.store.clustered();
        let mut conn = self.store.connection()?;
        let mut inv = self.scripts.begin.prepare_invoke();
        inv.key(&keys.flight).key(&keys.journal).key(&keys.window);
        if let Some(k) = send.and_then(|s| s.idempotency_key.as_deref()) {
            let record = idempotency_key(prefix, key.tenant_str(), k, clustered);
            if clustered {
                let found: Option<String> = redis::cmd("GET")
                    .arg(&record)
                    .query_async(&mut conn)
                    .await?;
                if let Some(found) = found {
                    return Ok(replay(&found, key.number, send));
                }
            } else {
                inv.key(record);
            }
        }
        inv.arg(&id)
            .arg(ms(LEASE))
            .arg(send.map_or("", |s| s.method.as_str()))
            .arg(if send.is_some_and(|s| s.resend) {
                "1"
            } else {
                "0"
            })
            .arg(ms(self.window));
        let reply: Vec<String> = inv.invoke_async(&mut conn).await?;
        let field = |i: usize| reply.get(i).map_or("", String::as_str);
        let number = |i: usize| field(i).parse::<i64>().unwrap_or(0).max(0) as u64;
        Ok(match field(0) {
            "lead" => Begin::Lead(RedisLead::new(self.clone(), keys, id, key, send)),
            "follow" => Begin::Follow(Follow::Polling(Box::pin(
                self.clone().follow(keys, field(1).to_owned()),
            ))),
            "replay" => replay(field(1), key.number, send),
            "maybe" => Begin::Answer {
                outcome: Outcome::maybe_in_window(),
                how: Deduplicated::No,
                retry_after: Some(Duration::from_millis(number(1))),
            },
            "sent" => Begin::Answer {
                outcome: Outcome::Sent {
                    fbtrace_id: Some(field(3)).filter(|t| !t.is_empty()).map(str::to_owned),
                    attempts: 0,
                },
                how: Deduplicated::AlreadySent(Box::new(AlreadySent {
                    sent_at: at_ms(number(1)),
                    expires_at: at_ms(number(2)),
                    method: send.map_or(CodeMethod::Sms, |s| s.method),
                })),
                retry_after: None,
            },
            other => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "unexpected answer from the dedup script",
                    other.chars().take(16).collect::<String>(),
                )))
            }
        })
    }

    /// Waits for the leader `leader`'s outcome.
    async fn follow(self: Arc<Self>, keys: Keys, leader: String) -> Outcome {
        let outcome_key = keys.outcome(&leader);
        let mut errors = 0;
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            let look = async {
                let mut conn = self.store.connection()?;
                self.scripts
                    .poll
                    .key(&keys.flight)
                    .key(&outcome_key)
                    .key(&keys.journal)
                    .arg(&leader)
                    .invoke_async::<Vec<String>>(&mut conn)
                    .await
            };
            match tokio::time::timeout(self.store.timeout(), look).await {
                Ok(Ok(reply)) => match reply.first().map(String::as_str) {
                    Some("done") => {
                        return reply
                            .get(1)
                            .and_then(|o| serde_json::from_str(o).ok())
                            .unwrap_or_else(|| Outcome::abandoned(true))
                    }
                    Some("wait") => errors = 0,
                    _ => return lost(),
                },
                _ => {
                    errors += 1;
                    if errors >= MAX_POLL_ERRORS {
                        return Outcome::abandoned(true);
                    }
                }
            }
        }
    }
}

/// A leader that stopped without an outcome (its process died): a code may have gone out.
fn lost() -> Outcome {
    Outcome::MaybeSent {
        kind: ErrorKind::Transport.as_str().to_owned(),
        message: "an earlier call for this number stopped without an outcome after its request may have been sent".to_owned(),
        attempts: 1,
    }
}

/// The first outcome of an idempotency key, or its refusal when the key was used for
/// another number or method.
fn replay<L>(record: &str, number: u64, send: Option<&SendCode>) -> Begin<L> {
    let Ok(record) = serde_json::from_str::<Record>(record) else {
        return Begin::Refuse(Error::invalid_input(
            "this idempotency key's stored outcome cannot be read; use a new key",
        ));
    };
    let method = send.map_or("", |s| s.method.as_str());
    if record.number != number || record.method != method {
        return Begin::Refuse(Error::invalid_input(
            "this idempotency key was first used with another number or method; use a new key for a new request",
        ));
    }
    Begin::Answer {
        outcome: record.outcome,
        how: Deduplicated::Replayed,
        retry_after: None,
    }
}
