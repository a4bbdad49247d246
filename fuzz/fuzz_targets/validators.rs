//! Any operator input through every validator and config parser: an answer, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_verify_core::config::{duration, StackConfig};
use wa_verify_core::onboarding::{Pin, Region, Tier};
use wa_verify_core::rate_limit::Rate;
use wa_verify_core::{ApiVersion, CodeMethod, Language, PhoneNumberId, VerificationCode};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = s.parse::<PhoneNumberId>().map(|id| id.key());
    let _ = s.parse::<Language>();
    let _ = s.parse::<CodeMethod>();
    let _ = s.parse::<ApiVersion>();
    let _ = s.parse::<VerificationCode>();
    let _ = s.parse::<Pin>();
    let _ = s.parse::<Tier>();
    let _ = s.parse::<Region>();
    let _ = s.parse::<Rate>();
    let _ = duration::parse(s);
    let _ = s.parse::<wa_verify_core::graph::BaseUrl>();
    let _ = s.parse::<wa_verify_core::auth::Token>();
    let _ = s.parse::<wa_verify_core::rate_limit::RedisUrl>();
    if let Ok(cfg) = StackConfig::from_toml(s) {
        let _ = cfg.retry.policy(cfg.timeouts.deadline);
    }
    let _ = wa_verify_sandbox::SandboxConfig::from_toml(s);
});
