//! [`Token`]: the access token, never shown; and [`TokenProvider`], for tokens that rotate.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use http::HeaderValue;

use crate::error::Error;

/// A boxed token future, as returned by a [`TokenProvider`].
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<Token, Error>> + Send>>;

/// An access token. `Debug` and `Display` print `Token(***)`.
///
/// ```
/// use wa_verify_core::auth::Token;
/// let t: Token = "EAAG-fake".parse()?;
/// assert_eq!(format!("{t:?} {t}"), "Token(***) Token(***)");
/// # Ok::<(), wa_verify_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub(super) header: HeaderValue,
}

impl Token {
    /// The token itself, for the rare caller that must hand it on (the sandbox prints its
    /// generated token once). Keep it out of logs.
    pub fn expose_secret(&self) -> &str {
        // Built from visible ASCII, so the header is valid UTF-8 after "Bearer ".
        self.header
            .to_str()
            .unwrap_or_default()
            .strip_prefix("Bearer ")
            .unwrap_or_default()
    }

    /// The `Authorization` header value, marked sensitive.
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }
}

impl FromStr for Token {
    type Err = Error;

    /// Accepts visible ASCII without spaces (RFC 6750 tokens and Meta's tokens). Surrounding
    /// whitespace, as left by a file's final newline, is trimmed.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid_input("access token is empty"));
        }
        let bad = s.chars().filter(|c| !c.is_ascii_graphic()).count();
        if bad > 0 {
            // Never echo the value: it is a secret even when malformed. Count only the
            // characters that are wrong (see: issue 17).
            return Err(Error::invalid_input(format!(
                "access token must be visible ASCII without spaces; {bad} of its characters are not"
            )));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {s}"))
            .map_err(|_| Error::invalid_input("access token is not a valid header value"))?;
        header.set_sensitive(true);
        Ok(Self { header })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Supplies the token for each request, for tokens that rotate.
pub trait TokenProvider: Send + Sync + 'static {
    /// The current token.
    fn token(&self) -> TokenFuture;

    /// The token for one request, which names its number and tenant: a provider holding
    /// one token per business picks it here (see [`TenantTokens`]). By default,
    /// [`token`](Self::token).
    ///
    /// [`TenantTokens`]: crate::tenant::TenantTokens
    fn token_for(&self, request: &TokenRequest) -> TokenFuture {
        let _ = request;
        self.token()
    }
}

/// What a request tells its [`TokenProvider`]: the number it is about and the tenant it
/// runs for. The boundary attaches it to the HTTP request (an extension) when the call
/// has a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequest {
    /// The number the call is about.
    pub phone_number_id: crate::operation::PhoneNumberId,
    /// The tenant the call runs for, when it has one.
    pub tenant: Option<std::sync::Arc<str>>,
}

impl TokenRequest {
    /// A request for `phone_number_id`, run for `tenant`.
    pub fn new(
        phone_number_id: crate::operation::PhoneNumberId,
        tenant: Option<std::sync::Arc<str>>,
    ) -> Self {
        Self {
            phone_number_id,
            tenant,
        }
    }
}
