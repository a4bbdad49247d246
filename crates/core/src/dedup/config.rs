//! `[dedup]`: the settings, and what an idempotency key may be.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// `[dedup]`: whether the layer is on, the live-code window and the idempotency keys' life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DedupConfig {
    /// `false` turns the layer off: every call sends.
    pub enabled: bool,
    /// How long a confirmed code counts as live (Meta's documented expiry: 10 minutes).
    #[serde(with = "crate::duration::timeout")]
    pub window: Duration,
    /// How long an idempotency key's first outcome is kept.
    #[serde(with = "crate::duration::timeout")]
    pub idempotency_ttl: Duration,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(600),
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// The longest idempotency key accepted, in bytes (the IETF draft sets no limit; this
/// keeps keys, which live in the store, small).
pub const MAX_KEY_LEN: usize = 255;

/// Checks an idempotency key before any call: 1 to [`MAX_KEY_LEN`] visible ASCII
/// characters, no spaces. The dedup layer checks it too; this lets a caller refuse it
/// early, with the same message.
///
/// # Errors
///
/// `invalid_input`, saying what is accepted.
pub fn check_idempotency_key(key: &str) -> Result<(), Error> {
    check_key(key)
}

/// Idempotency keys: visible ASCII, 1 to [`MAX_KEY_LEN`] bytes.
pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid_input(format!(
            "idempotency key must be 1 to {MAX_KEY_LEN} visible ASCII characters without spaces, got {} characters",
            key.chars().count()
        )));
    }
    Ok(())
}
