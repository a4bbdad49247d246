//! A read deadline for a request's headers: from the connection's accept for its first
//! request, and from a later request's first byte for the others.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection waits idle
//! between requests, so it closes idle pooled connections (and races the clients that
//! reuse them). This one cuts off a client that connects and sends nothing, or trickles
//! its headers (slowloris), but never a keep-alive connection idle after an answer; the
//! connection cap bounds those.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where a connection is in its request/response cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request (or between requests): no deadline.
    Idle,
    /// A request's first bytes arrived; its headers end at `\r\n\r\n`. `matched` counts
    /// the bytes of that end already seen.
    Headers { matched: u8 },
    /// The headers are in; the body has its own timeout (in the handler) until the
    /// response is written.
    Request,
}

/// An IO whose reads fail with `TimedOut` when a request's headers take longer than the
/// limit from their first byte.
#[derive(Debug)]
pub(crate) struct HeaderDeadline<IO> {
    io: IO,
    limit: Duration,
    phase: Phase,
    sleep: Pin<Box<Sleep>>,
}

impl<IO> HeaderDeadline<IO> {
    /// The first request's headers are due within `limit` of now (the accept).
    pub(crate) fn new(io: IO, limit: Duration) -> Self {
        Self {
            io,
            limit,
            phase: Phase::Headers { matched: 0 },
            sleep: Box::pin(tokio::time::sleep(limit)),
        }
    }

    /// Follows the bytes just read through the phases.
    fn saw(&mut self, bytes: &[u8]) {
        const END: &[u8; 4] = b"\r\n\r\n";
        for &b in bytes {
            match self.phase {
                Phase::Idle => {
                    self.sleep.as_mut().reset(Instant::now() + self.limit);
                    self.phase = Phase::Headers {
                        matched: u8::from(b == END[0]),
                    };
                }
                Phase::Headers { matched } => {
                    let m = usize::from(matched);
                    let next = if b == END[m] {
                        matched + 1
                    } else {
                        u8::from(b == END[0])
                    };
                    self.phase = if usize::from(next) == END.len() {
                        Phase::Request
                    } else {
                        Phase::Headers { matched: next }
                    };
                }
                Phase::Request => return,
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for HeaderDeadline<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.saw(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if matches!(this.phase, Phase::Headers { .. })
                    && this.sleep.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request headers not received in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for HeaderDeadline<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            // A response is going out: the next bytes read start a new request.
            this.phase = Phase::Idle;
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.phase = Phase::Idle;
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn headers_end_at_the_blank_line_even_split_across_reads() {
        let (client, _server) = tokio::io::duplex(64);
        let mut d = HeaderDeadline::new(client, Duration::from_secs(10));
        assert!(
            matches!(d.phase, Phase::Headers { matched: 0 }),
            "due from the accept"
        );
        d.saw(b"POST / HTTP/1.1\r\nHost: x\r");
        assert!(matches!(d.phase, Phase::Headers { .. }));
        d.saw(b"\n\r");
        assert!(matches!(d.phase, Phase::Headers { matched: 3 }));
        d.saw(b"\nbody");
        assert_eq!(d.phase, Phase::Request);
    }
}
