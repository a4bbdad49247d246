//! The dedup state in this process: flights in progress, live-code windows and
//! idempotency keys.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::watch;
use tokio::time::Instant;

use super::begin::{Begin, Follow, Key, SendCode};
use super::config::DedupConfig;
use super::mark::{AlreadySent, Deduplicated};
use super::outcome::Outcome;
use crate::operation::{CodeMethod, Progress};

/// A number's live code: confirmed by Meta, or possibly sent.
#[derive(Clone, Copy, Debug)]
struct Window {
    method: CodeMethod,
    sent_at: SystemTime,
    expires_at: SystemTime,
    until: Instant,
    confirmed: bool,
}

/// What an idempotency key answered first.
#[derive(Clone, Debug)]
struct KeyRecord {
    number: u64,
    method: CodeMethod,
    outcome: Outcome,
    until: Instant,
}

struct State {
    window: Duration,
    ttl: Duration,
    /// Calls being sent, with the channel their outcome goes out on.
    flights: DashMap<Key, watch::Sender<Option<Outcome>>>,
    /// Live codes by number.
    windows: DashMap<u64, Window>,
    /// Idempotency keys' first outcomes.
    keys: DashMap<String, KeyRecord>,
    /// Outcomes recorded since expired windows and keys were last swept out.
    since_sweep: AtomicUsize,
    /// How many outcomes the next sweep waits for.
    sweep_after: AtomicUsize,
}

/// The fewest outcomes between two sweeps; past that, a sweep waits for as many outcomes
/// as there are entries, so sweeping costs O(1) per call.
const SWEEP_EVERY: usize = 4096;

/// The in-process dedup state, shared by every clone.
#[derive(Clone)]
pub(crate) struct MemoryDedup {
    state: Arc<State>,
}

impl MemoryDedup {
    pub(crate) fn new(config: &DedupConfig) -> Self {
        Self {
            state: Arc::new(State {
                window: config.window,
                ttl: config.idempotency_ttl,
                flights: DashMap::new(),
                windows: DashMap::new(),
                keys: DashMap::new(),
                since_sweep: AtomicUsize::new(0),
                sweep_after: AtomicUsize::new(SWEEP_EVERY),
            }),
        }
    }

    pub(crate) fn begin(&self, key: Key, send: Option<SendCode>) -> Begin<MemoryLead> {
        let s = &*self.state;
        let now = Instant::now();
        if let Some(send) = &send {
            if let Some(k) = &send.idempotency_key {
                if let Some(begin) = s.replay(k, key.number, send.method, now) {
                    return begin;
                }
            }
        }
        // The flight's entry is held while the window is read: a call that finds no
        // flight and no live code leads, and no other call can lead beside it.
        let vacant = match s.flights.entry(key.clone()) {
            Entry::Occupied(flight) => {
                return Begin::Follow(Follow::Channel(flight.get().subscribe()))
            }
            Entry::Vacant(v) => v,
        };
        if let Some(send) = send.as_ref().filter(|s| !s.resend) {
            if let Some(answer) = s.window_answer(key.number, send.method, now) {
                return answer;
            }
        }
        let (tx, _) = watch::channel(None);
        vacant.insert(tx);
        Begin::Lead(MemoryLead {
            state: self.state.clone(),
            key,
            send,
            progress: None,
            finished: false,
        })
    }

    pub(crate) fn verified(&self, number: u64) {
        self.state.windows.remove(&number);
    }
}

impl State {
    /// The first outcome of an idempotency key, or its refusal when the key was used for
    /// another number or method.
    fn replay<L>(
        &self,
        key: &str,
        number: u64,
        method: CodeMethod,
        now: Instant,
    ) -> Option<Begin<L>> {
        let record = self.keys.get(key)?;
        if record.until <= now {
            drop(record);
            self.keys.remove_if(key, |_, r| r.until <= now);
            return None;
        }
        if record.number != number || record.method != method {
            return Some(Begin::Refuse(crate::Error::invalid_input(
                "this idempotency key was first used with another number or method; use a new key for a new request",
            )));
        }
        Some(Begin::Answer {
            outcome: record.outcome.clone(),
            how: Deduplicated::Replayed,
            retry_after: None,
        })
    }

    /// The answer a live code gives a new request with `method`, if any.
    fn window_answer<L>(&self, number: u64, method: CodeMethod, now: Instant) -> Option<Begin<L>> {
        let w = *self.windows.get(&number)?;
        if w.until <= now {
            self.windows.remove_if(&number, |_, w| w.until <= now);
            return None;
        }
        let left = w.until - now;
        if !w.confirmed {
            // A code may have gone out: send nothing; the caller decides (resend).
            return Some(Begin::Answer {
                outcome: Outcome::abandoned(true),
                how: Deduplicated::No,
                retry_after: Some(left),
            });
        }
        (w.method == method).then(|| Begin::Answer {
            outcome: Outcome::Sent {
                fbtrace_id: None,
                attempts: 0,
            },
            how: Deduplicated::AlreadySent(Box::new(AlreadySent {
                sent_at: w.sent_at,
                expires_at: w.expires_at,
                method: w.method,
            })),
            retry_after: None,
        })
    }

    fn finish(&self, key: &Key, send: Option<&SendCode>, outcome: Outcome) {
        let now = Instant::now();
        if let Some(send) = send {
            // The window first, then the flight's end: a call arriving in between follows
            // the flight, one arriving after finds the window.
            // A code went out (confirmed) or may have: the number holds a live code. An
            // error answer or nothing sent leaves the window as it was.
            if let Some(confirmed) = outcome.code_sent() {
                let sent_at = SystemTime::now();
                self.windows.insert(
                    key.number,
                    Window {
                        method: send.method,
                        sent_at,
                        expires_at: sent_at + self.window,
                        until: now + self.window,
                        confirmed,
                    },
                );
            }
            if let (Some(k), true) = (&send.idempotency_key, outcome.is_answer()) {
                self.keys.insert(
                    k.clone(),
                    KeyRecord {
                        number: key.number,
                        method: send.method,
                        outcome: outcome.clone(),
                        until: now + self.ttl,
                    },
                );
            }
        }
        if let Some((_, tx)) = self.flights.remove(key) {
            let _ = tx.send(Some(outcome));
        }
        self.sweep(now);
    }

    /// Drops expired windows and keys once enough outcomes were recorded: numbers that
    /// are never asked for again must not stay forever.
    fn sweep(&self, now: Instant) {
        let since = self.since_sweep.fetch_add(1, Ordering::Relaxed) + 1;
        if since < self.sweep_after.load(Ordering::Relaxed) {
            return;
        }
        self.since_sweep.store(0, Ordering::Relaxed);
        self.windows.retain(|_, w| w.until > now);
        self.keys.retain(|_, r| r.until > now);
        let left = self.windows.len() + self.keys.len();
        self.sweep_after
            .store(SWEEP_EVERY.max(left), Ordering::Relaxed);
    }
}

/// The lead of a call sending from this process.
pub(crate) struct MemoryLead {
    state: Arc<State>,
    key: Key,
    send: Option<SendCode>,
    progress: Option<Arc<Progress>>,
    finished: bool,
}

impl MemoryLead {
    pub(crate) fn watch(&mut self, progress: Arc<Progress>) {
        self.progress = Some(progress);
    }

    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.state.finish(&self.key, self.send.as_ref(), outcome);
    }
}

impl Drop for MemoryLead {
    fn drop(&mut self) {
        if !self.finished {
            // Cancelled: whether its request may have been written decides whether the
            // number holds a code that may have gone out (no one may send blindly).
            let maybe = self
                .progress
                .as_ref()
                .is_none_or(|p| p.may_have_reached_server());
            self.state
                .finish(&self.key, self.send.as_ref(), Outcome::abandoned(maybe));
        }
    }
}
