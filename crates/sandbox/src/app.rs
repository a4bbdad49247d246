//! What every request of a running sandbox shares: its config, its per-number state, its
//! quotas, its random draws, the outbox and the counts.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::bounded::BoundedMap;
use crate::config::SandboxConfig;
use crate::faults::{Fault, Rng};
use crate::outbox::{Outbox, StatsCell};
use crate::quota::SlidingLog;

/// The flow's state of one number: its code, wrong codes, blocks and registration.
#[derive(Debug, Default)]
pub(crate) struct NumberState {
    pub(crate) code: Option<(String, Instant)>,
    pub(crate) wrong: u32,
    pub(crate) blocked_until: Option<Instant>,
    pub(crate) verified: bool,
    pub(crate) registered: bool,
    /// Deregistered since its last register: `status` reads `DISCONNECTED`.
    pub(crate) deregistered: bool,
    /// register/deregister calls in the moving 72 hours, and Meta's 72-hour block.
    pub(crate) registrations: std::collections::VecDeque<Instant>,
    pub(crate) registration_blocked_until: Option<Instant>,
    /// The number's recent request_code calls, for its quota.
    pub(crate) requests: SlidingLog,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) config: SandboxConfig,
    pub(crate) token: String,
    pub(crate) numbers: Option<HashSet<String>>,
    pub(crate) not_permitted: HashSet<String>,
    pub(crate) not_eligible: HashSet<String>,
    app_calls: Mutex<SlidingLog>,
    /// Calls per WABA, for `quotas.per_waba`.
    waba_calls: Mutex<HashMap<String, SlidingLog>>,
    /// Each listed number's tenant.
    pub(crate) tenant_by_number: HashMap<String, usize>,
    /// Draws faults: seeded by `faults.seed`, so fault runs reproduce.
    rng: Rng,
    /// Draws codes and trace ids: from the OS at each start unless `codes.seed` is set.
    codes: Rng,
    pub(crate) state: Mutex<BoundedMap<NumberState>>,
    number_faults: Mutex<HashMap<String, (Fault, Option<u32>)>>,
    pub(crate) outbox: Outbox,
    pub(crate) stats: StatsCell,
    shutdown: watch::Receiver<bool>,
}

impl App {
    pub(crate) fn new(
        config: SandboxConfig,
        token: String,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let set = |v: &[String]| v.iter().cloned().collect::<HashSet<_>>();
        Self {
            numbers: (!config.numbers.is_empty()).then(|| set(&config.numbers)),
            not_permitted: set(&config.not_permitted),
            not_eligible: set(&config.not_eligible),
            app_calls: Mutex::default(),
            waba_calls: Mutex::default(),
            tenant_by_number: config
                .tenants
                .iter()
                .enumerate()
                .flat_map(|(i, t)| t.numbers.iter().map(move |n| (n.clone(), i)))
                .collect(),
            rng: Rng::new(config.faults.seed),
            codes: Rng::new(config.codes.seed.unwrap_or_else(os_seed)),
            state: Mutex::new(BoundedMap::new(config.outbox.max_entries)),
            number_faults: Mutex::new(
                config
                    .number_faults
                    .iter()
                    .map(|(id, f)| {
                        let fault = Fault {
                            kind: f.kind,
                            status: f.status.unwrap_or(500),
                            body: f.body.unwrap_or_default(),
                        };
                        (id.clone(), (fault, f.times))
                    })
                    .collect(),
            ),
            outbox: Outbox::with_max(config.outbox.max_entries),
            stats: StatsCell::default(),
            token,
            shutdown,
            config,
        }
    }

    /// What keys a number's usage headers: its WABA, else the number itself.
    pub(crate) fn usage_key<'a>(&'a self, id: &'a str) -> &'a str {
        self.waba_of(id).unwrap_or(id)
    }

    /// The WABA a number belongs to (its tenant's), if any.
    pub(crate) fn waba_of(&self, id: &str) -> Option<&str> {
        let t = self.tenant_by_number.get(id)?;
        self.config.tenants[*t].waba_id.as_deref()
    }

    /// Admits a call for `waba` under `quotas.per_waba`, or says how long to wait.
    pub(crate) fn admit_waba(
        &self,
        waba: &str,
        now: tokio::time::Instant,
    ) -> Result<(), std::time::Duration> {
        let Some(quota) = self.config.quotas.per_waba else {
            return Ok(());
        };
        let mut calls = self.waba_calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.entry(waba.to_owned()).or_default().admit(quota, now)
    }

    pub(crate) fn trace_id(&self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut s = String::with_capacity(23);
        let mut bits = 0u64;
        for i in 0..23 {
            if i % 10 == 0 {
                bits = self.codes.next_u64();
            }
            s.push(char::from(ALPHABET[(bits & 63) as usize]));
            bits >>= 6;
        }
        s
    }

    pub(crate) fn new_code(&self) -> String {
        format!("{:06}", self.codes.below(1_000_000))
    }

    pub(crate) fn fault_for(&self, id: &str) -> Option<Fault> {
        let mut faults = self.number_faults.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((kind, times)) = faults.get_mut(id) {
            let kind = *kind;
            match times {
                None => return Some(kind),
                Some(0) => {}
                Some(n) => {
                    *n -= 1;
                    return Some(kind);
                }
            }
        }
        drop(faults);
        self.config.faults.draw(&self.rng)
    }

    /// The counts, with `codes_sent` from the outbox (verifications send nothing).
    pub(crate) fn snapshot(&self) -> crate::outbox::Stats {
        let mut s = self.stats.snapshot();
        s.codes_sent = self.outbox.sent();
        s
    }

    pub(crate) async fn wait_for_shutdown(&self) {
        let mut rx = self.shutdown.clone();
        // An error means the handle is gone: shut down as well.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl App {
    /// The app-wide quota's log of calls.
    pub(crate) fn app_calls(&self) -> MutexGuard<'_, SlidingLog> {
        self.app_calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A seed from the operating system: `RandomState` is keyed from it per process, and
/// each new one differs.
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}
