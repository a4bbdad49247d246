//! [`HttpService`]: the one bound on the HTTP service under the stack, written once.

use std::future::Future;

use bytes::Bytes;
use tower::Service;

use crate::error::Error;
use crate::graph::RequestBody;

/// The HTTP service a [`Client`](crate::Client) sends through: a tower service of
/// `http::Request<RequestBody>` answering `http::Response`s, cloneable and shared across
/// tasks. Implemented for every such service, as hyper-util's `Connect` is for
/// connectors; it lets you write helpers generic over `H` with one bound.
///
/// ```
/// use wa_verify_core::{Client, HttpService, RequestCode, Error};
///
/// async fn send_twice<H: HttpService>(client: &Client<H>, op: RequestCode) -> Result<(), Error> {
///     client.request_code(op.clone()).await?;
///     client.request_code(op).await?;
///     Ok(())
/// }
/// ```
pub trait HttpService:
    Service<
        http::Request<RequestBody>,
        Response = http::Response<Self::ResponseBody>,
        Error = Self::HttpError,
        Future = Self::HttpFuture,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The body of an answer.
    type ResponseBody: http_body::Body<Data = Bytes, Error = Self::BodyError> + Send + 'static;
    /// The error of reading an answer's body.
    type BodyError: Into<Box<dyn std::error::Error + Send + Sync>>;
    /// The error of a call.
    type HttpError: Into<Error>;
    /// The future of a call.
    type HttpFuture: Future<Output = Result<http::Response<Self::ResponseBody>, Self::HttpError>>
        + Send
        + 'static;
}

impl<H, B> HttpService for H
where
    H: Service<http::Request<RequestBody>, Response = http::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    H::Error: Into<Error>,
    H::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type ResponseBody = B;
    type BodyError = B::Error;
    type HttpError = H::Error;
    type HttpFuture = H::Future;
}
