//! The sandbox's settings: numbers, quotas, code lifetime, blocking and faults (TOML).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::faults::FaultConfig;
use crate::units::{duration_text, SandboxQuota};

/// Everything the sandbox can be told. The defaults make it useful with no file: every
/// numeric id is a registered number, no quotas, codes live 10 minutes, five wrong codes
/// block a number for 10 minutes, no faults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// The registered numbers; when empty, every numeric id is one. Others answer 404.
    pub numbers: Vec<String>,
    /// Numbers the app may not act on: 403 `OAuthException` 200/1349174.
    pub not_permitted: Vec<String>,
    /// Numbers not eligible for verification now: 422 `GraphMethodException` 100.
    pub not_eligible: Vec<String>,
    /// Pre-verified phone number ids: past their per-number quota, request_code answers
    /// the spec's 422 with code 613, "Too many verification code requests".
    pub pre_verified: Vec<String>,
    /// Numbers whose request_code fails for now, as Meta's 400 136024/2388091 "Request code
    /// failed … wait 1 hour" (seen live to recur for a day).
    pub request_code_failing: Vec<String>,
    /// A number's status as `GET /{version}/{id}` answers it, by phone number id (for
    /// example `platform_type = "ON_PREMISE"`); the flow moves the rest.
    pub number_status: BTreeMap<String, NumberStatus>,
    /// Codes, their lifetime and blocking after wrong codes.
    pub codes: CodeConfig,
    /// Request quotas.
    pub quotas: QuotaConfig,
    /// Fault injection.
    pub faults: FaultConfig,
    /// Numbers with their own fault, by phone number id.
    pub number_faults: BTreeMap<String, crate::faults::NumberFault>,
    /// The outbox's size, and how much per-number state is kept.
    pub outbox: OutboxConfig,
    /// Connections, timeouts and shutdown.
    pub server: ServerConfig,
    /// Who may read `/__sandbox/*`.
    pub admin: AdminConfig,
    /// Businesses with their own tokens (`[[tenants]]`): a tenant's token acts on its own
    /// numbers only; another's number gets Meta's permission error (403, code 200). The
    /// sandbox's main token still acts on every number.
    pub tenants: Vec<SandboxTenant>,
}

/// A business: its token, its WhatsApp Business Account and its numbers. `Debug` never
/// shows the token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SandboxTenant {
    /// Its id (in `stats.by_tenant`).
    pub id: String,
    /// Its token.
    pub token: String,
    /// Its WABA id: keys usage headers and the per-WABA quota.
    pub waba_id: Option<String>,
    /// Its phone number ids.
    pub numbers: Vec<String>,
}

/// A number's configured status: each field as Meta's `GET /{id}` would answer it. Unset
/// fields follow the flow: `code_verification_status` is `NOT_VERIFIED` until a code is
/// verified, `status` is `CONNECTED` after register and `DISCONNECTED` after deregister,
/// `name_status` is `APPROVED` and `platform_type` `CLOUD_API`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct NumberStatus {
    /// `VERIFIED`, `NOT_VERIFIED`, `UNVERIFIED`, `EXPIRED`, …
    pub code_verification_status: Option<String>,
    /// `CLOUD_API`, `ON_PREMISE`, `NOT_APPLICABLE`.
    pub platform_type: Option<String>,
    /// `APPROVED`, `PENDING_REVIEW`, `DECLINED`, …
    pub name_status: Option<String>,
    /// `CONNECTED`, `DISCONNECTED`, `PENDING`, `BANNED`, …
    pub status: Option<String>,
}

impl std::fmt::Debug for SandboxTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxTenant")
            .field("id", &self.id)
            .field("token", &"***")
            .field("waba_id", &self.waba_id)
            .field("numbers", &self.numbers)
            .finish()
    }
}

/// How the server treats connections: it faces whatever else runs on the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The most connections open at once; past it, new ones wait in the OS backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    #[serde(with = "duration_text")]
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    #[serde(with = "duration_text")]
    pub body_timeout: Duration,
    /// On shutdown (SIGINT/SIGTERM, or the handle), how long requests in flight may take
    /// before the remaining connections are closed.
    #[serde(with = "duration_text")]
    pub shutdown_grace: Duration,
    /// The largest request body read; larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Access to the admin endpoints (`/__sandbox/outbox`, `/__sandbox/stats`).
///
/// The outbox holds every code the sandbox sent: anyone who can reach the sandbox's port
/// can read them unless `require_token` is set. The sandbox listens on loopback only, so
/// that is every local user and process of the machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AdminConfig {
    /// Require the sandbox token (`Authorization: Bearer`) on `/__sandbox/*` too.
    pub require_token: bool,
}

/// How many outbox entries, and numbers, are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OutboxConfig {
    /// Keep only the newest this many entries, and the state of only the most recent this
    /// many numbers (codes, wrong codes, quotas, the per-number code count); 0 keeps
    /// everything, the default. Long benchmarks set it so memory stays flat;
    /// `codes_sent` still counts every code.
    pub max_entries: usize,
}

impl SandboxConfig {
    /// Parses TOML.
    ///
    /// # Errors
    ///
    /// When the TOML does not fit, saying which key and why.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::config(format!("invalid sandbox config: {e}")))
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or parsed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text)
    }
}

/// Codes and the wrong-code block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CodeConfig {
    /// How long a code is valid (the spec: typically 10 minutes).
    #[serde(with = "duration_text")]
    pub ttl: Duration,
    /// Wrong codes in a row that block the number.
    pub max_wrong: u32,
    /// How long the block lasts.
    #[serde(with = "duration_text")]
    pub block_for: Duration,
    /// The seed of the codes (and trace ids), for reproducible runs; by default a new
    /// one from the operating system at each start, so codes are unpredictable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            max_wrong: 5,
            block_for: Duration::from_secs(600),
            seed: None,
        }
    }
}

/// Which answer a spent per-number quota gives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaDialect {
    /// The spec's 429 `OAuthException` 4/2446079 with `is_transient: true`.
    #[default]
    Spec,
    /// What Meta's live API sends once a number's request-code volume is spent: 400
    /// 136024/2388367, the request-code volume limit, `is_transient: false`.
    Observed,
}

/// Request quotas; none by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct QuotaConfig {
    /// request_code calls per number, in any moving window.
    pub per_number: Option<SandboxQuota>,
    /// Calls of any kind for the whole app, in any moving window.
    pub app: Option<SandboxQuota>,
    /// Calls of any kind per WhatsApp Business Account (the tenants' `waba_id`), in any
    /// moving window: past it, Meta's 80007 with a usage header keyed by the WABA id.
    pub per_waba: Option<SandboxQuota>,
    /// The answer of a spent per-number quota.
    pub quota_error: QuotaDialect,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let c = SandboxConfig::from_toml(
            r#"
            numbers = ["1", "2"]
            not_permitted = ["2"]
            [codes]
            ttl = "5m"
            max_wrong = 3
            [quotas]
            per_number = { rate = "1/min", burst = 1 }
            app = { rate = "100/s" }
            quota_error = "observed"
            [faults]
            seed = 7
            probability = 0.1
            kinds = ["transient_500", "drop_after_send"]
            [number_faults]
            "1" = { kind = "bad_gateway_502", times = 2 }
            "#,
        )
        .unwrap();
        assert_eq!(c.codes.ttl, Duration::from_secs(300));
        assert_eq!(c.quotas.quota_error, QuotaDialect::Observed);
        assert_eq!(c.number_faults["1"].times, Some(2));
        assert!(SandboxConfig::from_toml("nope = 1")
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }
}
