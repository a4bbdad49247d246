//! Meta's error body: the `error` object of a Graph API error answer.

use serde::{Deserialize, Serialize};

use super::meaning::Meaning;

/// Meta's error body: the `error` object of a Graph API error answer.
///
/// Every documented field is typed; `error_data`, `href` and any field Meta adds later are
/// kept too, so nothing Meta says is lost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GraphApiError {
    /// A description of the error.
    #[serde(default)]
    pub message: String,
    /// The error type, e.g. `OAuthException`.
    #[serde(rename = "type", default)]
    pub error_type: String,
    /// The Graph error code.
    pub code: i64,
    /// The subcode, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    /// The trace id to quote to Meta support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    /// Whether the error is temporary and the call may succeed when retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
    /// A title to show the end user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_title: Option<String>,
    /// A message to show the end user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_msg: Option<String>,
    /// Extra data, e.g. `details` with the wait for 133008/133009.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<serde_json::Value>,
    /// A link to documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// Every other field, kept as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl GraphApiError {
    /// An error body with the required fields; the rest empty.
    pub fn new(message: impl Into<String>, error_type: impl Into<String>, code: i64) -> Self {
        Self {
            message: message.into(),
            error_type: error_type.into(),
            code,
            error_subcode: None,
            fbtrace_id: None,
            is_transient: None,
            error_user_title: None,
            error_user_msg: None,
            error_data: None,
            href: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Parses a whole answer body `{"error": {...}}`.
    pub fn from_body(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Envelope {
            error: GraphApiError,
        }
        serde_json::from_slice::<Envelope>(body)
            .ok()
            .map(|e| e.error)
    }

    /// Writes the whole answer body `{"error": {...}}`.
    pub fn to_body(&self) -> String {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: &'a GraphApiError,
        }
        // A map of strings and JSON values always serializes.
        serde_json::to_string(&Envelope { error: self }).unwrap_or_default()
    }

    /// The classification of [`code`](Self::code), when it is a known one.
    pub fn meaning(&self) -> Option<Meaning> {
        Meaning::from_code(self.code, self.error_subcode)
    }
}
