//! The typed operations (`request_code`, `verify_code`) and the validated values they carry.
//!
//! Every value is checked when it is built, so a bad id, language or code is refused
//! locally with a message that says what is accepted, and never reaches the network.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::Error;
use crate::rate_limit::QuotaClass;

// ===== InlineStr =====

/// A short ASCII string stored inline, so validated values stay `Copy` and allocation-free.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct InlineStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> InlineStr<N> {
    /// Callers have already checked that `s` is ASCII and at most `N` bytes.
    fn new(s: &str) -> Self {
        let mut bytes = [0; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Self {
            len: s.len() as u8,
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        // Only ever built from a `&str` that was checked to be ASCII.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// Shows at most 40 characters of a refused value, so a huge input does not flood an error.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    format!("{out:?}")
}

// ===== PhoneNumberId =====

/// A WhatsApp Business phone number id: 1 to 20 ASCII digits.
///
/// Only digits are accepted, so the id can never change the request path (`../me`).
///
/// ```
/// use wa_verify_core::PhoneNumberId;
/// let id: PhoneNumberId = "1234567890".parse()?;
/// assert_eq!(id.as_str(), "1234567890");
/// assert!("12a".parse::<PhoneNumberId>().is_err());
/// # Ok::<(), wa_verify_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhoneNumberId(InlineStr<20>);

impl PhoneNumberId {
    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// A compact key for per-number state: the id itself when it fits in a `u64`
    /// without leading zeros (every id Meta issues), else a stable hash of its digits.
    pub fn key(&self) -> u64 {
        let s = self.as_str();
        if !s.starts_with('0') || s.len() == 1 {
            if let Ok(n) = s.parse::<u64>() {
                return n;
            }
        }
        // FNV-1a: stable across processes and replicas, unlike `RandomState`.
        s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

impl FromStr for PhoneNumberId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_input(format!(
                "phone number id must be 1 to 20 ASCII digits like 1234567890, got {}",
                shown(s)
            )));
        }
        Ok(Self(InlineStr::new(s)))
    }
}

impl From<u64> for PhoneNumberId {
    fn from(n: u64) -> Self {
        Self(InlineStr::new(&n.to_string()))
    }
}

impl fmt::Display for PhoneNumberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PhoneNumberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumberId({})", self.as_str())
    }
}

// ===== CodeMethod =====

/// How the verification code is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CodeMethod {
    /// A text message (`SMS` on the wire).
    #[default]
    Sms,
    /// A voice call (`VOICE` on the wire).
    Voice,
}

impl CodeMethod {
    /// The value sent on the wire: `SMS` or `VOICE`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeMethod::Sms => "SMS",
            CodeMethod::Voice => "VOICE",
        }
    }
}

impl FromStr for CodeMethod {
    type Err = Error;

    /// Case-insensitive: `sms`, `SMS`, `voice`, `VOICE`.
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.eq_ignore_ascii_case("sms") {
            Ok(CodeMethod::Sms)
        } else if s.eq_ignore_ascii_case("voice") {
            Ok(CodeMethod::Voice)
        } else {
            Err(Error::invalid_input(format!(
                "code method must be SMS or VOICE (any case), got {}",
                shown(s)
            )))
        }
    }
}

impl fmt::Display for CodeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ===== Language =====

/// The language of the code message: the spec's `en_US` form or Meta's two-letter `en`.
///
/// Meta's OpenAPI spec asks for `^[a-z]{2}_[A-Z]{2}$`, while its phone-number guide, its
/// own SDK and most clients send a two-letter code; the live API accepts both.
///
/// ```
/// use wa_verify_core::Language;
/// assert!("pt_BR".parse::<Language>().is_ok());
/// assert!("en".parse::<Language>().is_ok());
/// assert!("en-US".parse::<Language>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Language(InlineStr<5>);

impl Language {
    /// The language as sent on the wire.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Default for Language {
    /// `en_US`, the CLI's default.
    fn default() -> Self {
        Self(InlineStr::new("en_US"))
    }
}

impl FromStr for Language {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let b = s.as_bytes();
        let two = |x: &[u8], f: fn(&u8) -> bool| x.len() == 2 && x.iter().all(f);
        let ok = match b.len() {
            2 => two(b, u8::is_ascii_lowercase),
            5 => {
                two(&b[..2], u8::is_ascii_lowercase)
                    && b[2] == b'_'
                    && two(&b[3..], u8::is_ascii_uppercase)
            }
            _ => false,
        };
        if ok {
            Ok(Self(InlineStr::new(s)))
        } else {
            Err(Error::invalid_input(format!(
                "language must be a two-letter code like en or a locale like en_US \
                 (lowercase language, underscore, uppercase region), got {}",
                shown(s)
            )))
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Language({})", self.as_str())
    }
}

// ===== ApiVersion =====

/// A Graph API version such as `v23.0` (`^v[0-9]+\.[0-9]+$`); the default is `v23.0`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiVersion(InlineStr<12>);

impl ApiVersion {
    /// The version as it appears in the path.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        Self(InlineStr::new("v23.0"))
    }
}

impl FromStr for ApiVersion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let valid = s.len() <= 12
            && s.strip_prefix('v')
                .and_then(|rest| rest.split_once('.'))
                .is_some_and(|(major, minor)| {
                    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
                    digits(major) && digits(minor)
                });
        if valid {
            Ok(Self(InlineStr::new(s)))
        } else {
            Err(Error::invalid_input(format!(
                "api version must look like v23.0 (v, digits, dot, digits), got {}",
                shown(s)
            )))
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiVersion({})", self.as_str())
    }
}

// ===== secrets =====

/// Six ASCII digits that must never be printed: the inside of codes and PINs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SixDigits([u8; 6]);

impl SixDigits {
    pub(crate) fn parse(s: &str, what: &str, example: &str) -> Result<Self, Error> {
        let b = s.as_bytes();
        if b.len() == 6 && b.iter().all(u8::is_ascii_digit) {
            let mut d = [0; 6];
            d.copy_from_slice(b);
            Ok(Self(d))
        } else {
            // The refused value is not echoed: it may be a real secret with a typo.
            Err(Error::invalid_input(format!(
                "{what} must be exactly six ASCII digits like {example}, got {} characters{}",
                s.chars().count(),
                if b.iter().all(u8::is_ascii_digit) {
                    ""
                } else {
                    " including non-digits"
                }
            )))
        }
    }

    pub(crate) fn expose(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The six-digit code the user received, for `verify_code`.
///
/// Its `Debug` and `Display` print `VerificationCode(***)`; only
/// [`expose`](Self::expose) shows the digits, for the request body.
///
/// ```
/// use wa_verify_core::VerificationCode;
/// let code: VerificationCode = "123456".parse()?;
/// assert_eq!(format!("{code:?}"), "VerificationCode(***)");
/// assert_eq!(code.expose(), "123456");
/// # Ok::<(), wa_verify_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationCode(SixDigits);

impl VerificationCode {
    /// The digits, for the request body. Keep them out of logs.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl FromStr for VerificationCode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        SixDigits::parse(s, "verification code", "123456").map(Self)
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode(***)")
    }
}

impl fmt::Display for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode(***)")
    }
}

// ===== Operation =====

/// How a body field is written: plain text in every encoding.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The parameter name (`code_method`, `language`, `code`).
    pub name: &'static str,
    /// The value, already validated.
    pub value: &'a str,
    /// Whether `value` is a JSON object: written as is in a JSON body, as text (the
    /// object's JSON) in form and multipart bodies, as Graph reads them.
    pub json: bool,
}

impl<'a> Field<'a> {
    /// A text parameter.
    pub fn text(name: &'static str, value: &'a str) -> Self {
        Self {
            name,
            value,
            json: false,
        }
    }

    /// A JSON object parameter (already serialized).
    pub fn json(name: &'static str, value: &'a str) -> Self {
        Self {
            name,
            value,
            json: true,
        }
    }
}

/// When an operation may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryMode {
    /// Retry when the server cannot have acted or says a retry is right
    /// (`request_code`, `verify_code`).
    Standard,
    /// Retry only when the request was certainly never sent (connection refused, DNS, TLS).
    OnlyIfNotSent,
}

/// Which attempt of a call an operation is sent as, and the backoff wait before it. The
/// retry policy sets it on the copy it sends again; the boundary records it on the
/// attempt's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The wait that preceded this attempt.
    pub waited: std::time::Duration,
}

impl Default for Attempt {
    fn default() -> Self {
        Self {
            number: 1,
            waited: std::time::Duration::ZERO,
        }
    }
}

/// A typed Graph API call: where it goes, what it sends and what it answers.
pub trait Operation: Clone + Send + Sync + 'static {
    /// The parsed 200 answer.
    type Output: DeserializeOwned + Succeeded + Send + 'static;

    /// The operation's name, used for spans and the path's last segment (`request_code`).
    fn name(&self) -> &'static str;

    /// The number the call is about.
    fn phone_number_id(&self) -> PhoneNumberId;

    /// Calls `f` with each body field in order.
    fn fields<'a>(&'a self, f: &mut dyn FnMut(Field<'a>));

    /// The delivery method, when the operation has one (for spans).
    fn code_method(&self) -> Option<CodeMethod> {
        None
    }

    /// The language, when the operation has one (for spans).
    fn language(&self) -> Option<Language> {
        None
    }

    /// When this operation may be retried.
    fn retry_mode(&self) -> RetryMode {
        RetryMode::Standard
    }

    /// Which rate limits apply to it.
    fn quota_class(&self) -> QuotaClass {
        QuotaClass::Other
    }

    /// What the layers record on this call as it goes down the stack (the attempt, the
    /// deadline); `None` for operations that do not track it.
    fn context(&self) -> Option<&CallContext> {
        None
    }

    /// The call context to write to; `None` for operations that do not track it.
    fn context_mut(&mut self) -> Option<&mut CallContext> {
        None
    }

    /// Which attempt this is (1 unless the retry policy set another).
    fn attempt(&self) -> Attempt {
        self.context().map(|c| c.attempt).unwrap_or_default()
    }

    /// Marks this copy as a later attempt; operations that do not track it ignore it.
    fn set_attempt(&mut self, attempt: Attempt) {
        if let Some(c) = self.context_mut() {
            c.attempt = attempt;
        }
    }
}

/// What the layers write on an operation as it goes down the stack: which attempt this
/// copy is, and when the whole call must end (set by the `Deadline` layer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallContext {
    /// Which attempt this copy is sent as.
    pub attempt: Attempt,
    /// When the whole call must end, if it has a deadline.
    pub deadline: Option<tokio::time::Instant>,
}

/// An answer with a `success` flag: `success: false` becomes an `unsuccessful` error.
pub trait Succeeded {
    /// Whether the API said `success: true`.
    fn succeeded(&self) -> bool;
}

/// `POST /{version}/{phone_number_id}/request_code`: send a code by SMS or voice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestCode {
    phone_number_id: PhoneNumberId,
    code_method: CodeMethod,
    language: Language,
    pre_verified: bool,
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
            context: CallContext::default(),
        }
    }

    /// Marks the id as a pre-verified phone number id (Meta's
    /// `/{Version}/{Pre-Verified-Phone-Number-ID}/request_code`: same path and body).
    #[must_use]
    pub fn pre_verified(mut self) -> Self {
        self.pre_verified = true;
        self
    }

    /// Whether the id is a pre-verified phone number id.
    pub fn is_pre_verified(&self) -> bool {
        self.pre_verified
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

    fn context(&self) -> Option<&CallContext> {
        Some(&self.context)
    }

    fn context_mut(&mut self) -> Option<&mut CallContext> {
        Some(&mut self.context)
    }
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

    /// Marks the id as a pre-verified phone number id (same path and body).
    #[must_use]
    pub fn pre_verified(mut self) -> Self {
        self.pre_verified = true;
        self
    }

    /// Whether the id is a pre-verified phone number id.
    pub fn is_pre_verified(&self) -> bool {
        self.pre_verified
    }
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
        f(Field::text("code", self.code.expose()));
    }

    fn quota_class(&self) -> QuotaClass {
        QuotaClass::VerifyCode
    }

    fn context(&self) -> Option<&CallContext> {
        Some(&self.context)
    }

    fn context_mut(&mut self) -> Option<&mut CallContext> {
        Some(&mut self.context)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused<T: FromStr<Err = Error> + fmt::Debug>(s: &str) -> String {
        s.parse::<T>().unwrap_err().to_string()
    }

    #[test]
    fn phone_number_id_accepts_1_to_20_digits() {
        for ok in ["1", "1234567890", "12345678901234567890", "0123"] {
            assert_eq!(ok.parse::<PhoneNumberId>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn phone_number_id_refuses_non_digits_empty_and_long() {
        for bad in ["", "../me", "12a", " 12", "123456789012345678901", "１２"] {
            let msg = refused::<PhoneNumberId>(bad);
            assert!(msg.contains("1 to 20 ASCII digits"), "{msg}");
        }
        assert!(refused::<PhoneNumberId>("../me").contains("\"../me\""));
    }

    #[test]
    fn phone_number_id_key_is_numeric_and_distinguishes_leading_zeros() {
        let k = |s: &str| s.parse::<PhoneNumberId>().unwrap().key();
        assert_eq!(k("1234567890"), 1_234_567_890);
        assert_ne!(k("0123"), k("123"));
        assert_ne!(k("99999999999999999999"), k("99999999999999999998"));
    }

    #[test]
    fn code_method_parses_any_case_and_writes_upper() {
        assert_eq!("sms".parse::<CodeMethod>().unwrap(), CodeMethod::Sms);
        assert_eq!("VOICE".parse::<CodeMethod>().unwrap().as_str(), "VOICE");
        assert_eq!("Voice".parse::<CodeMethod>().unwrap(), CodeMethod::Voice);
        assert!(refused::<CodeMethod>("email").contains("SMS or VOICE"));
    }

    #[test]
    fn language_accepts_both_meta_forms() {
        for ok in ["en_US", "pt_BR", "en", "de"] {
            assert_eq!(ok.parse::<Language>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn language_refuses_other_forms_naming_both() {
        for bad in [
            "", "en-US", "EN_us", "e", "eng", "en_us", "EN", "en_USA", "en US",
        ] {
            let msg = refused::<Language>(bad);
            assert!(msg.contains("en_US") && msg.contains(" en "), "{msg}");
        }
    }

    #[test]
    fn api_version_pattern() {
        for ok in ["v23.0", "v1.0", "v100.12"] {
            assert_eq!(ok.parse::<ApiVersion>().unwrap().as_str(), ok);
        }
        for bad in ["23.0", "v23", "v.0", "v23.", "V23.0", "v23.0/../x", "v2a.0"] {
            assert!(refused::<ApiVersion>(bad).contains("v23.0"), "{bad}");
        }
        assert_eq!(ApiVersion::default().as_str(), "v23.0");
    }

    #[test]
    fn verification_code_is_six_digits_and_never_printed() {
        let code: VerificationCode = "654321".parse().unwrap();
        assert_eq!(code.expose(), "654321");
        assert!(!format!("{code:?}{code}").contains("654321"));
        for bad in ["12345", "1234567", "12345a", ""] {
            let msg = refused::<VerificationCode>(bad);
            assert!(msg.contains("six ASCII digits"), "{msg}");
        }
        assert!(!refused::<VerificationCode>("6543219").contains("6543219"));
    }
}
