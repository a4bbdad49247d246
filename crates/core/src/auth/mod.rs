//! Middleware that adds `Authorization: Bearer <token>` to every HTTP request.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use wa_verify_core::auth::{AuthLayer, Token};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wa_verify_core::Error> {
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new("fake-token".parse::<Token>()?))
//!     .service(service_fn(|req: http::Request<Full<Bytes>>| async move {
//!         assert_eq!(req.headers()["authorization"], "Bearer fake-token");
//!         assert!(req.headers()["authorization"].is_sensitive());
//!         Ok::<_, wa_verify_core::Error>(http::Response::new(()))
//!     }));
//! svc.oneshot(http::Request::new(Full::new(Bytes::new()))).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Rotating tokens
//!
//! A [`TokenProvider`] is asked for the token on every request, so a token that rotates
//! (a system user's token refreshed by a vault) is picked up without rebuilding the stack.

mod layer;
mod token;

pub use self::layer::{Auth, AuthLayer, ResponseFuture};
pub use self::token::{Token, TokenFuture, TokenProvider, TokenRequest};
