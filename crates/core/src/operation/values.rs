//! The validated values operations carry: ids, methods, languages, versions, codes.
//!
//! Every value is checked when it is built, so a bad id, language or code is refused
//! locally with a message that says what is accepted, and never reaches the network.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;

use crate::error::Error;

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
pub struct PhoneNumberId {
    digits: InlineStr<20>,
    /// [`key`](Self::key), worked out once: every layer keyed by number reads it.
    key: u64,
}

impl PhoneNumberId {
    fn new(digits: &str) -> Self {
        Self {
            digits: InlineStr::new(digits),
            key: Self::key_of(digits),
        }
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        self.digits.as_str()
    }

    /// A compact key for per-number state: the id itself when it fits in a `u64`
    /// without leading zeros (every id Meta issues), else a stable hash of its digits.
    pub fn key(&self) -> u64 {
        self.key
    }

    fn key_of(s: &str) -> u64 {
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
        Ok(Self::new(s))
    }
}

impl From<u64> for PhoneNumberId {
    fn from(n: u64) -> Self {
        Self::new(&n.to_string())
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
#[non_exhaustive]
pub enum CodeMethod {
    /// A text message (`SMS` on the wire).
    #[default]
    Sms,
    /// A voice call (`VOICE` on the wire).
    Voice,
    /// An interactive voice response call (`IVR` on the wire; Meta's v26 reference).
    Ivr,
}

impl CodeMethod {
    /// The value sent on the wire: `SMS`, `VOICE` or `IVR`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeMethod::Sms => "SMS",
            CodeMethod::Voice => "VOICE",
            CodeMethod::Ivr => "IVR",
        }
    }
}

impl FromStr for CodeMethod {
    type Err = Error;

    /// Case-insensitive: `sms`, `voice`, `ivr`.
    fn from_str(s: &str) -> Result<Self, Error> {
        [CodeMethod::Sms, CodeMethod::Voice, CodeMethod::Ivr]
            .into_iter()
            .find(|m| s.eq_ignore_ascii_case(m.as_str()))
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "code method must be SMS, VOICE or IVR (any case), got {}",
                    shown(s)
                ))
            })
    }
}

impl fmt::Display for CodeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ===== Language =====

/// The language of the code message, in the forms of Meta's supported-language list: a
/// two- or three-letter code (`en`, `fil`), optionally with a region (`en_US`, `prs_AF`).
///
/// Meta's OpenAPI spec asks for `^[a-z]{2}_[A-Z]{2}$`, while its phone-number guide, its
/// own SDK and most clients send a two-letter code; the live API accepts both. Nothing else
/// is accepted, so a language can never inject into a body or a query.
///
/// ```
/// use wa_verify_core::Language;
/// for ok in ["pt_BR", "en", "fil", "prs_AF"] {
///     assert!(ok.parse::<Language>().is_ok());
/// }
/// assert!("en-US".parse::<Language>().is_err());
/// assert!("e".parse::<Language>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Language(InlineStr<6>);

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
        let (lang, region) = match s.split_once('_') {
            Some((l, r)) => (l, Some(r)),
            None => (s, None),
        };
        let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok =
            region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()));
        if lang_ok && region_ok {
            Ok(Self(InlineStr::new(s)))
        } else {
            Err(Error::invalid_input(format!(
                "language must be a two- or three-letter code like en or fil, optionally with \
                 a region like en_US or prs_AF (lowercase language, underscore, uppercase \
                 region), got {}",
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

    pub(crate) fn expose_secret(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The six-digit code the user received, for `verify_code`.
///
/// Its `Debug` and `Display` print `VerificationCode(***)`; only
/// [`expose_secret`](Self::expose_secret) shows the digits, for the request body.
///
/// ```
/// use wa_verify_core::VerificationCode;
/// let code: VerificationCode = "123456".parse()?;
/// assert_eq!(format!("{code:?}"), "VerificationCode(***)");
/// assert_eq!(code.expose_secret(), "123456");
/// # Ok::<(), wa_verify_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationCode(SixDigits);

impl VerificationCode {
    /// The digits, for the request body. Keep them out of logs.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
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
        assert_eq!("ivr".parse::<CodeMethod>().unwrap().as_str(), "IVR");
        assert!(refused::<CodeMethod>("email").contains("SMS, VOICE or IVR"));
    }

    #[test]
    fn language_accepts_meta_forms() {
        for ok in ["en_US", "pt_BR", "en", "de", "fil", "prs_AF"] {
            assert_eq!(ok.parse::<Language>().unwrap().as_str(), ok);
        }
    }

    /// See: issue 20 (`fil` and `prs_AF`; nothing that could inject).
    #[test]
    fn language_refuses_other_forms_naming_them() {
        for bad in [
            "", "en-US", "EN_us", "e", "engl", "en_us", "EN", "en_USA", "en US", "en_", "en\"",
            "en&x=1", "fil_",
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
        assert_eq!(code.expose_secret(), "654321");
        assert!(!format!("{code:?}{code}").contains("654321"));
        for bad in ["12345", "1234567", "12345a", ""] {
            let msg = refused::<VerificationCode>(bad);
            assert!(msg.contains("six ASCII digits"), "{msg}");
        }
        assert!(!refused::<VerificationCode>("6543219").contains("6543219"));
    }
}

/// A fast hasher for maps keyed by [`PhoneNumberId::key`]: phone number ids are already well spread, so a
/// multiply-rotate is enough and much cheaper than SipHash on the hot path.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NumberHasher(u64);

impl Hasher for NumberHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(26);
    }
}

impl BuildHasher for NumberHasher {
    type Hasher = NumberHasher;

    fn build_hasher(&self) -> NumberHasher {
        NumberHasher(0)
    }
}
