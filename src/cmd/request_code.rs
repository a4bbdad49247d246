//! `wa-verify request-code`.

use clap::Args;
use wa_verify_core::{CodeMethod, Error, Language, PhoneNumberId, RequestCode};

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
    super::call(&args.common, args.operation(), |r| {
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
    })
    .await
}
