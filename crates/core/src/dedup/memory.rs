//! The dedup state in this process: flights in progress, live-code windows and
//! idempotency keys.
//!
//! A `request_code` touches one map entry per number, which holds both its flight and its
//! window: one lookup when the call begins, one when it ends, and no allocation unless
//! another caller joins (the outcome's channel is made for the first follower).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use tokio::sync::watch;
use tokio::time::Instant;

use super::begin::{Begin, Follow, Key, SendCode};
use super::config::DedupConfig;
use super::mark::{AlreadySent, Deduplicated};
use super::outcome::{AsOutcome, Outcome};
use crate::operation::{CodeMethod, NumberHasher, Progress};

/// A number's live code: confirmed by Meta, or possibly sent.
#[derive(Clone, Debug)]
struct Window {
    method: CodeMethod,
    /// When it stops being live (on tokio's clock, so a paused clock drives it in tests).
    until: Instant,
    confirmed: bool,
    /// The trace id of the answer that confirmed it: every repeat answers with it.
    fbtrace_id: Trace,
}

/// A trace id kept without an allocation when it is as short as Meta's (about 27
/// characters).
#[derive(Clone, Debug)]
enum Trace {
    None,
    Inline(u8, [u8; 32]),
    Long(Box<str>),
}

impl Trace {
    fn new(id: Option<&str>) -> Self {
        match id {
            None => Trace::None,
            Some(t) if t.len() <= 32 => {
                let mut bytes = [0; 32];
                bytes[..t.len()].copy_from_slice(t.as_bytes());
                Trace::Inline(t.len() as u8, bytes)
            }
            Some(t) => Trace::Long(t.into()),
        }
    }

    fn to_owned(&self) -> Option<String> {
        match self {
            Trace::None => None,
            // Copied from a `&str` whole, so the bytes are its UTF-8.
            Trace::Inline(len, bytes) => std::str::from_utf8(&bytes[..usize::from(*len)])
                .ok()
                .map(str::to_owned),
            Trace::Long(t) => Some(t.to_string()),
        }
    }
}

/// A call being sent, and the channel its outcome goes out on once someone waits for it.
#[derive(Default)]
struct Flight {
    tx: Option<watch::Sender<Option<Outcome>>>,
}

impl Flight {
    fn follow(&mut self) -> Follow {
        let tx = self.tx.get_or_insert_with(|| watch::channel(None).0);
        Follow::Channel(tx.subscribe())
    }
}

/// A number's `request_code` state.
#[derive(Default)]
struct Slot {
    flight: Option<Flight>,
    window: Option<Window>,
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
    /// A moment on both clocks, to tell a window's times on the wall clock.
    anchor: (Instant, SystemTime),
    /// `request_code` flights and live codes by number.
    codes: DashMap<(u64, u64), Slot, NumberHasher>,
    /// Other operations' flights (`register`, `deregister`).
    flights: DashMap<Key, Flight>,
    /// Idempotency keys' first outcomes.
    keys: DashMap<(u64, String), KeyRecord>,
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
                anchor: (Instant::now(), SystemTime::now()),
                codes: DashMap::with_hasher(NumberHasher::default()),
                flights: DashMap::new(),
                keys: DashMap::new(),
                since_sweep: AtomicUsize::new(0),
                sweep_after: AtomicUsize::new(SWEEP_EVERY),
            }),
        }
    }

    /// What a call for `key` does. The lead is made as the store's own lead (`wrap`) here,
    /// not wrapped later: the answer is moved a few times on every call's path.
    pub(crate) fn begin<L>(
        &self,
        key: Key,
        send: Option<SendCode>,
        wrap: impl FnOnce(MemoryLead) -> L,
    ) -> Begin<L> {
        let s = &*self.state;
        let Some(code) = &send else {
            // Single flight only.
            return match s.flights.entry(key.clone()) {
                dashmap::Entry::Occupied(mut f) => Begin::Follow(f.get_mut().follow()),
                dashmap::Entry::Vacant(v) => {
                    v.insert(Flight::default());
                    self.lead(key, None, wrap)
                }
            };
        };
        if let Some(k) = &code.idempotency_key {
            if let Some(begin) = s.replay(k, &key, code.method) {
                return begin;
            }
        }
        // The number's entry is held while its flight and window are read: a call that
        // finds neither leads, and no other call can lead beside it.
        let mut slot = s.codes.entry(key.slot()).or_default();
        if let Some(flight) = slot.flight.as_mut() {
            return Begin::Follow(flight.follow());
        }
        // A resend is not answered by the window (and its outcome replaces it): no need
        // to read the clock for it.
        if let (Some(w), false) = (&slot.window, code.resend) {
            let now = Instant::now();
            if w.until <= now {
                slot.window = None;
            } else if let Some(answer) = s.window_answer(w, code.method, now) {
                return answer;
            }
        }
        slot.flight = Some(Flight::default());
        drop(slot);
        self.lead(key, send, wrap)
    }

    fn lead<L>(
        &self,
        key: Key,
        send: Option<SendCode>,
        wrap: impl FnOnce(MemoryLead) -> L,
    ) -> Begin<L> {
        Begin::Lead(wrap(MemoryLead {
            state: self.state.clone(),
            key,
            send,
            progress: None,
            finished: false,
        }))
    }

    pub(crate) fn verified(&self, key: &Key) {
        let slot = key.slot();
        self.state.codes.remove_if(&slot, |_, s| s.flight.is_none());
        if let Some(mut s) = self.state.codes.get_mut(&slot) {
            s.window = None;
        }
    }
}

impl State {
    /// The first outcome of an idempotency key, or its refusal when the key was used for
    /// another number or method.
    fn replay<L>(&self, key: &str, call: &Key, method: CodeMethod) -> Option<Begin<L>> {
        let record = self.keys.get(&(call.slot().0, key.to_owned()))?;
        let now = Instant::now();
        if record.until <= now {
            drop(record);
            self.keys
                .remove_if(&(call.slot().0, key.to_owned()), |_, r| r.until <= now);
            return None;
        }
        if record.number != call.number || record.method != method {
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
    fn window_answer<L>(&self, w: &Window, method: CodeMethod, now: Instant) -> Option<Begin<L>> {
        if !w.confirmed {
            // A code may have gone out: send nothing; the caller decides (resend).
            return Some(Begin::Answer {
                outcome: Outcome::maybe_in_window(),
                how: Deduplicated::No,
                retry_after: Some(w.until - now),
            });
        }
        let expires_at = self.anchor.1 + w.until.duration_since(self.anchor.0);
        (w.method == method).then(|| Begin::Answer {
            outcome: Outcome::Sent {
                fbtrace_id: w.fbtrace_id.to_owned(),
                attempts: 0,
            },
            how: Deduplicated::AlreadySent(Box::new(AlreadySent {
                sent_at: expires_at.checked_sub(self.window).unwrap_or(expires_at),
                expires_at,
                method: w.method,
            })),
            retry_after: None,
        })
    }

    /// Records a call's end: the window (a code went out or may have), the idempotency
    /// key, then the flight's end, whose followers get the outcome. `outcome` is built only
    /// when someone needs it.
    fn finish(&self, key: &Key, send: Option<&SendCode>, ended: Ended<'_>) {
        let Some(send) = send else {
            if let Some((_, flight)) = self.flights.remove(key) {
                if let Some(tx) = flight.tx {
                    let _ = tx.send(Some(ended.outcome()));
                }
            }
            return;
        };
        let now = Instant::now();
        if let (Some(k), true) = (&send.idempotency_key, ended.is_answer()) {
            self.keys.insert(
                (key.slot().0, k.clone()),
                KeyRecord {
                    number: key.number,
                    method: send.method,
                    outcome: ended.outcome(),
                    until: now + self.ttl,
                },
            );
        }
        let slot_key = key.slot();
        let flight = match self.codes.get_mut(&slot_key) {
            Some(mut slot) => {
                // A code went out (confirmed) or may have: the number holds a live code. An
                // error answer or nothing sent leaves the window as it was.
                if let Some(confirmed) = ended.code_sent() {
                    slot.window = Some(Window {
                        method: send.method,
                        until: now + self.window,
                        confirmed,
                        fbtrace_id: Trace::new(ended.fbtrace_id()),
                    });
                }
                let flight = slot.flight.take();
                let empty = slot.window.is_none();
                drop(slot);
                if empty {
                    self.codes
                        .remove_if(&slot_key, |_, s| s.flight.is_none() && s.window.is_none());
                }
                flight
            }
            None => None,
        };
        if let Some(tx) = flight.and_then(|f| f.tx) {
            let _ = tx.send(Some(ended.outcome()));
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
        self.codes
            .retain(|_, s| s.flight.is_some() || s.window.as_ref().is_some_and(|w| w.until > now));
        self.keys.retain(|_, r| r.until > now);
        let left = self.codes.len() + self.keys.len();
        self.sweep_after
            .store(SWEEP_EVERY.max(left), Ordering::Relaxed);
    }
}

/// How a leading call ended: with its answer, or cancelled.
#[derive(Clone, Copy)]
pub(crate) enum Ended<'a> {
    /// The call's result, as an outcome.
    With(&'a dyn AsOutcome),
    /// Given up: it may have sent, or certainly did not.
    Cancelled { may_have_sent: bool },
}

impl Ended<'_> {
    fn outcome(&self) -> Outcome {
        match self {
            Ended::With(r) => r.outcome(),
            Ended::Cancelled { may_have_sent } => Outcome::abandoned(*may_have_sent),
        }
    }

    fn code_sent(&self) -> Option<bool> {
        match self {
            Ended::With(r) => r.code_sent(),
            Ended::Cancelled { may_have_sent } => may_have_sent.then_some(false),
        }
    }

    fn fbtrace_id(&self) -> Option<&str> {
        match self {
            Ended::With(r) => r.fbtrace_id(),
            Ended::Cancelled { .. } => None,
        }
    }

    fn is_answer(&self) -> bool {
        matches!(self, Ended::With(r) if r.is_answer())
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

    /// Records `result` once; a second call (a future polled after it completed) does
    /// nothing.
    pub(crate) fn finish(&mut self, result: &dyn AsOutcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.state
            .finish(&self.key, self.send.as_ref(), Ended::With(result));
    }
}

impl Drop for MemoryLead {
    fn drop(&mut self) {
        if !self.finished {
            // Cancelled: whether its request may have been written decides whether the
            // number holds a code that may have gone out (no one may send blindly).
            let may_have_sent = self
                .progress
                .as_ref()
                .is_none_or(|p| p.may_have_reached_server());
            self.state.finish(
                &self.key,
                self.send.as_ref(),
                Ended::Cancelled { may_have_sent },
            );
        }
        if let Some(p) = self.progress.take() {
            Progress::recycle(p);
        }
    }
}
