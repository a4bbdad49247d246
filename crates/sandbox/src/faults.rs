//! Fault injection: per number, or drawn with a seeded probability so runs reproduce.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A failure the sandbox can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultKind {
    /// 500 `GraphMethodException` 2 with `is_transient: true`; nothing sent.
    #[serde(rename = "transient_500")]
    Transient500,
    /// 500 code 1 without `is_transient`; nothing sent.
    #[serde(rename = "server_500")]
    Server500,
    /// 502 code 1 without `is_transient`; nothing sent.
    #[serde(rename = "bad_gateway_502")]
    BadGateway502,
    /// 504 code 2 without `is_transient`; nothing sent.
    #[serde(rename = "gateway_timeout_504")]
    GatewayTimeout504,
    /// 503 with an HTML body, as a proxy sends it; nothing sent.
    #[serde(rename = "unavailable_503")]
    Unavailable503,
    /// 429 code 4 with `Retry-After`; nothing sent.
    #[serde(rename = "rate_limited_429")]
    RateLimited429,
    /// The configured latency, then the normal answer.
    Latency,
    /// No answer until the sandbox shuts down.
    Hang,
    /// The connection closes before anything is done.
    DropBeforeSend,
    /// The code is sent, then the connection closes without an answer.
    DropAfterSend,
    /// The code is sent, then a 200 whose body is cut short.
    TruncatedBody,
    /// The code is sent, then a 200 with a body far larger than any client cap.
    OversizedBody,
    /// A given status with a given body (`status`, `body` of a [`NumberFault`]); nothing
    /// sent unless the status is 2xx.
    Answer,
}

/// The body of an [`FaultKind::Answer`] fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultBody {
    /// A Graph error body with the spec's type and code for the status.
    #[default]
    Graph,
    /// An HTML page, as a proxy sends it.
    Html,
    /// No body at all.
    Empty,
    /// A Graph error body cut short by a closed connection.
    Truncated,
}

impl FaultKind {
    /// Every kind, for "faults of every kind".
    pub const ALL: [FaultKind; 13] = [
        FaultKind::Transient500,
        FaultKind::Server500,
        FaultKind::BadGateway502,
        FaultKind::GatewayTimeout504,
        FaultKind::Unavailable503,
        FaultKind::RateLimited429,
        FaultKind::Latency,
        FaultKind::Hang,
        FaultKind::DropBeforeSend,
        FaultKind::DropAfterSend,
        FaultKind::TruncatedBody,
        FaultKind::OversizedBody,
        FaultKind::Answer,
    ];

    /// Whether the sandbox acts (sends the code, checks it) before failing.
    pub fn acts_first(self) -> bool {
        matches!(
            self,
            FaultKind::Latency
                | FaultKind::DropAfterSend
                | FaultKind::TruncatedBody
                | FaultKind::OversizedBody
        )
    }
}

/// Faults drawn at random.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FaultConfig {
    /// The seed of the draw (a fixed default, so runs reproduce).
    pub seed: u64,
    /// The chance, 0 to 1, that a call gets a fault.
    pub probability: f64,
    /// The kinds drawn from, uniformly; empty means every kind.
    pub kinds: Vec<FaultKind>,
    /// The delay of `latency` faults.
    #[serde(with = "crate::units::duration_text")]
    pub latency: Duration,
    /// The `Retry-After` of `rate_limited_429` faults, in seconds.
    pub retry_after_secs: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 0x5eed,
            probability: 0.0,
            kinds: Vec::new(),
            latency: Duration::from_millis(50),
            retry_after_secs: 1,
        }
    }
}

/// A fault for one number, optionally for its next `times` calls only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberFault {
    /// The fault.
    pub kind: FaultKind,
    /// How many calls get it; absent means every call.
    #[serde(default)]
    pub times: Option<u32>,
    /// The status of an `answer` fault (default 500).
    #[serde(default)]
    pub status: Option<u16>,
    /// The body of an `answer` fault (default `graph`).
    #[serde(default)]
    pub body: Option<FaultBody>,
}

impl NumberFault {
    /// A fault on every call.
    pub fn always(kind: FaultKind) -> Self {
        Self {
            kind,
            times: None,
            status: None,
            body: None,
        }
    }

    /// A fault on the next `times` calls.
    pub fn times(kind: FaultKind, times: u32) -> Self {
        Self {
            times: Some(times),
            ..Self::always(kind)
        }
    }

    /// An `answer` fault on every call: `status` with `body`.
    pub fn answer(status: u16, body: FaultBody) -> Self {
        Self {
            status: Some(status),
            body: Some(body),
            ..Self::always(FaultKind::Answer)
        }
    }
}

/// A drawn fault with what an `answer` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) kind: FaultKind,
    pub(crate) status: u16,
    pub(crate) body: FaultBody,
}

impl Fault {
    pub(crate) fn of(kind: FaultKind) -> Self {
        Self {
            kind,
            status: 500,
            body: FaultBody::Graph,
        }
    }
}

/// SplitMix64 on an atomic: lock-free, and the same sequence for the same seed.
#[derive(Debug)]
pub(crate) struct Rng(AtomicU64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }

    pub(crate) fn next_u64(&self) -> u64 {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub(crate) fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn below(&self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

impl FaultConfig {
    pub(crate) fn draw(&self, rng: &Rng) -> Option<Fault> {
        if self.probability <= 0.0 || rng.unit() >= self.probability {
            return None;
        }
        let kinds: &[FaultKind] = if self.kinds.is_empty() {
            &FaultKind::ALL
        } else {
            &self.kinds
        };
        Some(Fault::of(kinds[rng.below(kinds.len() as u64) as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let cfg = FaultConfig {
            probability: 0.5,
            ..FaultConfig::default()
        };
        let a = Rng::new(1);
        let b = Rng::new(1);
        let da: Vec<_> = (0..100).map(|_| cfg.draw(&a)).collect();
        let db: Vec<_> = (0..100).map(|_| cfg.draw(&b)).collect();
        assert_eq!(da, db);
        let hits = da.iter().filter(|f| f.is_some()).count();
        assert!((30..=70).contains(&hits), "{hits}");
    }
}
