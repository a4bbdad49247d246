//! The rest of bringing a number onto the Cloud API: `register` with a two-step PIN,
//! `deregister`, and a typed flow that cannot be used out of order.
//!
//! Meta allows 10 register/deregister calls per number in a moving 72 hours, then blocks
//! the number for 72 hours (error 133016). So these operations are never retried after
//! the request may have reached Meta ([`RetryMode::OnlyIfNotSent`]), and they share a
//! per-number budget in the rate limiter ([`QuotaClass::Registration`]).
//!
//! # The flow
//!
//! ```
//! use wa_verify_core::onboarding::Onboarding;
//! use wa_verify_core::{Client, CodeMethod};
//! use wa_verify_sandbox::Sandbox;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::builder().start().await?;
//! let client = Client::builder()
//!     .base_url(sandbox.base_url().parse()?)
//!     .token(sandbox.token().parse()?)
//!     .build()?;
//! let requested = Onboarding::new(client, "1234567890".parse()?)
//!     .request_code(CodeMethod::Sms, "en_US".parse()?)
//!     .await?;
//! let code = sandbox.outbox().last_code("1234567890").unwrap();
//! let verified = requested.verify(code.parse()?).await.map_err(|e| e.into_error())?;
//! let registered = verified.register("246810".parse()?).await.map_err(|e| e.into_error())?;
//! registered.deregister().await.map_err(|e| e.into_error())?;
//! # Ok(())
//! # }
//! ```
//!
//! Each step is its own type, so registering before verifying does not compile:
//!
//! ```compile_fail
//! # use wa_verify_core::onboarding::Onboarding;
//! # async fn f(client: wa_verify_core::Client) {
//! let flow = Onboarding::new(client, "1".parse().unwrap());
//! flow.register("123456".parse().unwrap()).await;
//! # }
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use tower::Service;

use crate::client::{Client, Stack};
use crate::error::Error;
use crate::graph::RequestBody;
use crate::operation::{
    shown, CallContext, CodeMethod, Field, Language, Operation, PhoneNumberId, RequestCode,
    RequestCodeResponse, RetryMode, SixDigits, Succeeded, VerificationCode, VerifyCode,
    VerifyCodeResponse,
};
use crate::rate_limit::QuotaClass;
use crate::response::Response;

// ===== values =====

/// The six-digit two-step verification PIN. Its `Debug` and `Display` print `Pin(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(SixDigits);

impl Pin {
    /// The digits, for the request body. Keep them out of logs.
    pub fn expose(&self) -> &str {
        self.0.expose()
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

// ===== operations =====

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
        f(Field::text("pin", self.pin.expose()));
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

    fn retry_mode(&self) -> RetryMode {
        RetryMode::OnlyIfNotSent
    }

    fn quota_class(&self) -> QuotaClass {
        QuotaClass::Registration
    }

    fn context(&self) -> Option<&CallContext> {
        Some(&self.context)
    }

    fn context_mut(&mut self) -> Option<&mut CallContext> {
        Some(&mut self.context)
    }
}

/// `POST /{version}/{phone_number_id}/deregister`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deregister {
    phone_number_id: PhoneNumberId,
    context: CallContext,
}

impl Deregister {
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

    fn retry_mode(&self) -> RetryMode {
        RetryMode::OnlyIfNotSent
    }

    fn quota_class(&self) -> QuotaClass {
        QuotaClass::Registration
    }

    fn context(&self) -> Option<&CallContext> {
        Some(&self.context)
    }

    fn context_mut(&mut self) -> Option<&mut CallContext> {
        Some(&mut self.context)
    }
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

// ===== the typed flow =====

/// A failed step: the error, and the state to try again from.
pub struct StepError<S> {
    state: S,
    error: Error,
}

impl<S> StepError<S> {
    /// The error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error, dropping the state.
    pub fn into_error(self) -> Error {
        self.error
    }

    /// The state and the error.
    pub fn into_parts(self) -> (S, Error) {
        (self.state, self.error)
    }
}

impl<S> fmt::Debug for StepError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepError")
            .field("error", &self.error)
            .finish()
    }
}

impl<S> fmt::Display for StepError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<S> std::error::Error for StepError<S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// What every state of the flow is made of, so one function moves between them.
trait FlowState<H>: Sized {
    fn client(&self) -> &Client<H>;
    fn into_parts(self) -> (Client<H>, PhoneNumberId, bool);
    fn from_parts(client: Client<H>, id: PhoneNumberId, pre_verified: bool) -> Self;
}

/// Sends `op`; on success moves to state `N`, on failure gives `state` back with the error.
async fn advance<H, S, N, O>(state: S, op: O) -> Result<N, StepError<S>>
where
    H: Service<http::Request<RequestBody>> + Clone + Send + Sync + 'static,
    S: FlowState<H>,
    N: FlowState<H>,
    O: Operation,
    Stack<H>: Service<O, Response = Response<O::Output>, Error = Error>,
{
    match state.client().call(op).await {
        Ok(_) => {
            let (client, id, pre_verified) = state.into_parts();
            Ok(N::from_parts(client, id, pre_verified))
        }
        Err(error) => Err(StepError { state, error }),
    }
}

macro_rules! flow_state {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<H = crate::transport::Transport> {
            client: Client<H>,
            id: PhoneNumberId,
            pre_verified: bool,
        }

        impl<H> $name<H> {
            /// The client the flow calls through.
            pub fn client(&self) -> &Client<H> {
                &self.client
            }

            /// The number being onboarded.
            pub fn phone_number_id(&self) -> PhoneNumberId {
                self.id
            }
        }

        impl<H> FlowState<H> for $name<H> {
            fn client(&self) -> &Client<H> {
                &self.client
            }

            fn into_parts(self) -> (Client<H>, PhoneNumberId, bool) {
                (self.client, self.id, self.pre_verified)
            }

            fn from_parts(client: Client<H>, id: PhoneNumberId, pre_verified: bool) -> Self {
                Self {
                    client,
                    id,
                    pre_verified,
                }
            }
        }

        impl<H> fmt::Debug for $name<H> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("phone_number_id", &self.id)
                    .field("pre_verified", &self.pre_verified)
                    .finish()
            }
        }
    };
}

flow_state!(
    /// The start of onboarding: nothing asked yet. See the [module docs](self).
    Onboarding
);
flow_state!(
    /// A code was sent; verify it next (or ask again).
    CodeRequested
);
flow_state!(
    /// The number is verified; register it next.
    Verified
);
flow_state!(
    /// The number is registered.
    Registered
);
flow_state!(
    /// The number was deregistered.
    Deregistered
);

impl<H> Onboarding<H> {
    /// Starts onboarding `id` through `client`.
    pub fn new(client: Client<H>, id: PhoneNumberId) -> Self {
        Self {
            client,
            id,
            pre_verified: false,
        }
    }

    /// Starts onboarding a pre-verified number (bought from Meta already verified).
    pub fn pre_verified(client: Client<H>, id: PhoneNumberId) -> Self {
        Self {
            client,
            id,
            pre_verified: true,
        }
    }
}

impl<H> Onboarding<H>
where
    H: Service<http::Request<RequestBody>> + Clone + Send + Sync + 'static,
    Stack<H>: Service<RequestCode, Response = Response<RequestCodeResponse>, Error = Error>,
{
    /// Sends the code.
    ///
    /// # Errors
    ///
    /// The call's [`Error`].
    pub async fn request_code(
        self,
        method: CodeMethod,
        language: Language,
    ) -> Result<CodeRequested<H>, Error> {
        let mut op = RequestCode::new(self.id, method, language);
        if self.pre_verified {
            op = op.pre_verified();
        }
        advance(self, op).await.map_err(StepError::into_error)
    }
}

impl<H> CodeRequested<H>
where
    H: Service<http::Request<RequestBody>> + Clone + Send + Sync + 'static,
    Stack<H>: Service<RequestCode, Response = Response<RequestCodeResponse>, Error = Error>
        + Service<VerifyCode, Response = Response<VerifyCodeResponse>, Error = Error>,
{
    /// Sends a new code (the previous one stops working).
    ///
    /// # Errors
    ///
    /// The call's error, with this state to try again from.
    pub async fn request_code_again(
        self,
        method: CodeMethod,
        language: Language,
    ) -> Result<Self, StepError<Self>> {
        let mut op = RequestCode::new(self.id, method, language);
        if self.pre_verified {
            op = op.pre_verified();
        }
        advance(self, op).await
    }

    /// Checks the code the number received.
    ///
    /// # Errors
    ///
    /// The call's error (`wrong_code` for a wrong code), with this state to try again.
    pub async fn verify(self, code: VerificationCode) -> Result<Verified<H>, StepError<Self>> {
        let mut op = VerifyCode::new(self.id, code);
        if self.pre_verified {
            op = op.pre_verified();
        }
        advance(self, op).await
    }
}

impl<H> Verified<H>
where
    H: Service<http::Request<RequestBody>> + Clone + Send + Sync + 'static,
    Stack<H>: Service<Register, Response = Response<SuccessResponse>, Error = Error>,
{
    /// Registers the number with `pin`.
    ///
    /// # Errors
    ///
    /// The call's error, with this state to try again from (mind the 10-per-72-hours
    /// budget: the error says when the next call is allowed).
    pub async fn register(self, pin: Pin) -> Result<Registered<H>, StepError<Self>> {
        let op = Register::new(self.id, pin);
        self.register_with(op).await
    }

    /// Registers with a prepared [`Register`] (backup, tier, region).
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register); also `invalid_input` when `op` is for another number.
    pub async fn register_with(self, op: Register) -> Result<Registered<H>, StepError<Self>> {
        if op.phone_number_id != self.id {
            let error = Error::invalid_input("the Register operation is for another number");
            return Err(StepError { state: self, error });
        }
        advance(self, op).await
    }
}

impl<H> Registered<H>
where
    H: Service<http::Request<RequestBody>> + Clone + Send + Sync + 'static,
    Stack<H>: Service<Deregister, Response = Response<SuccessResponse>, Error = Error>,
{
    /// Deregisters the number.
    ///
    /// # Errors
    ///
    /// The call's error, with this state to try again from.
    pub async fn deregister(self) -> Result<Deregistered<H>, StepError<Self>> {
        let op = Deregister::new(self.id);
        advance(self, op).await
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
