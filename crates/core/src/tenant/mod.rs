//! Many businesses in one deployment: each call's tenant picks its token, and its
//! WhatsApp Business Account keys the per-WABA limits.
//!
//! A partner onboarding its customers' numbers holds one business token per customer.
//! With `[[tenants]]` configured, each call uses the token of the tenant it names
//! (`RequestCode::tenant("acme")`), else of the tenant that lists its number. An unknown
//! tenant, a tenant named for another tenant's number, or a number no tenant lists (with
//! none named) is refused before any I/O: a token is never guessed. Token files are looked
//! at again every 200 ms and re-read when they change, so a rotated token is used without
//! a restart.
//!
//! ```
//! use std::io::Write;
//! use wa_verify_core::tenant::{TenantConfig, Tenants};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let path = std::env::temp_dir().join(format!("acme-token-{}", std::process::id()));
//! std::fs::File::create(&path)?.write_all(b"FAKE-acme-token\n")?;
//! let mut acme = TenantConfig::default();
//! acme.id = "acme".into();
//! acme.token_file = Some(path.clone());
//! acme.numbers = vec!["1234567890".into()];
//! let tenants = Tenants::from_config(&[acme])?;
//! assert_eq!(tenants.ids().collect::<Vec<_>>(), ["acme"]);
//! # std::fs::remove_file(path)?;
//! # Ok(())
//! # }
//! ```

mod config;
mod layer;
mod registry;

pub use self::config::{TenantConfig, TenantsFile};
pub use self::layer::{ResolveTenant, ResponseFuture, TenantLayer};
pub use self::registry::{TenantTokens, Tenants};
