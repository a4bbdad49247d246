//! `wa-verify status`: what Meta knows about a number (`GET /{version}/{id}`).

use clap::Args;
use wa_verify_core::{Error, PhoneNumberId, PhoneNumberStatus};

use super::CommonArgs;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The phone number id (digits).
    #[arg(long, value_name = "ID")]
    phone_number_id: String,
    /// The fields to read, comma-separated (default: every field the client types).
    #[arg(long, value_name = "a,b,...")]
    fields: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

impl StatusArgs {
    fn operation(&self) -> Result<PhoneNumberStatus, Error> {
        let op = PhoneNumberStatus::new(self.phone_number_id.parse::<PhoneNumberId>()?);
        match &self.fields {
            Some(f) => op.fields(f.split(',')),
            None => Ok(op),
        }
    }
}

pub(crate) async fn run(args: StatusArgs) -> u8 {
    super::call_with(
        &args.common,
        args.operation(),
        |r| {
            // One line per field, in Meta's order of the typed answer, then the rest.
            let value = serde_json::to_value(r.output()).unwrap_or_default();
            let mut lines: Vec<String> = value
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                })
                .collect();
            if lines.is_empty() {
                lines.push("(no fields in the answer)".to_owned());
            }
            lines.join("\n")
        },
        |r| {
            Some((
                "status",
                serde_json::to_value(r.output()).unwrap_or_default(),
            ))
        },
    )
    .await
}
