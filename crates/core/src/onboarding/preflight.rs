//! Reading a number's status before acting on it: whether a code is needed at all, and
//! whether the next step can work.

use crate::client::{Client, HttpService};
use crate::error::Error;
use crate::operation::{
    CodeVerificationStatus, PhoneNumberId, PhoneNumberInfo, PhoneNumberStatus, PlatformType,
};

/// What onboarding reads first (`code_verification_status`, `platform_type`,
/// `name_status`, `status`), and what it says about the next steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Preflight {
    id: PhoneNumberId,
    info: PhoneNumberInfo,
}

impl Preflight {
    /// Reads `id`'s status through `client` (one idempotent `GET`).
    ///
    /// # Errors
    ///
    /// The status call's [`Error`].
    pub async fn read<H: HttpService>(
        client: &Client<H>,
        id: PhoneNumberId,
    ) -> Result<Self, Error> {
        let op = PhoneNumberStatus::new(id).fields(PhoneNumberStatus::PREFLIGHT_FIELDS)?;
        let info = client.status(op).await?.into_output();
        Ok(Self { id, info })
    }

    /// A preflight from a status already read.
    pub fn from_info(id: PhoneNumberId, info: PhoneNumberInfo) -> Self {
        Self { id, info }
    }

    /// What Meta answered.
    pub fn info(&self) -> &PhoneNumberInfo {
        &self.info
    }

    /// Whether the number is verified already: requesting and checking a code is pointless.
    pub fn is_verified(&self) -> bool {
        self.info.code_verification_status == Some(CodeVerificationStatus::Verified)
    }

    /// Whether a code may be requested: not for a number on the WhatsApp Business app or
    /// the On-Premises API.
    ///
    /// # Errors
    ///
    /// `precondition` with reason `on_premise`.
    pub fn check_code(&self) -> Result<(), Error> {
        if self.info.platform_type == Some(PlatformType::OnPremise) {
            return Err(Error::precondition(
                "on_premise",
                format!(
                    "number {} is on the WhatsApp Business app or the On-Premises API \
                     (platform_type ON_PREMISE): migrate it to the Cloud API first; \
                     register refuses it with \"Register endpoint is not available for SMB businesses\"",
                    self.id
                ),
            ));
        }
        Ok(())
    }

    /// Whether `register` can work: the platform as for a code, and a display name
    /// through review (`APPROVED` or `AVAILABLE_WITHOUT_REVIEW`).
    ///
    /// # Errors
    ///
    /// `precondition` with reason `on_premise` or `name_not_approved`.
    pub fn check_register(&self) -> Result<(), Error> {
        self.check_code()?;
        match &self.info.name_status {
            Some(s) if !s.allows_register() => Err(Error::precondition(
                "name_not_approved",
                format!(
                    "number {}'s display name is {s}, not APPROVED or AVAILABLE_WITHOUT_REVIEW: \
                     registering now fails with 100/2388001 \"Cannot Create Certificate\"; \
                     wait for the review (or force it)",
                    self.id
                ),
            )),
            _ => Ok(()),
        }
    }
}
