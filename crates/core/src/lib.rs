//! WhatsApp Cloud API phone-number verification as a tower `Service`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]

pub mod auth;
mod client;
pub mod config;
mod error;
pub mod graph;
mod meaning;
mod meta;
mod operation;
pub mod rate_limit;
mod response;
pub mod retry;
pub mod timeout;
pub mod trace;
pub mod transport;

pub use self::client::{Client, ClientBuilder, Stack};
pub use self::error::{Error, ErrorKind, GraphApiError, TimeoutKind};
pub use self::meaning::Meaning;
pub use self::meta::{ResponseMeta, MAX_HINT};
pub use self::operation::{
    ApiVersion, CodeMethod, Field, Language, Operation, PhoneNumberId, RequestCode,
    RequestCodeResponse, RetryMode, Succeeded, VerificationCode, VerifyCode, VerifyCodeResponse,
};
pub use self::response::Response;
