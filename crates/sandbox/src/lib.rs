//! A local emulator of the WhatsApp Cloud API verification endpoints: the sandbox.
//!
//! It answers `request_code` and `verify_code` as Meta does (same paths, bearer auth,
//! JSON, form and multipart bodies, Graph error shapes, `x-fb-trace-id` on every answer),
//! with code expiry, blocking after wrong codes, quotas, fault injection and an outbox of
//! every code it "sent", so tests, demos and benchmarks need no Meta account.
//!
//! # Example
//!
//! ```
//! use wa_verify_sandbox::Sandbox;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wa_verify_sandbox::Error> {
//! let sandbox = Sandbox::builder().start().await?;
//! println!("listening on {}", sandbox.base_url());
//! assert!(sandbox.outbox().is_empty());
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # An independent oracle
//!
//! The end-to-end tests check the client against the sandbox, so the sandbox shares none
//! of the client's code for what it checks: it parses and validates requests itself,
//! from Meta's spec and observed behaviour, and counts its quotas with a plain sliding
//! log per number (at most N calls in any moving window, as Meta states its limits). It
//! does not depend on `wa-verify-core`; its API speaks in plain types (the base URL and
//! the token are `&str`, which the client takes through `parse()`).
//!
//! # Endpoints
//!
//! - `POST /{version}/{phone_number_id}/request_code`, `.../verify_code`, `.../register`,
//!   `.../deregister`
//! - `GET /__sandbox/outbox[?phone_number_id=ID][&offset=N][&limit=N]`: codes sent, oldest
//!   first, at most 1000 per answer (the total is in `x-sandbox-total`)
//! - `GET /__sandbox/stats`: counts by status, error code and operation
//!
//! Every other path or method gets a Graph-shaped error with a trace id (404, 405, 413,
//! 400 for a bad path encoding).
//!
//! # Who can read the codes
//!
//! The outbox holds every code sent. The sandbox listens on loopback only (it refuses any
//! other address), so every local user and process can read it, unless
//! `[admin] require_token = true` makes the admin endpoints ask for the sandbox token too.
//! Codes come from a seed the operating system gives at each start, so they cannot be
//! guessed; `[codes] seed = N` makes a run reproducible.
//!
//! # A server that faces hostile clients
//!
//! `[server]` bounds what a client can hold: at most `max_connections` (1024) open; a
//! request's headers due within `header_timeout` (10 s) of the connection's accept or of
//! the request's first byte, and its body within `body_timeout` (10 s) and
//! `max_body_bytes` (64 KiB); `accept` errors (the file-descriptor limit) back off up to
//! 1 s instead of spinning. Shutdown lets requests in flight finish for `shutdown_grace`
//! (5 s), then closes what is still open; codes already in the outbox stay there.
//! `[outbox] max_entries` also caps the per-number state kept, so memory stays flat.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]

mod answers;
mod api;
mod app;
mod body;
mod bounded;
mod config;
mod error;
pub mod faults;
mod flow;
mod outbox;
mod quota;
mod server;
mod slow;
mod units;
mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::config::{
    AdminConfig, CodeConfig, NumberStatus, OutboxConfig, QuotaConfig, QuotaDialect, SandboxConfig,
    SandboxTenant, ServerConfig,
};
pub use self::error::Error;
pub use self::faults::{FaultBody, FaultConfig, FaultKind, NumberFault};
pub use self::outbox::{rfc3339, Outbox, OutboxEntry, Stats};
pub use self::units::SandboxQuota;

/// The entry point: [`Sandbox::builder`].
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// A builder: 127.0.0.1 on a free port, a generated token, the default config.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }
}

/// Configures and starts a sandbox.
#[derive(Debug)]
#[must_use]
pub struct SandboxBuilder {
    config: SandboxConfig,
    token: Option<String>,
    listen: SocketAddr,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self {
            config: SandboxConfig::default(),
            token: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

impl SandboxBuilder {
    /// The behaviour: numbers, quotas, codes, faults.
    pub fn config(mut self, config: SandboxConfig) -> Self {
        self.config = config;
        self
    }

    /// The token the sandbox accepts (else one is generated).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Where to listen (default `127.0.0.1:0`, a free port). Loopback only: the sandbox
    /// hands out codes to anyone who can reach it.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Binds and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// When the address is not a loopback one, or cannot be bound (the error says why, as
    /// the operating system did: the port is in use, permission denied).
    pub async fn start(self) -> Result<SandboxHandle, Error> {
        if !self.listen.ip().is_loopback() {
            return Err(Error::config(format!(
                "the sandbox listens on loopback only (127.0.0.1 or [::1]), got {}: it \
                 hands out verification codes to anyone who can reach it",
                self.listen
            )));
        }
        let token = match self.token {
            Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
            Some(_) => return Err(Error::config("the sandbox token is empty".into())),
            None => generated_token(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let server_config = self.config.server.clone();
        let app = Arc::new(app::App::new(self.config, token.clone(), stop_rx.clone()));
        let listener = server::bind(self.listen)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {}: {e}", self.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(format!("cannot read the bound address: {e}"), e))?;
        let base_url = format!("http://{addr}");
        let task = tokio::spawn(server::serve(
            listener,
            server::router(app.clone()),
            app.stats.clone(),
            server_config,
            stop_rx,
        ));
        Ok(SandboxHandle {
            addr,
            base_url,
            token,
            app,
            stop,
            task: Some(task),
        })
    }
}

fn generated_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS per process: enough for a local fake token.
    let mut s = String::from("SANDBOX");
    for i in 0..3u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}

/// A running sandbox. Dropping it stops the server; [`shutdown`](Self::shutdown) also
/// waits for in-flight requests.
pub struct SandboxHandle {
    addr: SocketAddr,
    base_url: String,
    token: String,
    app: Arc<app::App>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret even here: never in `Debug`.
        f.debug_struct("SandboxHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for a client's base URL (`.parse()` it).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token the sandbox accepts (`.parse()` it into the client's token type).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Every code sent so far.
    pub fn outbox(&self) -> &Outbox {
        &self.app.outbox
    }

    /// Counts of every answer so far.
    pub fn stats(&self) -> Stats {
        self.app.snapshot()
    }

    /// A reader of [`stats`](Self::stats) that outlives the borrow of the handle (for a
    /// metrics exporter); it reads the counts of this sandbox as long as it lives.
    pub fn stats_reader(&self) -> impl Fn() -> Stats + Send + Sync + 'static {
        let app = self.app.clone();
        move || app.snapshot()
    }

    /// The config it runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.app.config
    }

    /// Stops accepting, lets requests in flight finish (hanging ones are released) for at
    /// most `server.shutdown_grace`, closes what is still open, and returns when the server
    /// is done. Codes already in the outbox stay there.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
