//! `wa-verify onboard`: the whole flow in one command, against Meta or the sandbox. It
//! reads the number's status first, skips the code for a verified number, stops before a
//! step that cannot work, and takes the code from a file, the terminal or stdin.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use wa_verify_core::onboarding::{Checked, Onboarding, Pin, Verified};
use wa_verify_core::{CodeMethod, Error, PhoneNumberId, VerificationCode};
use wa_verify_sandbox::SandboxHandle;

use super::register::read_pin;
use super::watch::Watched;
use super::CommonArgs;
use crate::output::{self, Format};

#[derive(Debug, Args)]
pub(crate) struct OnboardArgs {
    /// The phone number id (digits).
    #[arg(long, value_name = "ID")]
    phone_number_id: String,
    /// A file holding the PIN to register with (else WHATSAPP_REGISTRATION_PIN; with
    /// --sandbox, else a fresh one, never printed).
    #[arg(long, value_name = "PATH")]
    pin_file: Option<PathBuf>,
    /// A file holding the code the number received (else: the sandbox's outbox with
    /// --sandbox, a prompt on a terminal, or one line on stdin).
    #[arg(long, value_name = "PATH")]
    code_file: Option<PathBuf>,
    /// sms or voice.
    #[arg(long, value_name = "METHOD", default_value = "sms")]
    method: String,
    /// Register even when the display name is not approved yet.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    common: CommonArgs,
}

pub(crate) async fn run(args: OnboardArgs) -> u8 {
    let format = args.common.format().unwrap_or_default();
    let checked = (|| {
        let id = args.phone_number_id.parse::<PhoneNumberId>()?;
        let method = args.method.parse::<CodeMethod>()?;
        let pin = match (
            &args.pin_file,
            std::env::var_os("WHATSAPP_REGISTRATION_PIN"),
        ) {
            (None, None) if args.common.sandbox => demo_pin(),
            (file, _) => read_pin(file.as_deref())?,
        };
        Ok::<_, Error>((id, method, pin))
    })();
    let (id, method, pin) = match checked {
        Ok(x) => x,
        Err(e) => return output::refused(format, &e),
    };
    let p = match args.common.prepare().await {
        Ok(p) => p,
        Err(e) => return output::refused(format, &e),
    };
    let say = |step: &str| {
        if format == Format::Text {
            println!("{step}");
        }
    };
    let mut steps = vec!["status"];
    let result = walk(
        &args,
        &p.client,
        p.sandbox.as_ref(),
        id,
        method,
        pin,
        &say,
        &mut steps,
    )
    .await;
    if let Some(sb) = p.sandbox {
        sb.shutdown().await;
    }
    match result {
        Ok(already_verified) => output::success(
            format,
            "onboard",
            json!({"steps": steps, "already_verified": already_verified}),
            || format!("number {id} onboarded"),
        ),
        Err(e) => output::failure(format, "onboard", &e),
    }
}

/// The flow; returns whether the number was verified already.
#[allow(clippy::too_many_arguments)]
async fn walk(
    args: &OnboardArgs,
    client: &wa_verify_core::Client<Watched>,
    sandbox: Option<&SandboxHandle>,
    id: PhoneNumberId,
    method: CodeMethod,
    pin: Pin,
    say: &dyn Fn(&str),
    steps: &mut Vec<&'static str>,
) -> Result<bool, Error> {
    let flow = Onboarding::new(client.clone(), id);
    let (verified, already): (Verified<Watched>, bool) =
        match flow.preflight().await.map_err(|e| e.into_error())? {
            Checked::AlreadyVerified(v) => {
                say("status: already VERIFIED: no code needed");
                (v, true)
            }
            Checked::NeedsCode(flow) => {
                say("status: checked");
                let requested = flow.request_code(method, Default::default()).await?;
                steps.push("request_code");
                say("code requested");
                let code = read_code(args, sandbox, id)?;
                let v = requested.verify(code).await.map_err(|e| e.into_error())?;
                steps.push("verify_code");
                say("code verified");
                (v, false)
            }
        };
    let verified = if args.force {
        verified.force()
    } else {
        verified
    };
    verified.register(pin).await.map_err(|e| e.into_error())?;
    steps.push("register");
    say("number registered");
    Ok(already)
}

/// The code: from `--code-file`, the sandbox's outbox, a prompt on a terminal, or one
/// line on stdin.
fn read_code(
    args: &OnboardArgs,
    sandbox: Option<&SandboxHandle>,
    id: PhoneNumberId,
) -> Result<VerificationCode, Error> {
    if let Some(path) = &args.code_file {
        return std::fs::read_to_string(path)
            .map_err(|e| {
                Error::invalid_input(format!("cannot read --code-file {}: {e}", path.display()))
            })?
            .trim()
            .parse();
    }
    if let Some(sb) = sandbox {
        return sb
            .outbox()
            .last_code(id.as_str())
            .ok_or_else(|| Error::invalid_input("the sandbox sent no code"))?
            .parse();
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("the code {id} received: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::invalid_input(format!("cannot read the code from stdin: {e}")))?;
    if line.trim().is_empty() {
        return Err(Error::invalid_input(
            "no code: pass --code-file PATH, or type the six digits the number received",
        ));
    }
    line.trim().parse()
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
