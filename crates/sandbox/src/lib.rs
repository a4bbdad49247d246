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
//! # Endpoints
//!
//! - `POST /{version}/{phone_number_id}/request_code` and `.../verify_code`
//! - `GET /__sandbox/outbox[?phone_number_id=ID]`: every code sent, oldest first
//! - `GET /__sandbox/stats`: counts by status, error code and operation
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]

mod answers;
mod api;
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
    AdminConfig, CodeConfig, OutboxConfig, QuotaConfig, QuotaDialect, SandboxConfig, ServerConfig,
};
pub use self::error::Error;
pub use self::faults::{FaultBody, FaultConfig, FaultKind, NumberFault};
pub use self::outbox::{Outbox, OutboxEntry, Stats};
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
        let app = Arc::new(api::App::new(self.config, token.clone(), stop_rx.clone()));
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
    app: Arc<api::App>,
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
