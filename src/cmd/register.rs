//! `wa-verify register` and `wa-verify deregister`.

use std::path::PathBuf;

use clap::Args;
use wa_verify_core::onboarding::{Backup, Deregister, Pin, Register};
use wa_verify_core::{Error, PhoneNumberId};

use super::CommonArgs;
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// The phone number id (digits).
    #[arg(long, value_name = "ID")]
    phone_number_id: String,
    /// A file holding the six-digit two-step PIN (else WHATSAPP_REGISTRATION_PIN).
    #[arg(long, value_name = "PATH")]
    pin_file: Option<PathBuf>,
    /// PROD or SANDBOX.
    #[arg(long, value_name = "TIER")]
    tier: Option<String>,
    /// A data localization region from the spec's list (AE, DE, IN, ...).
    #[arg(long, value_name = "REGION")]
    data_localization_region: Option<String>,
    /// A file holding the backup password (migration from on-premises).
    #[arg(long, value_name = "PATH", requires = "backup_data_file")]
    backup_password_file: Option<PathBuf>,
    /// A file holding the backup data (migration from on-premises).
    #[arg(long, value_name = "PATH", requires = "backup_password_file")]
    backup_data_file: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

/// Reads the PIN from a file or the environment; never echoes it. There is no `--pin`
/// flag, for the same reason as the token: argv is visible to every user of the machine.
pub(crate) fn read_pin(file: Option<&std::path::Path>) -> Result<Pin, Error> {
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| {
                Error::invalid_input(format!("cannot read --pin-file {}: {e}", path.display()))
            })?
            .parse(),
        None => match std::env::var("WHATSAPP_REGISTRATION_PIN") {
            Ok(p) => p.parse(),
            Err(_) => Err(Error::invalid_input(
                "no PIN: set WHATSAPP_REGISTRATION_PIN or pass --pin-file PATH \
                 (there is no --pin flag: argv is visible to every user of the machine)",
            )),
        },
    }
}

fn read_secret(path: &std::path::Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| Error::invalid_input(format!("cannot read {what} {}: {e}", path.display())))
}

impl RegisterArgs {
    fn operation(&self) -> Result<Register, Error> {
        let id: PhoneNumberId = self.phone_number_id.parse()?;
        let mut op = Register::new(id, read_pin(self.pin_file.as_deref())?);
        if let Some(t) = &self.tier {
            op = op.tier(t.parse()?);
        }
        if let Some(r) = &self.data_localization_region {
            op = op.data_localization_region(r.parse()?);
        }
        if let (Some(p), Some(d)) = (&self.backup_password_file, &self.backup_data_file) {
            let password = read_secret(p, "--backup-password-file")?;
            let data = read_secret(d, "--backup-data-file")?;
            op = op.backup(Backup::new(&password, &data)?);
        }
        Ok(op)
    }
}

pub(crate) async fn run(args: RegisterArgs) -> u8 {
    super::call(&args.common, args.operation(), |r| {
        let details = output::details(r.attempts(), r.fbtrace_id());
        format!("number {} registered{details}", args.phone_number_id)
    })
    .await
}

#[derive(Debug, Args)]
pub(crate) struct DeregisterArgs {
    /// The phone number id (digits).
    #[arg(long, value_name = "ID")]
    phone_number_id: String,
    #[command(flatten)]
    common: CommonArgs,
}

pub(crate) async fn run_deregister(args: DeregisterArgs) -> u8 {
    let op = args
        .phone_number_id
        .parse::<PhoneNumberId>()
        .map(Deregister::new);
    super::call(&args.common, op, |r| {
        let details = output::details(r.attempts(), r.fbtrace_id());
        format!("number {} deregistered{details}", args.phone_number_id)
    })
    .await
}
