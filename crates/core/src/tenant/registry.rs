//! The tenants as the stack uses them: who owns a number, and each one's current token
//! (a token file is looked at again at most every 200 ms and re-read when it changed).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::config::{check, TenantConfig, TokenSource};
use crate::auth::{Token, TokenFuture, TokenProvider, TokenRequest};
use crate::error::Error;
use crate::operation::PhoneNumberId;

/// How often a token file is looked at for a change.
const RECHECK: Duration = Duration::from_millis(200);

/// What identifies a file's content without reading it: a rewrite in place changes its
/// time or length, a rename its inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

/// One tenant: its id, its WABA, its token.
pub(crate) struct Tenant {
    pub(crate) id: Arc<str>,
    pub(crate) waba: Option<u64>,
    source: TokenSource,
    token: RwLock<(Token, Option<Stamp>)>,
    /// When the token file was last looked at (ms since `epoch`).
    checked_at: AtomicU64,
    epoch: Instant,
}

impl Tenant {
    /// The current token: re-read when its file changed. A file caught mid-rewrite (not a
    /// valid token yet) keeps the previous token until the next look.
    fn token(&self) -> Token {
        if let TokenSource::File(path) = &self.source {
            let now = self.epoch.elapsed().as_millis() as u64;
            let last = self.checked_at.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= RECHECK.as_millis() as u64
                && self
                    .checked_at
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.reload(path);
            }
        }
        self.token
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    fn reload(&self, path: &Path) {
        let now = stamp(path);
        let same = self
            .token
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            == now;
        if same {
            return;
        }
        match read_file(&self.id, path) {
            Ok(t) => {
                *self
                    .token
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = (t, now);
                tracing::info!(tenant = %self.id, "token file changed: using the new token");
            }
            Err(e) => {
                tracing::warn!(tenant = %self.id, error = %e, "token file unreadable: keeping the previous token")
            }
        }
    }
}

fn read_file(id: &str, path: &Path) -> Result<Token, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid_input(format!(
            "tenant {id}: cannot read token_file {}: {e}",
            path.display()
        ))
    })?;
    text.parse::<Token>().map_err(|e| {
        Error::invalid_input(format!(
            "tenant {id}: token_file {}: {}",
            path.display(),
            e.message()
        ))
    })
}

/// Every tenant, and who owns each number.
pub struct Tenants {
    tenants: Vec<Tenant>,
    by_id: HashMap<Arc<str>, usize>,
    by_number: HashMap<u64, usize>,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants")
            .field(
                "ids",
                &self.tenants.iter().map(|t| &*t.id).collect::<Vec<_>>(),
            )
            .field("numbers", &self.by_number.len())
            .finish()
    }
}

impl Tenants {
    /// Checks the tenants and reads every token now: a missing one is an error at start,
    /// not at the first call.
    ///
    /// # Errors
    ///
    /// `invalid_input` naming the tenant and what is wrong (never the token).
    pub fn from_config(tenants: &[TenantConfig]) -> Result<Self, Error> {
        let epoch = Instant::now();
        let mut out = Tenants {
            tenants: Vec::new(),
            by_id: HashMap::new(),
            by_number: HashMap::new(),
        };
        for (i, t) in check(tenants)?.into_iter().enumerate() {
            let (token, stamp) = match &t.source {
                TokenSource::File(path) => (read_file(&t.id, path)?, stamp(path)),
                TokenSource::Env(var) => {
                    let value = std::env::var(var).map_err(|_| {
                        Error::invalid_input(format!("tenant {}: token_env {var} is not set", t.id))
                    })?;
                    let token = value.parse::<Token>().map_err(|e| {
                        Error::invalid_input(format!(
                            "tenant {}: token_env {var}: {}",
                            t.id,
                            e.message()
                        ))
                    })?;
                    (token, None)
                }
            };
            let id: Arc<str> = Arc::from(t.id.as_str());
            out.by_id.insert(id.clone(), i);
            for n in &t.numbers {
                out.by_number.insert(*n, i);
            }
            out.tenants.push(Tenant {
                id,
                waba: t.waba,
                source: t.source,
                token: RwLock::new((token, stamp)),
                checked_at: AtomicU64::new(0),
                epoch,
            });
        }
        Ok(out)
    }

    /// Whether any tenant is configured.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// The tenant ids, in file order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.tenants.iter().map(|t| &*t.id)
    }

    /// A tenant's numbers (their keys), for drivers such as `bench --tenants`.
    pub fn numbers_of(&self, id: &str) -> Vec<u64> {
        let Some(&i) = self.by_id.get(id) else {
            return Vec::new();
        };
        let mut n: Vec<u64> = self
            .by_number
            .iter()
            .filter(|(_, t)| **t == i)
            .map(|(n, _)| *n)
            .collect();
        n.sort_unstable();
        n
    }

    /// Whose call this is: the picked tenant, else the number's owner. Never a guess: an
    /// unknown tenant, a tenant picked for another tenant's number, or a number no tenant
    /// lists (with none picked) is refused.
    ///
    /// # Errors
    ///
    /// `invalid_input`, before any I/O.
    pub(crate) fn resolve(
        &self,
        number: PhoneNumberId,
        picked: Option<&str>,
    ) -> Result<&Tenant, Error> {
        let owner = self.by_number.get(&number.key()).map(|&i| &self.tenants[i]);
        match (picked, owner) {
            (Some(p), owner) => {
                let Some(&i) = self.by_id.get(p) else {
                    return Err(Error::invalid_input(format!(
                        "unknown tenant {}: the tenants are {}",
                        crate::operation::shown(p),
                        self.ids().collect::<Vec<_>>().join(", ")
                    )));
                };
                let t = &self.tenants[i];
                match owner {
                    Some(o) if !Arc::ptr_eq(&o.id, &t.id) => Err(Error::invalid_input(format!(
                        "number {number} belongs to tenant {}, not {}: its token is never sent for another tenant's number",
                        o.id, t.id
                    ))),
                    _ => Ok(t),
                }
            }
            (None, Some(o)) => Ok(o),
            (None, None) => Err(Error::invalid_input(format!(
                "number {number} is in no tenant's numbers: pick its tenant (RequestCode::tenant, --tenant ID) or list it in the tenants file"
            ))),
        }
    }
}

/// A [`TokenProvider`] that sends each call its tenant's token.
#[derive(Clone, Debug)]
pub struct TenantTokens(pub(crate) Arc<Tenants>);

impl TenantTokens {
    /// A provider over `tenants`.
    pub fn new(tenants: Arc<Tenants>) -> Self {
        Self(tenants)
    }
}

impl TokenProvider for TenantTokens {
    fn token(&self) -> TokenFuture {
        Box::pin(std::future::ready(Err(Error::invalid_input(
            "tenant tokens are chosen per call: this request carries no tenant",
        ))))
    }

    fn token_for(&self, request: &TokenRequest) -> TokenFuture {
        // Resolved again here, where the token is chosen: a request that skipped the
        // tenant layer still never gets another tenant's token.
        let t = self
            .0
            .resolve(request.phone_number_id, request.tenant.as_deref())
            .map(Tenant::token);
        Box::pin(std::future::ready(t))
    }
}
