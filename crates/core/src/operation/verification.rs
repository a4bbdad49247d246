//! The verification calls: `request_code` and `verify_code`.

use std::sync::Arc;

use serde::Deserialize;

use super::values::{CodeMethod, Language, PhoneNumberId, VerificationCode};
use super::{CallContext, DedupRole, Field, Operation, QuotaClass, Succeeded};

/// `pre_verified` and `is_pre_verified`: the calls Meta also offers on pre-verified phone
/// number ids, at the same path with the same body.
macro_rules! pre_verified_accessors {
    ($edge:literal) => {
        #[doc = concat!(
                    "Marks the id as a pre-verified phone number id (Meta's\n",
                    "`/{Version}/{Pre-Verified-Phone-Number-ID}/", $edge, "`: same path and body)."
                )]
        #[must_use]
        pub fn pre_verified(mut self) -> Self {
            self.pre_verified = true;
            self
        }

        /// Whether the id is a pre-verified phone number id.
        pub fn is_pre_verified(&self) -> bool {
            self.pre_verified
        }
    };
}

/// `POST /{version}/{phone_number_id}/request_code`: send a code by SMS or voice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestCode {
    phone_number_id: PhoneNumberId,
    code_method: CodeMethod,
    language: Language,
    pre_verified: bool,
    resend: bool,
    idempotency_key: Option<Arc<str>>,
    context: CallContext,
}

impl RequestCode {
    /// A request for a code sent to `phone_number_id` by `code_method` in `language`.
    pub fn new(
        phone_number_id: PhoneNumberId,
        code_method: CodeMethod,
        language: Language,
    ) -> Self {
        Self {
            phone_number_id,
            code_method,
            language,
            pre_verified: false,
            resend: false,
            idempotency_key: None,
            context: CallContext::default(),
        }
    }

    pre_verified_accessors!("request_code");

    tenant_accessor!();

    /// Sends even when the number holds a live code (see [`dedup`](crate::dedup)): the
    /// caller knows the first one did not arrive. The call goes through the normal limits.
    #[must_use]
    pub fn resend(mut self) -> Self {
        self.resend = true;
        self
    }

    /// Whether the call asks to send again.
    pub fn is_resend(&self) -> bool {
        self.resend
    }

    /// An idempotency key (1 to 255 visible ASCII characters): a repeated call with the same
    /// key for the same number and method gets the first outcome instead of sending again.
    /// A key that is not valid is refused when the call is made, before any I/O.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl AsRef<str>) -> Self {
        self.idempotency_key = Some(Arc::from(key.as_ref()));
        self
    }
}

impl Operation for RequestCode {
    type Output = RequestCodeResponse;

    fn name(&self) -> &'static str {
        "request_code"
    }

    fn phone_number_id(&self) -> PhoneNumberId {
        self.phone_number_id
    }

    fn fields<'a>(&'a self, f: &mut dyn FnMut(Field<'a>)) {
        f(Field::text("code_method", self.code_method.as_str()));
        f(Field::text("language", self.language.as_str()));
    }

    fn code_method(&self) -> Option<CodeMethod> {
        Some(self.code_method)
    }

    fn language(&self) -> Option<Language> {
        Some(self.language)
    }

    fn quota_class(&self) -> QuotaClass {
        QuotaClass::RequestCode
    }

    fn dedup(&self) -> DedupRole<'_> {
        DedupRole::SendCode {
            method: self.code_method,
            resend: self.resend,
            idempotency_key: self.idempotency_key.as_deref(),
        }
    }

    call_context_accessors!();
}

/// The 200 answer of `request_code`: `{"success": true}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RequestCodeResponse {
    /// Whether the code was sent.
    pub success: bool,
}

impl Succeeded for RequestCodeResponse {
    fn succeeded(&self) -> bool {
        self.success
    }
}

/// `POST /{version}/{phone_number_id}/verify_code`: check the code the user received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyCode {
    phone_number_id: PhoneNumberId,
    code: VerificationCode,
    pre_verified: bool,
    context: CallContext,
}

impl VerifyCode {
    /// A check of `code` for `phone_number_id`.
    pub fn new(phone_number_id: PhoneNumberId, code: VerificationCode) -> Self {
        Self {
            phone_number_id,
            code,
            pre_verified: false,
            context: CallContext::default(),
        }
    }

    pre_verified_accessors!("verify_code");

    tenant_accessor!();
}

impl Operation for VerifyCode {
    type Output = VerifyCodeResponse;

    fn name(&self) -> &'static str {
        "verify_code"
    }

    fn phone_number_id(&self) -> PhoneNumberId {
        self.phone_number_id
    }

    fn fields<'a>(&'a self, f: &mut dyn FnMut(Field<'a>)) {
        f(Field::text("code", self.code.expose_secret()));
    }

    fn quota_class(&self) -> QuotaClass {
        QuotaClass::VerifyCode
    }

    fn dedup(&self) -> DedupRole<'_> {
        DedupRole::CheckCode
    }

    call_context_accessors!();
}

/// The 200 answer of `verify_code`: `{"success": true, "id": "<phone number id>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct VerifyCodeResponse {
    /// Whether the code was right.
    pub success: bool,
    /// The verified number's id, when Meta sends it.
    #[serde(default)]
    pub id: Option<String>,
}

impl Succeeded for VerifyCodeResponse {
    fn succeeded(&self) -> bool {
        self.success
    }
}
