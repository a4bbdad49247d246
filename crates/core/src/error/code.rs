//! A Graph error code with the subcode that changes what it means (`136024/2388367`).

use std::fmt;
use std::str::FromStr;

use super::Error;

/// A Graph error code, with the subcode when it changes what to do (`136024/2388367`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GraphCode {
    /// The Graph `code`.
    pub code: i64,
    /// The `error_subcode`, if it matters.
    pub subcode: Option<i64>,
}

impl GraphCode {
    /// A code alone.
    pub fn code(code: i64) -> Self {
        Self {
            code,
            subcode: None,
        }
    }

    /// A code with its subcode.
    pub fn with_subcode(code: i64, subcode: i64) -> Self {
        Self {
            code,
            subcode: Some(subcode),
        }
    }
}

impl fmt::Display for GraphCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subcode {
            Some(s) => write!(f, "{}/{s}", self.code),
            None => write!(f, "{}", self.code),
        }
    }
}

impl FromStr for GraphCode {
    type Err = Error;

    /// `136024` or `136024/2388367`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let number = |t: &str| {
            (!t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<i64>().ok())
                .flatten()
        };
        let parsed = match s.split_once('/') {
            Some((c, sub)) => number(c)
                .zip(number(sub))
                .map(|(c, s)| Self::with_subcode(c, s)),
            None => number(s).map(Self::code),
        };
        parsed.ok_or_else(|| {
            Error::invalid_input(format!(
                "a cooldown is keyed by a Graph code like \"136024\" or a code and subcode like \"136024/2388367\", got {:?}",
                s.chars().take(40).collect::<String>()
            ))
        })
    }
}
