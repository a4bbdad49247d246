//! What the limiter holds for one number, for operators: `wa-verify limits show` and
//! `limits clear`, and the same on the store for the library.

use std::time::{Duration, SystemTime};

use super::QuotaClass;
use crate::error::GraphCode;

/// A cooldown a number is under.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldCooldown {
    /// The kind of call it stops.
    pub kind: QuotaClass,
    /// How long it still holds.
    pub remaining: Duration,
    /// When it ends, on this machine's clock.
    pub until: SystemTime,
    /// The Graph code (and subcode) of the answer that set it, when it had one.
    pub code: Option<GraphCode>,
}

/// What the limiter holds for one number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NumberLimits {
    /// Its cooldowns still in force, by kind of call.
    pub cooldowns: Vec<HeldCooldown>,
    /// Wrong codes counted in the guard's current window.
    pub wrong_codes: u32,
    /// register/deregister calls left in the budget's window; `None` when the budget is off.
    pub registrations_left: Option<u32>,
}

impl HeldCooldown {
    pub(crate) fn new(kind: QuotaClass, remaining: Duration, code: Option<GraphCode>) -> Self {
        Self {
            kind,
            remaining,
            until: SystemTime::now() + remaining,
            code,
        }
    }
}
