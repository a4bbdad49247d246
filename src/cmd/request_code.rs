//! `wa-verify request-code`.

use clap::Args;
use serde_json::json;
use wa_verify_core::onboarding::Preflight;
use wa_verify_core::{
    CodeMethod, Error, Language, Operation, PhoneNumberId, RequestCode, RequestCodeResponse,
    Response,
};

use super::CommonArgs;
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct RequestCodeArgs {
    /// The phone number id (digits).
    #[arg(long, value_name = "ID")]
    phone_number_id: String,
    /// sms or voice.
    #[arg(long, value_name = "METHOD", default_value = "sms")]
    method: String,
    /// en_US, pt_BR, or a two-letter code like en.
    #[arg(long, value_name = "LOCALE", default_value = "en_US")]
    language: String,
    /// The id is a pre-verified phone number id (Meta's pre-verified endpoints).
    #[arg(long)]
    pre_verified: bool,
    /// Send a new code even if one was sent (or may have been) within its window.
    #[arg(long)]
    resend: bool,
    /// Read the number's status first: an already verified number gets no code, and one on
    /// the WhatsApp Business app or On-Premises API stops with a precondition error.
    #[arg(long)]
    check_status: bool,
    /// A key for this request: a repeat with the same key (same number and method) within
    /// `dedup.idempotency_ttl` gets the first outcome instead of sending again.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

impl RequestCodeArgs {
    fn operation(&self) -> Result<RequestCode, Error> {
        let op = RequestCode::new(
            self.phone_number_id.parse::<PhoneNumberId>()?,
            self.method.parse::<CodeMethod>()?,
            self.language.parse::<Language>()?,
        );
        let op = if self.pre_verified {
            op.pre_verified()
        } else {
            op
        };
        let op = if self.resend { op.resend() } else { op };
        Ok(match &self.idempotency_key {
            Some(key) => {
                wa_verify_core::dedup::check_idempotency_key(key)?;
                op.idempotency_key(key)
            }
            None => op,
        })
    }
}

pub(crate) async fn run(args: RequestCodeArgs) -> u8 {
    if args.check_status {
        return checked(args).await;
    }
    super::call(&args.common, args.operation(), |r| text(&args, r)).await
}

/// `--check-status`: the status first, then the code only when it makes sense.
async fn checked(args: RequestCodeArgs) -> u8 {
    let format = args.common.format().unwrap_or_default();
    let prepared = match args.operation() {
        Ok(op) => args.common.prepare().await.map(|p| (op, p)),
        Err(e) => Err(e),
    };
    let (op, p) = match prepared {
        Ok(x) => x,
        Err(e) => return output::refused(format, &e),
    };
    let id = op.phone_number_id();
    let preflight = match Preflight::read(&p.client, id).await {
        Ok(pf) => pf.check_code().map(|()| pf),
        Err(e) => Err(e),
    };
    let stop = match preflight {
        Err(e) => Some(output::failure(p.format, "request_code", &e)),
        Ok(pf) if pf.is_verified() => Some(output::success(
            p.format,
            "request_code",
            json!({"skipped": true, "reason": "already_verified", "sent": false}),
            || format!("number {id} is already verified: no code requested"),
        )),
        Ok(_) => None,
    };
    match stop {
        Some(code) => {
            if let Some(sb) = p.sandbox {
                sb.shutdown().await;
            }
            code
        }
        None => super::call_prepared(p, op, |r| text(&args, r), |_| None).await,
    }
}

/// The text output of a request that went out (or was answered by the dedup layer).
fn text(args: &RequestCodeArgs, r: &Response<RequestCodeResponse>) -> String {
    let method = args.method.to_uppercase();
    let details = output::details(r.attempts(), r.fbtrace_id());
    let id = &args.phone_number_id;
    if let Some(a) = r.already_sent() {
        return format!(
            "a code was already sent to {id} by {} at {}; it is live until {}: nothing was sent (--resend sends another)",
            a.method.as_str(),
            output::rfc3339(a.sent_at),
            output::rfc3339(a.expires_at),
        );
    }
    let how = if r.is_replayed() {
        " (replayed: the first outcome of this idempotency key)"
    } else if r.is_shared() {
        " (shared with a concurrent call for the same number)"
    } else {
        ""
    };
    format!("code sent to {id} by {method}{how}{details}")
}
