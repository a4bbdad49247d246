//! `wa-verify onboard --sandbox`: the whole flow in one command, as a demo and a smoke test.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use wa_verify_core::onboarding::{Onboarding, Pin};
use wa_verify_core::{CodeMethod, Error, PhoneNumberId};

use super::register::read_pin;
use super::{CommonArgs, EXIT_USAGE};
use crate::output::{self, Format};

#[derive(Debug, Args)]
pub(crate) struct OnboardArgs {
    /// The phone number id (digits).
    #[arg(long, value_name = "ID")]
    phone_number_id: String,
    /// A file holding the PIN to register with (else WHATSAPP_REGISTRATION_PIN, else a
    /// fresh one for the sandbox, never printed).
    #[arg(long, value_name = "PATH")]
    pin_file: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

pub(crate) async fn run(args: OnboardArgs) -> u8 {
    let format = args.common.format().unwrap_or_default();
    if !args.common.sandbox {
        // The code must come from somewhere: only the sandbox's outbox can supply it.
        let e = Error::invalid_input(
            "onboard walks the whole flow against the sandbox: pass --sandbox \
             (against Meta, run request-code, verify-code and register yourself)",
        );
        return output::refused(format, &e);
    }
    let id = match args.phone_number_id.parse::<PhoneNumberId>() {
        Ok(id) => id,
        Err(e) => return output::refused(format, &e),
    };
    let pin = match (
        &args.pin_file,
        std::env::var_os("WHATSAPP_REGISTRATION_PIN"),
    ) {
        (None, None) => demo_pin(),
        (file, _) => match read_pin(file.as_deref()) {
            Ok(p) => p,
            Err(e) => return output::refused(format, &e),
        },
    };
    let p = match args.common.prepare().await {
        Ok(p) => p,
        Err(e) => return output::refused(format, &e),
    };
    let Some(sandbox) = p.sandbox else {
        return EXIT_USAGE;
    };
    let say = |step: &str| {
        if format == Format::Text {
            println!("{step}");
        }
    };
    let result = async {
        let requested = Onboarding::new(p.client.clone(), id)
            .request_code(CodeMethod::Sms, Default::default())
            .await?;
        say("1/3 code requested");
        let code = sandbox
            .outbox()
            .last_code(&id.to_string())
            .ok_or_else(|| Error::invalid_input("the sandbox sent no code"))?
            .parse()?;
        let verified = requested.verify(code).await.map_err(|e| e.into_error())?;
        say("2/3 code verified");
        verified.register(pin).await.map_err(|e| e.into_error())?;
        say("3/3 number registered");
        Ok::<_, Error>(())
    }
    .await;
    sandbox.shutdown().await;
    match result {
        Ok(()) => output::success(
            format,
            "onboard",
            json!({"steps": ["request_code", "verify_code", "register"]}),
            || format!("number {id} onboarded"),
        ),
        Err(e) => output::failure(format, "onboard", &e),
    }
}

/// A PIN for the demo, from the process's random hasher seed: fine for a sandbox.
fn demo_pin() -> Pin {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:06}", h.finish() % 1_000_000)
        .parse()
        .unwrap_or_else(|_| unreachable!("six digits"))
}
