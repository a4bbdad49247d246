//! `wa-verify verify-code`.

use clap::Args;
use wa_verify_core::{Error, PhoneNumberId, VerificationCode, VerifyCode};

use super::CommonArgs;
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct VerifyCodeArgs {
    /// The phone number id (digits).
    #[arg(long, value_name = "ID")]
    phone_number_id: String,
    /// The six-digit code the number received.
    #[arg(long, value_name = "CODE")]
    code: String,
    /// The id is a pre-verified phone number id (Meta's pre-verified endpoints).
    #[arg(long)]
    pre_verified: bool,
    #[command(flatten)]
    common: CommonArgs,
}

impl VerifyCodeArgs {
    fn operation(&self) -> Result<VerifyCode, Error> {
        let op = VerifyCode::new(
            self.phone_number_id.parse::<PhoneNumberId>()?,
            self.code.parse::<VerificationCode>()?,
        );
        Ok(if self.pre_verified {
            op.pre_verified()
        } else {
            op
        })
    }
}

pub(crate) async fn run(args: VerifyCodeArgs) -> u8 {
    super::call(&args.common, args.operation(), |r| {
        let details = output::details(r.attempts(), r.fbtrace_id());
        format!("number {} verified{details}", args.phone_number_id)
    })
    .await
}
