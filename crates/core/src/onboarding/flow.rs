//! The typed onboarding flow: one type per state, so a step out of order does not compile.

use std::fmt;

use super::ops::{Deregister, Pin, Register};
use super::preflight::Preflight;
use crate::client::{Client, HttpService};
use crate::error::Error;
use crate::operation::{
    CodeMethod, Language, Operation, PhoneNumberId, RequestCode, VerificationCode, VerifyCode,
};
use crate::transport::Transport;

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
    fn into_parts(self) -> Parts<H>;
    fn from_parts(parts: Parts<H>) -> Self;
}

/// Sends `op`; on success moves to state `N`, on failure gives `state` back with the error.
async fn advance<H, S, N, O>(state: S, op: O) -> Result<N, StepError<S>>
where
    H: HttpService,
    S: FlowState<H>,
    N: FlowState<H>,
    O: Operation,
{
    match state.client().call(op).await {
        Ok(_) => Ok(N::from_parts(state.into_parts())),
        Err(error) => Err(StepError { state, error }),
    }
}

/// What every state of the flow holds.
struct Parts<H> {
    client: Client<H>,
    id: PhoneNumberId,
    pre_verified: bool,
    /// The status read first, when the flow read it.
    preflight: Option<Box<Preflight>>,
    /// Register even when the preflight says the display name is not approved.
    force: bool,
}

/// The start of onboarding: nothing asked yet. See the [module docs](super).
pub struct Onboarding<H = Transport>(Parts<H>);

/// A code was sent; verify it next (or ask again).
pub struct CodeRequested<H = Transport>(Parts<H>);

/// The number is verified; register it next.
pub struct Verified<H = Transport>(Parts<H>);

/// The number is registered.
pub struct Registered<H = Transport>(Parts<H>);

/// The number was deregistered.
pub struct Deregistered<H = Transport>(Parts<H>);

/// The accessors and plumbing every state shares; the states themselves are written out
/// above, so `grep 'struct Verified'` finds them.
macro_rules! flow_state_impls {
    ($($name:ident),*) => {$(
        impl<H> $name<H> {
            /// The client the flow calls through.
            pub fn client(&self) -> &Client<H> {
                &self.0.client
            }

            /// The number being onboarded.
            pub fn phone_number_id(&self) -> PhoneNumberId {
                self.0.id
            }
        }

        impl<H> FlowState<H> for $name<H> {
            fn client(&self) -> &Client<H> {
                &self.0.client
            }

            fn into_parts(self) -> Parts<H> {
                self.0
            }

            fn from_parts(parts: Parts<H>) -> Self {
                Self(parts)
            }
        }

        impl<H> fmt::Debug for $name<H> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("phone_number_id", &self.0.id)
                    .field("pre_verified", &self.0.pre_verified)
                    .finish()
            }
        }
    )*};
}

flow_state_impls!(
    Onboarding,
    CodeRequested,
    Verified,
    Registered,
    Deregistered
);

impl<H> Onboarding<H> {
    /// Starts onboarding `id` through `client`.
    pub fn new(client: Client<H>, id: PhoneNumberId) -> Self {
        Self(Parts {
            client,
            id,
            pre_verified: false,
            preflight: None,
            force: false,
        })
    }

    /// Starts onboarding a pre-verified number (bought from Meta already verified).
    pub fn pre_verified(client: Client<H>, id: PhoneNumberId) -> Self {
        Self(Parts {
            client,
            id,
            pre_verified: true,
            preflight: None,
            force: false,
        })
    }

    /// The status read by [`preflight`](Self::preflight), if it ran.
    pub fn preflight_info(&self) -> Option<&Preflight> {
        self.0.preflight.as_deref()
    }
}

/// Where a flow stands after its preflight.
#[derive(Debug)]
pub enum Checked<H = Transport> {
    /// A code is needed: request it next.
    NeedsCode(Onboarding<H>),
    /// The number is `VERIFIED` already: register it next, no code needed.
    AlreadyVerified(Verified<H>),
}

impl<H: HttpService> Onboarding<H> {
    /// Reads the number's status first (`code_verification_status`, `platform_type`,
    /// `name_status`, `status`): a verified number skips the code, and one on the
    /// WhatsApp Business app or On-Premises API stops here.
    ///
    /// # Errors
    ///
    /// The status call's error, or `precondition` (reason `on_premise`) before any code
    /// is requested; with this state to go on from.
    pub async fn preflight(mut self) -> Result<Checked<H>, StepError<Self>> {
        let preflight = match Preflight::read(&self.0.client, self.0.id).await {
            Ok(p) => p,
            Err(error) => return Err(StepError { state: self, error }),
        };
        if let Err(error) = preflight.check_code() {
            self.0.preflight = Some(Box::new(preflight));
            return Err(StepError { state: self, error });
        }
        let verified = preflight.is_verified();
        self.0.preflight = Some(Box::new(preflight));
        Ok(if verified {
            Checked::AlreadyVerified(Verified(self.0))
        } else {
            Checked::NeedsCode(self)
        })
    }

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
        let mut op = RequestCode::new(self.0.id, method, language);
        if self.0.pre_verified {
            op = op.pre_verified();
        }
        advance(self, op).await.map_err(StepError::into_error)
    }
}

impl<H: HttpService> CodeRequested<H> {
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
        let mut op = RequestCode::new(self.0.id, method, language);
        if self.0.pre_verified {
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
        let mut op = VerifyCode::new(self.0.id, code);
        if self.0.pre_verified {
            op = op.pre_verified();
        }
        advance(self, op).await
    }
}

impl<H> Verified<H> {
    /// Registers even when the preflight said the display name is not approved (the
    /// CLI's `--force`).
    #[must_use]
    pub fn force(mut self) -> Self {
        self.0.force = true;
        self
    }
}

impl<H: HttpService> Verified<H> {
    /// Registers the number with `pin`.
    ///
    /// # Errors
    ///
    /// The call's error, with this state to try again from (mind the 10-per-72-hours
    /// budget: the error says when the next call is allowed).
    pub async fn register(self, pin: Pin) -> Result<Registered<H>, StepError<Self>> {
        let op = Register::new(self.0.id, pin);
        self.register_with(op).await
    }

    /// Registers with a prepared [`Register`] (backup, tier, region).
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register); also `invalid_input` when `op` is for another number.
    pub async fn register_with(self, op: Register) -> Result<Registered<H>, StepError<Self>> {
        if op.phone_number_id() != self.0.id {
            let error = Error::invalid_input("the Register operation is for another number");
            return Err(StepError { state: self, error });
        }
        if let (Some(p), false) = (&self.0.preflight, self.0.force) {
            if let Err(error) = p.check_register() {
                return Err(StepError { state: self, error });
            }
        }
        advance(self, op).await
    }
}

impl<H: HttpService> Registered<H> {
    /// Deregisters the number.
    ///
    /// # Errors
    ///
    /// The call's error, with this state to try again from.
    pub async fn deregister(self) -> Result<Deregistered<H>, StepError<Self>> {
        let op = Deregister::new(self.0.id);
        advance(self, op).await
    }
}
