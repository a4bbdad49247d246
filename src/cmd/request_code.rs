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
        Ok(if self.pre_verified {
            op.pre_verified()
        } else {
            op
        })
    }
}

pub(crate) async fn run(args: RequestCodeArgs) -> u8 {
    super::call(&args.common, args.operation(), |r| {
        let method = args.method.to_uppercase();
        let details = output::details(r.attempts(), r.fbtrace_id());
        format!("code sent to {} by {method}{details}", args.phone_number_id)
    })
    .await
}
