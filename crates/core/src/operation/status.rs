//! `GET /{version}/{phone_number_id}`: what Meta knows about a number (verified or not, its
//! platform, its display name's review, its connection), read before acting on it.
//!
//! Live answers mix the spec's two vocabularies (`VERIFIED`/`UNVERIFIED` and
//! `NOT_VERIFIED`, `NA` and `UNKNOWN`, …), so every enum takes both and keeps anything else
//! as `Other(String)`: a new value never fails the call.

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::{
    shown, CallContext, DedupRole, Field, Operation, PhoneNumberId, QuotaClass, RetryMode,
};
use crate::error::Error;

/// The fields asked for when none are given: every field [`PhoneNumberInfo`] types.
const DEFAULT_FIELDS: &[&str] = &[
    "id",
    "display_phone_number",
    "verified_name",
    "code_verification_status",
    "quality_rating",
    "name_status",
    "status",
    "platform_type",
    "throughput",
    "is_pin_enabled",
    "is_official_business_account",
    "account_mode",
];

/// The fields onboarding reads before it acts.
const PREFLIGHT_FIELDS: &[&str] = &[
    "code_verification_status",
    "platform_type",
    "name_status",
    "status",
];

/// The most fields one call asks for.
const MAX_FIELDS: usize = 64;

/// Reads a number's status. Idempotent: the retry policy may send it again after an
/// ambiguous failure (a timeout, a 500/502/504), which it never does for `request_code`.
///
/// ```
/// use wa_verify_core::PhoneNumberStatus;
/// let op = PhoneNumberStatus::new("1234567890".parse()?).fields(["status", "platform_type"])?;
/// assert!(PhoneNumberStatus::new("1".parse()?).fields(["status&x=1"]).is_err());
/// # Ok::<(), wa_verify_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumberStatus {
    phone_number_id: PhoneNumberId,
    /// The `fields` parameter, checked: names of `a-z`, `0-9`, `_`, joined by commas.
    fields: String,
    context: CallContext,
}

impl PhoneNumberStatus {
    /// The fields asked for when none are given: every field [`PhoneNumberInfo`] types.
    pub const DEFAULT_FIELDS: &'static [&'static str] = DEFAULT_FIELDS;

    /// The fields onboarding reads before it acts (`code_verification_status`,
    /// `platform_type`, `name_status`, `status`).
    pub const PREFLIGHT_FIELDS: &'static [&'static str] = PREFLIGHT_FIELDS;

    /// A read of `phone_number_id`'s [`DEFAULT_FIELDS`](Self::DEFAULT_FIELDS).
    pub fn new(phone_number_id: PhoneNumberId) -> Self {
        Self {
            phone_number_id,
            fields: DEFAULT_FIELDS.join(","),
            context: CallContext::default(),
        }
    }

    /// Asks for these fields instead (unknown ones come back in
    /// [`PhoneNumberInfo::extra`]).
    ///
    /// # Errors
    ///
    /// `invalid_input` for an empty list, more than 64 fields, or a name that is not
    /// lower-case letters, digits and `_` (nothing that could change the query).
    pub fn fields<I, S>(mut self, fields: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for f in fields {
            let f = f.as_ref().trim();
            let ok = !f.is_empty()
                && f.len() <= 64
                && f.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(Error::invalid_input(format!(
                    "a field name is lower-case letters, digits and _ (like code_verification_status), got {}",
                    shown(f)
                )));
            }
            list.push(f.to_owned());
        }
        if list.is_empty() || list.len() > MAX_FIELDS {
            return Err(Error::invalid_input(format!(
                "fields must name 1 to {MAX_FIELDS} fields, got {}",
                list.len()
            )));
        }
        self.fields = list.join(",");
        Ok(self)
    }

    /// The `fields` parameter as sent.
    pub fn field_list(&self) -> &str {
        &self.fields
    }

    tenant_accessor!();
}

impl Operation for PhoneNumberStatus {
    type Output = PhoneNumberInfo;

    fn name(&self) -> &'static str {
        "phone_number_status"
    }

    fn phone_number_id(&self) -> PhoneNumberId {
        self.phone_number_id
    }

    fn method(&self) -> http::Method {
        http::Method::GET
    }

    fn path_tail(&self) -> Option<&'static str> {
        None
    }

    fn fields<'a>(&'a self, f: &mut dyn FnMut(Field<'a>)) {
        f(Field::text("fields", &self.fields));
    }

    fn retry_mode(&self) -> RetryMode {
        RetryMode::Idempotent
    }

    fn quota_class(&self) -> QuotaClass {
        QuotaClass::Other
    }

    fn dedup(&self) -> DedupRole<'_> {
        DedupRole::None
    }

    call_context_accessors!();
}

/// What `GET /{id}` answered: every typed field (absent when not asked for or not sent),
/// and every other field kept in [`extra`](Self::extra).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PhoneNumberInfo {
    /// The phone number id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The number as people dial it (`+1 555-0100`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    /// The approved display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_name: Option<String>,
    /// Whether the number is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verification_status: Option<CodeVerificationStatus>,
    /// Its messaging quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_rating: Option<QualityRating>,
    /// Where its display name's review stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_status: Option<NameStatus>,
    /// Its connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NumberStatus>,
    /// Cloud API, or the WhatsApp Business app / On-Premises API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_type: Option<PlatformType>,
    /// Its throughput (`{"level": "STANDARD"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    /// Whether two-step verification is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_pin_enabled: Option<bool>,
    /// Whether it is an Official Business Account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_official_business_account: Option<bool>,
    /// `LIVE` or `SANDBOX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_mode: Option<AccountMode>,
    /// Every other field Meta sent, as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl super::Succeeded for PhoneNumberInfo {
    fn succeeded(&self) -> bool {
        true
    }
}

/// `throughput`: `{"level": "STANDARD" | "HIGH" | …}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Throughput {
    /// The level, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Anything else in the object.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `code_verification_status`: the spec's `VERIFIED`/`UNVERIFIED`/`EXPIRED` and the live
/// `NOT_VERIFIED`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodeVerificationStatus {
    /// `VERIFIED`.
    Verified,
    /// `UNVERIFIED` (the spec's).
    Unverified,
    /// `NOT_VERIFIED` (seen live).
    NotVerified,
    /// `EXPIRED`.
    Expired,
    /// Anything else, as sent.
    Other(String),
}

/// `quality_rating`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QualityRating {
    /// `GREEN`.
    Green,
    /// `YELLOW`.
    Yellow,
    /// `RED`.
    Red,
    /// `NA` (the spec's).
    Na,
    /// `UNKNOWN` (seen live).
    Unknown,
    /// Anything else, as sent.
    Other(String),
}

/// `platform_type`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PlatformType {
    /// `CLOUD_API`.
    CloudApi,
    /// `ON_PREMISE`: the WhatsApp Business app or the On-Premises API; register refuses it
    /// until the number is migrated.
    OnPremise,
    /// `NOT_APPLICABLE`.
    NotApplicable,
    /// Anything else, as sent.
    Other(String),
}

/// `status`: the number's connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NumberStatus {
    /// `CONNECTED`.
    Connected,
    /// `DISCONNECTED`.
    Disconnected,
    /// `UNVERIFIED`.
    Unverified,
    /// `PENDING`.
    Pending,
    /// `FLAGGED`.
    Flagged,
    /// `RESTRICTED`.
    Restricted,
    /// `LINKED`.
    Linked,
    /// `UNLINKED`.
    Unlinked,
    /// `DELETED`.
    Deleted,
    /// `MIGRATED`.
    Migrated,
    /// `BANNED`.
    Banned,
    /// Anything else, as sent.
    Other(String),
}

/// `name_status`: where the display name's review stands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameStatus {
    /// `APPROVED`.
    Approved,
    /// `AVAILABLE_WITHOUT_REVIEW`.
    AvailableWithoutReview,
    /// `DECLINED`.
    Declined,
    /// `EXPIRED`.
    Expired,
    /// `PENDING_REVIEW`.
    PendingReview,
    /// `NONE`.
    None,
    /// `NAME_APPROVED`.
    NameApproved,
    /// `NAME_DECLINED`.
    NameDeclined,
    /// `NAME_PENDING_REVIEW`.
    NamePendingReview,
    /// `NAME_NOT_APPROVED`.
    NameNotApproved,
    /// Anything else, as sent.
    Other(String),
}

/// `account_mode`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AccountMode {
    /// `LIVE`.
    Live,
    /// `SANDBOX`.
    Sandbox,
    /// Anything else, as sent.
    Other(String),
}

/// `as_str`, `From<&str>`, `Display` and serde for a string enum with an `Other(String)`
/// variant; the enums are written out above, so their docs are where they are defined.
macro_rules! string_enum_impls {
    ($t:ident { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// The value as Meta writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($t::$v => $s,)*
                    $t::Other(s) => s,
                }
            }
        }

        impl From<&str> for $t {
            fn from(s: &str) -> Self {
                match s {
                    $($s => $t::$v,)*
                    other => $t::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok($t::from(&*s))
            }
        }
    };
}

string_enum_impls!(CodeVerificationStatus {
    Verified => "VERIFIED",
    Unverified => "UNVERIFIED",
    NotVerified => "NOT_VERIFIED",
    Expired => "EXPIRED",
});
string_enum_impls!(QualityRating {
    Green => "GREEN",
    Yellow => "YELLOW",
    Red => "RED",
    Na => "NA",
    Unknown => "UNKNOWN",
});
string_enum_impls!(PlatformType {
    CloudApi => "CLOUD_API",
    OnPremise => "ON_PREMISE",
    NotApplicable => "NOT_APPLICABLE",
});
string_enum_impls!(NumberStatus {
    Connected => "CONNECTED",
    Disconnected => "DISCONNECTED",
    Unverified => "UNVERIFIED",
    Pending => "PENDING",
    Flagged => "FLAGGED",
    Restricted => "RESTRICTED",
    Linked => "LINKED",
    Unlinked => "UNLINKED",
    Deleted => "DELETED",
    Migrated => "MIGRATED",
    Banned => "BANNED",
});
string_enum_impls!(NameStatus {
    Approved => "APPROVED",
    AvailableWithoutReview => "AVAILABLE_WITHOUT_REVIEW",
    Declined => "DECLINED",
    Expired => "EXPIRED",
    PendingReview => "PENDING_REVIEW",
    None => "NONE",
    NameApproved => "NAME_APPROVED",
    NameDeclined => "NAME_DECLINED",
    NamePendingReview => "NAME_PENDING_REVIEW",
    NameNotApproved => "NAME_NOT_APPROVED",
});
string_enum_impls!(AccountMode {
    Live => "LIVE",
    Sandbox => "SANDBOX",
});

impl NameStatus {
    /// Whether a number with this display name may register now (`APPROVED`,
    /// `AVAILABLE_WITHOUT_REVIEW`, and the `NAME_APPROVED` spelling).
    pub fn allows_register(&self) -> bool {
        matches!(
            self,
            NameStatus::Approved | NameStatus::AvailableWithoutReview | NameStatus::NameApproved
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of both vocabularies, and an unknown one, round-trips through the typed
    /// answer.
    #[test]
    fn spec_live_and_unknown_values_all_parse() {
        let cases: &[(&str, &[&str])] = &[
            (
                "code_verification_status",
                &["VERIFIED", "UNVERIFIED", "NOT_VERIFIED", "EXPIRED"],
            ),
            (
                "quality_rating",
                &["GREEN", "YELLOW", "RED", "NA", "UNKNOWN"],
            ),
            (
                "platform_type",
                &["CLOUD_API", "ON_PREMISE", "NOT_APPLICABLE"],
            ),
            (
                "status",
                &[
                    "CONNECTED",
                    "DISCONNECTED",
                    "UNVERIFIED",
                    "PENDING",
                    "FLAGGED",
                    "RESTRICTED",
                    "LINKED",
                    "UNLINKED",
                    "DELETED",
                    "MIGRATED",
                    "BANNED",
                ],
            ),
            (
                "name_status",
                &[
                    "APPROVED",
                    "AVAILABLE_WITHOUT_REVIEW",
                    "DECLINED",
                    "EXPIRED",
                    "PENDING_REVIEW",
                    "NONE",
                    "NAME_APPROVED",
                    "NAME_DECLINED",
                    "NAME_PENDING_REVIEW",
                    "NAME_NOT_APPROVED",
                ],
            ),
            ("account_mode", &["LIVE", "SANDBOX"]),
        ];
        for (field, values) in cases {
            for v in values.iter().copied().chain(["SOMETHING_NEW"]) {
                let body = serde_json::json!({ *field: v });
                let info: PhoneNumberInfo = serde_json::from_value(body.clone()).unwrap();
                assert!(info.extra.is_empty(), "{field}={v} is typed");
                assert_eq!(serde_json::to_value(&info).unwrap(), body, "{field}={v}");
                let known = match *field {
                    "code_verification_status" => !matches!(
                        info.code_verification_status,
                        Some(CodeVerificationStatus::Other(_))
                    ),
                    "quality_rating" => {
                        !matches!(info.quality_rating, Some(QualityRating::Other(_)))
                    }
                    "platform_type" => !matches!(info.platform_type, Some(PlatformType::Other(_))),
                    "status" => !matches!(info.status, Some(NumberStatus::Other(_))),
                    "name_status" => !matches!(info.name_status, Some(NameStatus::Other(_))),
                    _ => !matches!(info.account_mode, Some(AccountMode::Other(_))),
                };
                assert_eq!(known, v != "SOMETHING_NEW", "{field}={v}");
            }
        }
    }

    #[test]
    fn a_live_answer_keeps_every_field() {
        let body = serde_json::json!({
            "id": "1234567890",
            "display_phone_number": "+1 555-0100",
            "verified_name": "Acme",
            "code_verification_status": "NOT_VERIFIED",
            "quality_rating": "UNKNOWN",
            "platform_type": "ON_PREMISE",
            "status": "DISCONNECTED",
            "throughput": {"level": "STANDARD", "new": 1},
            "is_pin_enabled": false,
            "is_official_business_account": false,
            "account_mode": "LIVE",
            "name_status": "PENDING_REVIEW",
            "new_top_level": {"x": [1, 2]},
        });
        let info: PhoneNumberInfo = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(info.platform_type, Some(PlatformType::OnPremise));
        assert_eq!(
            info.code_verification_status,
            Some(CodeVerificationStatus::NotVerified)
        );
        assert_eq!(
            info.throughput.as_ref().and_then(|t| t.level.as_deref()),
            Some("STANDARD")
        );
        assert_eq!(
            info.extra["new_top_level"],
            serde_json::json!({"x": [1, 2]})
        );
        assert!(!info.name_status.as_ref().unwrap().allows_register());
        assert_eq!(serde_json::to_value(&info).unwrap(), body);
    }

    #[test]
    fn field_names_cannot_change_the_query() {
        let op = || PhoneNumberStatus::new("1".parse().unwrap());
        for bad in ["", "a&b", "a=b", "A", "a b", "a,b", "a%2C"] {
            assert!(op().fields([bad]).is_err(), "{bad:?}");
        }
        assert!(op().fields(Vec::<&str>::new()).is_err());
        assert_eq!(
            op().fields(["status", "name_status"]).unwrap().field_list(),
            "status,name_status"
        );
    }
}
