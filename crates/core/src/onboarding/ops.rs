//! The registration calls (`register`, `deregister`) and the values they carry.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::error::Error;
use crate::operation::{
    shown, CallContext, DedupRole, Field, Operation, PhoneNumberId, QuotaClass, RetryMode,
    SixDigits, Succeeded,
};

/// What `register` and `deregister` share as operations: never resent once they may have
/// reached Meta, the registration budget, single flight, and their call context.
macro_rules! registration_call {
    () => {
        fn retry_mode(&self) -> RetryMode {
            RetryMode::OnlyIfNotSent
        }

        fn quota_class(&self) -> QuotaClass {
            QuotaClass::Registration
        }

        fn dedup(&self) -> DedupRole<'_> {
            DedupRole::SingleFlight
        }

        call_context_accessors!();
    };
}

/// The six-digit two-step verification PIN. Its `Debug` and `Display` print `Pin(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(SixDigits);

impl Pin {
    /// The digits, for the request body. Keep them out of logs.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl FromStr for Pin {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        SixDigits::parse(s.trim(), "PIN", "123456").map(Self)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(***)")
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(***)")
    }
}

/// Backup data for migrating an on-premises account: a secret password and the data.
#[derive(Clone, PartialEq, Eq)]
pub struct Backup {
    /// `{"password": ..., "data": ...}`, built once; it holds the password.
    json: String,
}

impl Backup {
    /// A backup of `data` protected by `password`.
    ///
    /// # Errors
    ///
    /// `invalid_input` when either is empty.
    pub fn new(password: &str, data: &str) -> Result<Self, Error> {
        if password.is_empty() || data.is_empty() {
            return Err(Error::invalid_input(
                "backup needs both a non-empty password and non-empty data",
            ));
        }
        let json = serde_json::json!({ "password": password, "data": data }).to_string();
        Ok(Self { json })
    }
}

impl fmt::Debug for Backup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Backup(***)")
    }
}

/// The API tier of a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// `PROD`.
    Prod,
    /// `SANDBOX`.
    Sandbox,
}

impl Tier {
    /// The value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Prod => "PROD",
            Tier::Sandbox => "SANDBOX",
        }
    }
}

impl FromStr for Tier {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.eq_ignore_ascii_case("prod") {
            Ok(Tier::Prod)
        } else if s.eq_ignore_ascii_case("sandbox") {
            Ok(Tier::Sandbox)
        } else {
            Err(Error::invalid_input(format!(
                "tier must be PROD or SANDBOX, got {}",
                shown(s)
            )))
        }
    }
}

/// The regions the spec lists for `data_localization_region`.
pub const REGIONS: [&str; 14] = [
    "AE", "AU", "BH", "BR", "CA", "CH", "DE", "GB", "ID", "IN", "JP", "KR", "SG", "ZA",
];

/// A data localization region from the spec's list (`AE`, `DE`, `IN`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region(&'static str);

impl Region {
    /// The value on the wire.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl FromStr for Region {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        REGIONS
            .iter()
            .find(|r| r.eq_ignore_ascii_case(s))
            .map(|r| Region(r))
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "data localization region must be one of {}, got {}",
                    REGIONS.join(", "),
                    shown(s)
                ))
            })
    }
}

/// `POST /{version}/{phone_number_id}/register`: activate a verified number with a PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct Register {
    phone_number_id: PhoneNumberId,
    pin: Pin,
    backup: Option<Backup>,
    tier: Option<Tier>,
    region: Option<Region>,
    context: CallContext,
}

impl Register {
    tenant_accessor!();

    /// Registers `phone_number_id` with two-step verification `pin`.
    pub fn new(phone_number_id: PhoneNumberId, pin: Pin) -> Self {
        Self {
            phone_number_id,
            pin,
            backup: None,
            tier: None,
            region: None,
            context: CallContext::default(),
        }
    }

    /// Migrates an on-premises account from `backup`.
    #[must_use]
    pub fn backup(mut self, backup: Backup) -> Self {
        self.backup = Some(backup);
        self
    }

    /// Sets the tier.
    #[must_use]
    pub fn tier(mut self, tier: Tier) -> Self {
        self.tier = Some(tier);
        self
    }

    /// Sets the data localization region (deprecated by Meta in v21+).
    #[must_use]
    pub fn data_localization_region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }
}

impl fmt::Debug for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Register")
            .field("phone_number_id", &self.phone_number_id)
            .field("pin", &self.pin)
            .field("backup", &self.backup)
            .field("tier", &self.tier)
            .field("data_localization_region", &self.region)
            .finish()
    }
}

impl Operation for Register {
    type Output = SuccessResponse;

    fn name(&self) -> &'static str {
        "register"
    }

    fn phone_number_id(&self) -> PhoneNumberId {
        self.phone_number_id
    }

    fn fields<'a>(&'a self, f: &mut dyn FnMut(Field<'a>)) {
        f(Field::text("messaging_product", "whatsapp"));
        f(Field::text("pin", self.pin.expose_secret()));
        if let Some(b) = &self.backup {
            f(Field::json("backup", &b.json));
        }
        if let Some(t) = self.tier {
            f(Field::text("tier", t.as_str()));
        }
        if let Some(r) = self.region {
            f(Field::text("data_localization_region", r.as_str()));
        }
    }

    registration_call!();
}

/// `POST /{version}/{phone_number_id}/deregister`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deregister {
    phone_number_id: PhoneNumberId,
    context: CallContext,
}

impl Deregister {
    tenant_accessor!();

    /// Deregisters `phone_number_id`.
    pub fn new(phone_number_id: PhoneNumberId) -> Self {
        Self {
            phone_number_id,
            context: CallContext::default(),
        }
    }
}

impl Operation for Deregister {
    type Output = SuccessResponse;

    fn name(&self) -> &'static str {
        "deregister"
    }

    fn phone_number_id(&self) -> PhoneNumberId {
        self.phone_number_id
    }

    fn fields<'a>(&'a self, _f: &mut dyn FnMut(Field<'a>)) {}

    registration_call!();
}

/// The 200 answer of `register` and `deregister`: `{"success": true}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SuccessResponse {
    /// Whether it was done.
    pub success: bool,
}

impl Succeeded for SuccessResponse {
    fn succeeded(&self) -> bool {
        self.success
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{encode, Encoding};

    fn register() -> Register {
        Register::new("1".parse().unwrap(), "123456".parse().unwrap())
    }

    #[test]
    fn register_body_in_every_encoding() {
        let op = register()
            .backup(Backup::new("s3cret", "ZGF0YQ==").unwrap())
            .tier(Tier::Prod)
            .data_localization_region("de".parse().unwrap());
        assert_eq!(
            &encode(Encoding::Json, &op).1[..],
            br#"{"messaging_product":"whatsapp","pin":"123456","backup":{"data":"ZGF0YQ==","password":"s3cret"},"tier":"PROD","data_localization_region":"DE"}"#
        );
        assert_eq!(
            &encode(Encoding::Form, &op).1[..],
            b"messaging_product=whatsapp&pin=123456&backup=%7B%22data%22%3A%22ZGF0YQ%3D%3D%22%2C%22password%22%3A%22s3cret%22%7D&tier=PROD&data_localization_region=DE"
        );
        let (ct, body) = encode(Encoding::Multipart, &register());
        assert_eq!(
            ct.unwrap(),
            "multipart/form-data; boundary=wa-verify-3f9c1d7e5b"
        );
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "--wa-verify-3f9c1d7e5b\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n\
             --wa-verify-3f9c1d7e5b\r\nContent-Disposition: form-data; name=\"pin\"\r\n\r\n123456\r\n\
             --wa-verify-3f9c1d7e5b--\r\n"
        );
    }

    /// See: issue 16 (Meta's spec defines no deregister body; `{}` was refused).
    #[test]
    fn deregister_sends_no_body_and_no_content_type_in_any_encoding() {
        let op = Deregister::new("1".parse().unwrap());
        for encoding in [Encoding::Json, Encoding::Form, Encoding::Multipart] {
            let (ct, body) = encode(encoding, &op);
            assert_eq!(ct, None, "{encoding}");
            assert!(body.is_empty(), "{encoding}");
        }
    }

    #[test]
    fn pin_is_six_digits_and_never_printed() {
        let pin: Pin = "864213".parse().unwrap();
        assert!(!format!("{pin:?}{pin}").contains("864213"));
        for bad in ["12345", "1234567", "abcdef", ""] {
            let e = bad.parse::<Pin>().unwrap_err().to_string();
            assert!(e.contains("PIN must be exactly six ASCII digits"), "{e}");
        }
    }

    #[test]
    fn backup_tier_and_region_validation() {
        assert!(Backup::new("", "d")
            .unwrap_err()
            .to_string()
            .contains("non-empty password"));
        assert!(Backup::new("p", "").is_err());
        let b = Backup::new("hunter22", "data").unwrap();
        assert!(!format!("{b:?}").contains("hunter22"));
        assert_eq!("sandbox".parse::<Tier>().unwrap(), Tier::Sandbox);
        assert!("gold"
            .parse::<Tier>()
            .unwrap_err()
            .to_string()
            .contains("PROD or SANDBOX"));
        assert_eq!("in".parse::<Region>().unwrap().as_str(), "IN");
        let e = "US".parse::<Region>().unwrap_err().to_string();
        assert!(e.contains("AE, AU") && e.contains("\"US\""), "{e}");
        let op = register().backup(b);
        assert!(!format!("{op:?}").contains("hunter22") && !format!("{op:?}").contains("123456"));
    }

    #[test]
    fn registration_is_never_resent_after_it_may_have_arrived() {
        assert_eq!(register().retry_mode(), RetryMode::OnlyIfNotSent);
        assert_eq!(
            Deregister::new("1".parse().unwrap()).quota_class(),
            QuotaClass::Registration
        );
    }
}
