//! Every code the sandbox "sent", oldest first, and counts of every answer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::bounded::BoundedMap;

/// One code the sandbox sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// The number it went to.
    pub phone_number_id: String,
    /// `SMS` or `VOICE`.
    pub code_method: String,
    /// The language asked for.
    pub language: String,
    /// The six digits (a sandbox code: never a real one).
    pub code: String,
    /// When it was sent, RFC 3339 UTC.
    pub sent_at: String,
    /// The trace id of the answer that sent it.
    pub fbtrace_id: String,
    /// `request_code`, or `register` / `deregister` (recorded without the PIN).
    #[serde(default = "request_code")]
    pub operation: String,
}

fn request_code() -> String {
    "request_code".to_owned()
}

/// The outbox, shared by the server and the handle.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    inner: Arc<Mutex<Entries>>,
}

#[derive(Debug)]
struct Entries {
    entries: VecDeque<OutboxEntry>,
    max: usize,
    sent: u64,
    /// Codes per number; with `max`, only the most recent `max` numbers are kept.
    sent_to: BoundedMap<u64>,
}

impl Default for Entries {
    fn default() -> Self {
        Self {
            entries: VecDeque::new(),
            max: 0,
            sent: 0,
            sent_to: BoundedMap::new(0),
        }
    }
}

impl Outbox {
    pub(crate) fn with_max(max: usize) -> Self {
        let outbox = Self::default();
        {
            let mut e = outbox.lock();
            e.max = max;
            e.sent_to = BoundedMap::new(max);
        }
        outbox
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave a half-written queue.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, entry: OutboxEntry) {
        let mut e = self.lock();
        if e.max > 0 && e.entries.len() >= e.max {
            e.entries.pop_front();
        }
        if entry.operation == "request_code" {
            *e.sent_to.entry(&entry.phone_number_id) += 1;
            e.sent += 1;
        }
        e.entries.push_back(entry);
    }

    /// How many codes went to one number, including entries no longer kept (with
    /// `max_entries`, for the most recent `max_entries` numbers only).
    pub fn sent_to(&self, phone_number_id: &str) -> u64 {
        self.lock()
            .sent_to
            .get(phone_number_id)
            .copied()
            .unwrap_or(0)
    }

    /// Every entry kept, oldest first.
    pub fn entries(&self) -> Vec<OutboxEntry> {
        self.lock().entries.iter().cloned().collect()
    }

    /// Every code sent, including entries no longer kept (register/deregister calls are
    /// recorded but are not codes).
    pub fn sent(&self) -> u64 {
        self.lock().sent
    }

    /// The entries of one number, oldest first.
    pub fn entries_for(&self, phone_number_id: &str) -> Vec<OutboxEntry> {
        self.lock()
            .entries
            .iter()
            .filter(|e| e.phone_number_id == phone_number_id)
            .cloned()
            .collect()
    }

    /// The newest code sent to a number.
    pub fn last_code(&self, phone_number_id: &str) -> Option<String> {
        self.lock()
            .entries
            .iter()
            .rev()
            .find(|e| e.phone_number_id == phone_number_id && e.operation == "request_code")
            .map(|e| e.code.clone())
    }

    /// How many entries are kept (every code sent, unless `max_entries` is set).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no code was sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counts of the answers the sandbox gave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// Every request answered (or dropped) on the API paths.
    pub requests: u64,
    /// Every request that arrived on the API paths, counted on arrival: a request still
    /// being answered (a hang, a latency fault) is here and not yet in `requests`.
    pub received: u64,
    /// Answers by HTTP status; `dropped` for connections closed without an answer.
    pub by_status: BTreeMap<String, u64>,
    /// Error answers by Graph code.
    pub by_error_code: BTreeMap<String, u64>,
    /// Requests by operation (`request_code`, `verify_code`).
    pub by_operation: BTreeMap<String, u64>,
    /// Codes sent, counted even when the outbox keeps fewer entries.
    pub codes_sent: u64,
    /// Requests being handled right now.
    pub in_flight: u64,
    /// Client connections open right now.
    pub open_connections: u64,
    /// Requests authorized by each tenant's token.
    pub by_tenant: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct StatsCell(Arc<Mutex<Stats>>);

/// Counts a request as in flight until dropped, even if its connection goes away.
pub(crate) struct InFlight(StatsCell);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

/// Counts a connection as open until dropped.
pub(crate) struct OpenConnection(StatsCell);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut s = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
        s.open_connections = s.open_connections.saturating_sub(1);
    }
}

impl StatsCell {
    pub(crate) fn connection(&self) -> OpenConnection {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open_connections += 1;
        OpenConnection(self.clone())
    }

    pub(crate) fn enter(&self) -> InFlight {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.in_flight += 1;
        s.received += 1;
        drop(s);
        InFlight(self.clone())
    }

    pub(crate) fn record(&self, operation: &str, status: Option<u16>, code: Option<i64>) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        let status = status.map_or_else(|| "dropped".to_owned(), |s| s.to_string());
        *s.by_status.entry(status).or_default() += 1;
        if let Some(code) = code {
            *s.by_error_code.entry(code.to_string()).or_default() += 1;
        }
        *s.by_operation.entry(operation.to_owned()).or_default() += 1;
    }

    pub(crate) fn tenant_used(&self, id: &str) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *s.by_tenant.entry(id.to_owned()).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> Stats {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Now as RFC 3339 UTC with milliseconds (`2026-11-26T17:18:07.123Z`).
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time as RFC 3339 UTC with milliseconds (`2026-11-26T17:18:07.123Z`), as the outbox
/// writes `sent_at`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_shape() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 24, "{s}");
        assert!(
            s.starts_with("20") && s.ends_with('Z') && &s[10..11] == "T",
            "{s}"
        );
    }
}
