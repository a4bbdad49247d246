//! The boundary between the typed and the HTTP level: an [`Operation`](crate::Operation) becomes an
//! `http::Request`, and the `http::Response` becomes a typed [`Response`](crate::Response) or an [`Error`](crate::Error).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use wa_verify_core::graph::{BaseUrl, GraphLayer};
//! use wa_verify_core::{CodeMethod, Error, RequestCode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! // Any HTTP service can sit under the boundary: here, one that answers in memory.
//! let http = service_fn(|req: http::Request<Full<Bytes>>| async move {
//!     assert_eq!(req.uri().path(), "/v23.0/1234567890/request_code");
//!     Ok::<_, Error>(http::Response::new(Full::new(Bytes::from_static(b"{\"success\":true}"))))
//! });
//! let graph = ServiceBuilder::new()
//!     .layer(GraphLayer::new("http://127.0.0.1:1".parse::<BaseUrl>()?))
//!     .service(http);
//! let op = RequestCode::new("1234567890".parse()?, CodeMethod::Sms, "en_US".parse()?);
//! let answer = graph.oneshot(op).await?;
//! assert!(answer.success);
//! # Ok(())
//! # }
//! ```

mod base_url;
mod decode;
mod encode;
pub mod future;
mod measure;
mod service;

use bytes::Bytes;
use http_body_util::Full;

pub use self::base_url::BaseUrl;
#[cfg(test)]
pub(crate) use self::encode::encode;
pub use self::encode::Encoding;
pub use self::service::{Graph, GraphLayer};

/// The request body type of the HTTP level: the body serialized once, cheap to resend.
pub type RequestBody = Full<Bytes>;

/// The default cap on an answer's body: larger answers are a `protocol` error.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
