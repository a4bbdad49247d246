//! `wa-verify limits show|clear`: what the limiter holds for a number, read or cleared
//! (on the shared state with `--limiter-store redis`).

use clap::{Args, Subcommand};
use serde_json::json;
use wa_verify_core::config::duration;
use wa_verify_core::rate_limit::{AnyStore, NumberLimits, QuotaClass};
use wa_verify_core::{Error, PhoneNumberId};

use super::CommonArgs;
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct LimitsArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// The number's cooldowns (kind, until, the Graph code that set it), wrong codes and
    /// registration budget left.
    Show(ShowArgs),
    /// Remove the number's cooldowns (of one kind of call, or all).
    Clear(ClearArgs),
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The phone number id (digits).
    #[arg(long, value_name = "ID")]
    phone_number_id: String,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct ClearArgs {
    /// The phone number id (digits).
    #[arg(long, value_name = "ID")]
    phone_number_id: String,
    /// request_code, verify_code or registration (default: every kind).
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

/// The store the flags and config describe, and the number's key.
fn open(common: &CommonArgs, id: &str) -> Result<(AnyStore, PhoneNumberId), Error> {
    let id: PhoneNumberId = id.parse()?;
    let store = common.stack_config()?.rate_limit.store()?;
    Ok((store, id))
}

fn store_name(store: &AnyStore) -> &'static str {
    match store {
        AnyStore::Memory(_) => "memory",
        _ => "redis",
    }
}

pub(crate) async fn run(args: LimitsArgs) -> u8 {
    match args.action {
        Action::Show(a) => show(a).await,
        Action::Clear(a) => clear(a).await,
    }
}

async fn show(args: ShowArgs) -> u8 {
    let format = args.common.format().unwrap_or_default();
    let (store, id) = match args
        .common
        .format()
        .and_then(|_| open(&args.common, &args.phone_number_id))
    {
        Ok(x) => x,
        Err(e) => return output::refused(format, &e),
    };
    let limits = match store.inspect(id.key()).await {
        Ok(l) => l,
        Err(e) => return output::failure(format, "limits_show", &e),
    };
    let doc = report(&limits, &id, store_name(&store));
    output::success(format, "limits_show", doc.clone(), || text(&doc))
}

async fn clear(args: ClearArgs) -> u8 {
    let format = args.common.format().unwrap_or_default();
    let opened = args
        .common
        .format()
        .and_then(|_| open(&args.common, &args.phone_number_id))
        .and_then(|(s, id)| {
            let kind = args
                .kind
                .as_deref()
                .map(str::parse::<QuotaClass>)
                .transpose()?;
            Ok((s, id, kind))
        });
    let (store, id, kind) = match opened {
        Ok(x) => x,
        Err(e) => return output::refused(format, &e),
    };
    let cleared = match store.clear(id.key(), kind).await {
        Ok(n) => n,
        Err(e) => return output::failure(format, "limits_clear", &e),
    };
    let kind = kind.map_or("all", QuotaClass::as_str);
    output::success(
        format,
        "limits_clear",
        json!({
            "phone_number_id": id.as_str(),
            "store": store_name(&store),
            "kind": kind,
            "cleared": cleared,
        }),
        || format!("cleared {cleared} cooldown(s) of {} ({kind})", id.as_str()),
    )
}

/// The JSON of what the store holds.
fn report(l: &NumberLimits, id: &PhoneNumberId, store: &str) -> serde_json::Value {
    let cooldowns: Vec<_> = l
        .cooldowns
        .iter()
        .map(|c| {
            json!({
                "kind": c.kind.as_str(),
                "remaining_ms": c.remaining.as_millis() as u64,
                "until": output::rfc3339(c.until),
                "code": c.code.map(|g| g.code),
                "error_subcode": c.code.and_then(|g| g.subcode),
            })
        })
        .collect();
    json!({
        "phone_number_id": id.as_str(),
        "store": store,
        "cooldowns": cooldowns,
        "wrong_codes": l.wrong_codes,
        "registrations_left": l.registrations_left,
    })
}

/// The report for a person.
fn text(doc: &serde_json::Value) -> String {
    let mut out = vec![format!(
        "{} ({} store)",
        doc["phone_number_id"].as_str().unwrap_or_default(),
        doc["store"].as_str().unwrap_or_default()
    )];
    if doc["store"] == "memory" {
        out.push(
            "  note: the memory store lives in one process; use --limiter-store redis to see the state replicas share"
                .to_owned(),
        );
    }
    let none = Vec::new();
    let cooldowns = doc["cooldowns"].as_array().unwrap_or(&none);
    if cooldowns.is_empty() {
        out.push("  cooldowns: none".to_owned());
    }
    for c in cooldowns {
        let left = std::time::Duration::from_millis(c["remaining_ms"].as_u64().unwrap_or(0));
        let code = match (c["code"].as_i64(), c["error_subcode"].as_i64()) {
            (Some(code), Some(sub)) => format!(", set by {code}/{sub}"),
            (Some(code), None) => format!(", set by {code}"),
            _ => String::new(),
        };
        out.push(format!(
            "  cooldown: {} until {} ({} left{code})",
            c["kind"].as_str().unwrap_or_default(),
            c["until"].as_str().unwrap_or_default(),
            duration::format_wait(left),
        ));
    }
    out.push(format!("  wrong codes: {}", doc["wrong_codes"]));
    out.push(match doc["registrations_left"].as_u64() {
        Some(n) => format!("  registrations left: {n}"),
        None => "  registrations left: (no budget)".to_owned(),
    });
    out.join("\n")
}
