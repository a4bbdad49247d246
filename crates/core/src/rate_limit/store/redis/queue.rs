//! The batcher: checks ready together leave in one script call (one Redis) or one call
//! per hash tag and part (a cluster), at most two batches out at once.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::batch::{admission, Check, Part};
use super::probe::why;
use super::state::Inner;

/// The most checks one script call answers.
const MAX_BATCH: usize = 128;

/// The most script calls out at once (see [`batcher`]).
const IN_FLIGHT: usize = 2;

/// The way into the batcher task, started on first use in the caller's runtime (and
/// again if that runtime has gone). Dropping the last store ends the task.
pub(super) struct Queue {
    pub(super) tx: Mutex<Option<mpsc::UnboundedSender<Check>>>,
}

impl Queue {
    /// Hands a check to the batcher, or gives it back when no runtime can run one.
    pub(super) fn push(&self, inner: &Arc<Inner>, check: Check) -> Result<(), Check> {
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
    if inner.clustered() {
        // Shard by shard, each part bounded by the same deadline.
        let answers = super::cluster::run(&inner, &checks, oldest + inner.config.timeout).await;
        for (c, a) in checks.into_iter().zip(answers) {
            let _ = c
                .reply
                .send(a.map(|a| admission(a, inner.fallback.tallies())));
        }
        return;
    }
    let cmd = inner.batch_command(&checks.iter().collect::<Vec<_>>(), Part::All);
    // The store timeout runs from when the oldest check was queued, so time spent
    // waiting for a batch to leave counts too.
    let answer = tokio::time::timeout_at(
        oldest + inner.config.timeout,
        inner.eval::<Vec<i64>>(&inner.acquire, &cmd),
    )
    .await;
    let answers: Vec<i64> = match answer {
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
        let _ = c.reply.send(Some(admission(a, inner.fallback.tallies())));
    }
}
