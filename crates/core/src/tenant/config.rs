//! `[[tenants]]`: the businesses one deployment serves, each with its token, its WhatsApp
//! Business Account and its numbers (the same shape as the CLI's `--tenants` file).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::operation::PhoneNumberId;

/// One business: its id, its WhatsApp Business Account, where its token is, its numbers.
///
/// ```toml
/// [[tenants]]
/// id = "acme"
/// waba_id = "102290129340398"
/// token_file = "/run/secrets/acme-token"   # or token_env = "ACME_TOKEN"
/// numbers = ["106540352242922", "106540352242923"]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantConfig {
    /// The tenant's id: 1 to 64 of `A-Z a-z 0-9 _ -`.
    pub id: String,
    /// Its WhatsApp Business Account id (digits), for the per-WABA limits.
    pub waba_id: Option<String>,
    /// A file holding its token, re-read when it changes (rotation without a restart).
    pub token_file: Option<PathBuf>,
    /// An environment variable holding its token, read once.
    pub token_env: Option<String>,
    /// The phone number ids it owns.
    pub numbers: Vec<String>,
}

/// A tenants file on its own (`--tenants FILE.toml`): `[[tenants]]` tables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantsFile {
    /// The tenants.
    pub tenants: Vec<TenantConfig>,
}

impl TenantsFile {
    /// Reads a tenants file.
    ///
    /// # Errors
    ///
    /// `invalid_input` naming the file and what is wrong with it.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!(
                "cannot read the tenants file {}: {e}",
                path.display()
            ))
        })?;
        toml::from_str(&text).map_err(|e| {
            Error::invalid_input(format!(
                "the tenants file {} is not valid: {e}",
                path.display()
            ))
        })
    }
}

/// A tenant's settings, checked.
pub(crate) struct Checked {
    pub(crate) id: String,
    pub(crate) waba: Option<u64>,
    pub(crate) source: TokenSource,
    pub(crate) numbers: Vec<u64>,
}

/// Where a tenant's token comes from.
#[derive(Clone, Debug)]
pub(crate) enum TokenSource {
    File(PathBuf),
    Env(String),
}

/// Checks every tenant, and that no id or number appears twice.
pub(crate) fn check(tenants: &[TenantConfig]) -> Result<Vec<Checked>, Error> {
    let mut ids = HashSet::new();
    let mut owners: HashMap<u64, &str> = HashMap::new();
    let mut out = Vec::with_capacity(tenants.len());
    for t in tenants {
        let id_ok = !t.id.is_empty()
            && t.id.len() <= 64
            && t.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            return Err(Error::invalid_input(format!(
                "a tenant id is 1 to 64 of A-Z a-z 0-9 _ -, got {}",
                crate::operation::shown(&t.id)
            )));
        }
        if !ids.insert(t.id.as_str()) {
            return Err(Error::invalid_input(format!(
                "tenant {} is listed twice",
                t.id
            )));
        }
        let source = match (&t.token_file, &t.token_env) {
            (Some(f), None) => TokenSource::File(f.clone()),
            (None, Some(v)) => TokenSource::Env(v.clone()),
            _ => {
                return Err(Error::invalid_input(format!(
                    "tenant {} needs exactly one of token_file and token_env",
                    t.id
                )))
            }
        };
        let waba = match &t.waba_id {
            Some(w) => Some(digits(w).ok_or_else(|| {
                Error::invalid_input(format!(
                    "tenant {}: waba_id must be digits like 102290129340398",
                    t.id
                ))
            })?),
            None => None,
        };
        let mut numbers = Vec::with_capacity(t.numbers.len());
        for n in &t.numbers {
            let key = n
                .parse::<PhoneNumberId>()
                .map_err(|e| Error::invalid_input(format!("tenant {}: {}", t.id, e.message())))?
                .key();
            if let Some(other) = owners.insert(key, &t.id) {
                return Err(Error::invalid_input(format!(
                    "number {n} is listed by tenants {other} and {}: a number belongs to one tenant",
                    t.id
                )));
            }
            numbers.push(key);
        }
        out.push(Checked {
            id: t.id.clone(),
            waba,
            source,
            numbers,
        });
    }
    Ok(out)
}

/// A WABA id as the limiter keys it: 1 to 19 digits.
fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}
