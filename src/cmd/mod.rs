//! The subcommands and what they share: the connection and stack flags.

mod bench;
mod limits;
mod onboard;
mod register;
mod request_code;
mod sandbox;
mod status;
mod verify_code;
mod watch;

use std::path::PathBuf;
use wa_verify_core::metrics::Metrics;

use clap::{Args, Parser, Subcommand};
use tower::Service;
use wa_verify_core::auth::Token;
use wa_verify_core::config::{duration, StackConfig, StoreKind};
use wa_verify_core::rate_limit::{Quota, Rate};
use wa_verify_core::transport::Transport;
use wa_verify_core::{Client, Error, Operation, Response, Stack};
use wa_verify_sandbox::{Sandbox, SandboxHandle};

use self::watch::{Progress, Watched};
use crate::output::{self, Format};
use crate::signals::Signals;

pub(crate) use crate::output::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// Verify WhatsApp Business phone numbers through the WhatsApp Cloud API.
#[derive(Debug, Parser)]
#[command(name = "wa-verify", version, about)]
pub(crate) struct Cli {
    /// More logs on stderr: -v info, -vv debug, -vvv trace (or RUST_LOG).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send a verification code to a number by SMS or voice.
    RequestCode(request_code::RequestCodeArgs),
    /// Check the code the number received.
    VerifyCode(verify_code::VerifyCodeArgs),
    /// Register a verified number with its two-step PIN.
    Register(register::RegisterArgs),
    /// Deregister a number.
    Deregister(register::DeregisterArgs),
    /// Walk request-code, verify-code and register against the sandbox in one command.
    Onboard(onboard::OnboardArgs),
    /// Run the local emulator of the API until Ctrl-C.
    Sandbox(sandbox::SandboxArgs),
    /// Drive request_code for many numbers through the full stack and report.
    Bench(bench::BenchArgs),
    /// Show or clear what the limiter holds for a number (cooldowns, wrong codes, budget).
    Limits(limits::LimitsArgs),
    /// What Meta knows about a number: verified, platform, display name, connection.
    Status(status::StatusArgs),
}

pub(crate) async fn run(command: Command) -> u8 {
    match command {
        Command::RequestCode(a) => request_code::run(a).await,
        Command::VerifyCode(a) => verify_code::run(a).await,
        Command::Register(a) => register::run(a).await,
        Command::Deregister(a) => register::run_deregister(a).await,
        Command::Onboard(a) => onboard::run(a).await,
        Command::Sandbox(a) => sandbox::run(a).await,
        Command::Bench(a) => bench::run(a).await,
        Command::Limits(a) => limits::run(a).await,
        Command::Status(a) => status::run(a).await,
    }
}

/// The flags every calling subcommand shares.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// The Graph API base URL (http:// only to loopback hosts).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// The Graph API version, like v23.0.
    #[arg(long, value_name = "vNN.N")]
    api_version: Option<String>,
    /// The request body encoding: json, form or multipart.
    #[arg(long, value_name = "ENCODING")]
    encoding: Option<String>,
    /// A file holding the access token (else WHATSAPP_ACCESS_TOKEN).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// The overall deadline, retries included: 500ms, 2s, 1m.
    #[arg(long, value_name = "DUR")]
    timeout: Option<String>,
    /// The timeout of one attempt.
    #[arg(long, value_name = "DUR")]
    attempt_timeout: Option<String>,
    /// The most attempts per call (1 turns retries off).
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    /// A per-number quota: 2/s, 5/min, 10/h.
    #[arg(long, value_name = "N/UNIT")]
    per_number_rate: Option<String>,
    /// The burst of the per-number quota.
    #[arg(long, value_name = "N")]
    per_number_burst: Option<u32>,
    /// An app-wide quota: 80/s.
    #[arg(long, value_name = "N/UNIT")]
    global_rate: Option<String>,
    /// Where the limiter keeps its state: memory (this process), redis (every replica) or
    /// redis-cluster (every replica, on a Redis Cluster).
    #[arg(long, value_name = "memory|redis|redis-cluster")]
    limiter_store: Option<String>,
    /// The Redis URL for --limiter-store redis (its password is never printed); with
    /// redis-cluster, once per node to learn the cluster from (one is enough).
    #[arg(long, value_name = "URL", env = "REDIS_URL", hide_env_values = true)]
    redis_url: Vec<String>,
    /// A TOML file with every stack setting; flags override it.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// A file of `[[tenants]]` (id, waba_id, token_file or token_env, numbers): each number
    /// uses its tenant's token (WHATSAPP_ACCESS_TOKEN is then not needed).
    #[arg(long, value_name = "FILE.toml")]
    pub(crate) tenants: Option<PathBuf>,
    /// The tenant this call runs for (else the one that lists the number).
    #[arg(long, value_name = "ID")]
    pub(crate) tenant: Option<String>,
    /// Start the sandbox in-process and call it: no account needed.
    #[arg(long, conflicts_with = "base_url")]
    pub(crate) sandbox: bool,
    /// text or json.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub(crate) output: String,
}

/// A client ready to call, and the in-process sandbox it calls when `--sandbox`.
pub(crate) struct Prepared {
    pub(crate) client: Client<Watched>,
    /// Whether anything may have reached Meta, for a call a signal stops.
    pub(crate) progress: std::sync::Arc<Progress>,
    pub(crate) sandbox: Option<SandboxHandle>,
    pub(crate) format: Format,
}

impl CommonArgs {
    pub(crate) fn format(&self) -> Result<Format, Error> {
        self.output.parse()
    }

    /// The stack config: the file, then the flags on top.
    pub(crate) fn stack_config(&self) -> Result<StackConfig, Error> {
        let mut c = match &self.config {
            Some(path) => StackConfig::from_file(path)?,
            None => StackConfig::default(),
        };
        if let Some(path) = &self.tenants {
            c.tenants = wa_verify_core::tenant::TenantsFile::from_file(path)?.tenants;
        }
        if let Some(url) = &self.base_url {
            c.base_url = url.parse()?;
        }
        if let Some(v) = &self.api_version {
            c.api_version = v.parse()?;
        }
        if let Some(e) = &self.encoding {
            c.encoding = e.parse()?;
        }
        if let Some(t) = &self.timeout {
            c.timeouts.deadline = Some(duration::parse_timeout(t)?);
        }
        if let Some(t) = &self.attempt_timeout {
            c.timeouts.attempt = Some(duration::parse_timeout(t)?);
        }
        if let Some(n) = self.max_attempts {
            if n == 0 {
                return Err(Error::invalid_input("--max-attempts must be at least 1"));
            }
            c.retry.max_attempts = n;
        }
        match (&self.per_number_rate, self.per_number_burst) {
            (Some(rate), burst) => {
                c.rate_limit.per_number =
                    vec![Quota::try_new(rate.parse::<Rate>()?, burst.unwrap_or(0))?];
            }
            (None, Some(burst)) => {
                let Some(first) = c.rate_limit.per_number.first_mut() else {
                    return Err(Error::invalid_input(
                        "--per-number-burst needs --per-number-rate (or a per_number quota in --config)",
                    ));
                };
                *first = Quota::try_new(first.rate, burst)?;
            }
            (None, None) => {}
        }
        if let Some(rate) = &self.global_rate {
            c.rate_limit.global = Some(Quota::try_new(rate.parse::<Rate>()?, 0)?);
        }
        match self
            .limiter_store
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => {}
            Some("memory") => c.rate_limit.store.kind = StoreKind::Memory,
            Some("redis") => c.rate_limit.store.kind = StoreKind::Redis,
            Some("redis-cluster" | "redis_cluster") => {
                c.rate_limit.store.kind = StoreKind::RedisCluster;
            }
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "--limiter-store must be memory, redis or redis-cluster, got {other:?}"
                )))
            }
        }
        let store = &mut c.rate_limit.store;
        match (store.kind, self.redis_url.as_slice()) {
            (_, []) => {}
            (StoreKind::RedisCluster, urls) => {
                store.url = None;
                store.urls = urls.iter().map(|u| u.parse()).collect::<Result<_, _>>()?;
            }
            (_, [url]) => store.url = Some(url.parse()?),
            (_, _) => {
                return Err(Error::invalid_input(
                    "--redis-url is given once, except with --limiter-store redis-cluster \
                     (once per cluster node)",
                ))
            }
        }
        let missing = match store.kind {
            StoreKind::Redis => store.url.is_none(),
            StoreKind::RedisCluster => store.url.is_none() && store.urls.is_empty(),
            StoreKind::Memory => false,
        };
        if missing {
            return Err(Error::invalid_input(
                "--limiter-store redis needs --redis-url or REDIS_URL (redis://host:port); \
                 redis-cluster needs one or more --redis-url",
            ));
        }
        Ok(c)
    }

    /// The token: `--token-file`, else `WHATSAPP_ACCESS_TOKEN`.
    pub(crate) fn token(&self) -> Result<Token, Error> {
        read_token(self.token_file.as_deref())
    }

    /// Validates everything, starts the sandbox when asked, and builds the client.
    pub(crate) async fn prepare(&self) -> Result<Prepared, Error> {
        self.prepare_with(|_| {}, Metrics::default()).await
    }

    /// [`prepare`](Self::prepare), with a subcommand's own settings on top of the config.
    pub(crate) async fn prepare_with(
        &self,
        adjust: impl FnOnce(&mut StackConfig),
        metrics: Metrics,
    ) -> Result<Prepared, Error> {
        let format = self.format()?;
        let mut config = self.stack_config()?;
        adjust(&mut config);
        let (token, sandbox) = if self.sandbox {
            let sb = Sandbox::builder()
                .start()
                .await
                .map_err(|e| Error::invalid_input(format!("cannot start the sandbox: {e}")))?;
            config.base_url = sb.base_url().parse()?;
            (Some(sb.token().parse()?), Some(sb))
        } else if !config.tenants.is_empty() {
            // Each call's token comes from its tenant.
            (None, None)
        } else {
            (Some(self.token()?), None)
        };
        let progress = std::sync::Arc::<Progress>::default();
        let transport = Watched::new(Transport::new(&config.transport)?, progress.clone());
        let mut builder = Client::builder().config(config).metrics(metrics);
        if let Some(token) = token {
            builder = builder.token(token);
        }
        let client = builder.build_with_http(transport)?;
        Ok(Prepared {
            client,
            progress,
            sandbox,
            format,
        })
    }
}

/// Runs one operation the way every calling subcommand does: validate, start the sandbox
/// if asked, call through the full stack, print, and return the exit code. SIGINT or
/// SIGTERM mid-call stops the call and prints what is known (see `crate::signals`).
pub(crate) async fn call<O>(
    common: &CommonArgs,
    op: Result<O, Error>,
    text: impl FnOnce(&Response<O::Output>) -> String,
) -> u8
where
    O: Operation,
    Stack<Watched>: Service<O, Response = Response<O::Output>, Error = Error>,
{
    call_with(common, op, text, |_| None).await
}

/// [`call`], with one field of the answer added to the JSON (`"status": {...}`).
pub(crate) async fn call_with<O>(
    common: &CommonArgs,
    op: Result<O, Error>,
    text: impl FnOnce(&Response<O::Output>) -> String,
    fields: impl FnOnce(&Response<O::Output>) -> Option<(&'static str, serde_json::Value)>,
) -> u8
where
    O: Operation,
    Stack<Watched>: Service<O, Response = Response<O::Output>, Error = Error>,
{
    let format = common.format().unwrap_or_default();
    let prepared = match op {
        Ok(mut op) => {
            if let (Some(t), Some(c)) = (&common.tenant, op.context_mut()) {
                c.tenant = Some(t.as_str().into());
            }
            common.prepare().await.map(|p| (op, p))
        }
        Err(e) => Err(e),
    };
    match prepared {
        Ok((op, p)) => call_prepared(p, op, text, fields).await,
        Err(e) => output::refused(format, &e),
    }
}

/// The call itself, on a prepared client: SIGINT or SIGTERM mid-call stops it and prints
/// what is known; the sandbox, if any, is shut down after.
pub(crate) async fn call_prepared<O>(
    p: Prepared,
    op: O,
    text: impl FnOnce(&Response<O::Output>) -> String,
    fields: impl FnOnce(&Response<O::Output>) -> Option<(&'static str, serde_json::Value)>,
) -> u8
where
    O: Operation,
    Stack<Watched>: Service<O, Response = Response<O::Output>, Error = Error>,
{
    let name = op.name();
    let mut signals = Signals::install();
    let code = tokio::select! {
        result = p.client.call(op) => output::outcome(p.format, name, &result, text, fields),
        signal = signals.recv() => {
            // A second signal exits at once, whatever is still running.
            signals.exit_on_next(signal);
            output::cancelled(p.format, name, signal, p.progress.may_have_reached_server())
        }
    };
    if let Some(sb) = p.sandbox {
        sb.shutdown().await;
    }
    code
}

/// Reads the token from a file or the environment; never echoes it.
pub(crate) fn read_token(file: Option<&std::path::Path>) -> Result<Token, Error> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::invalid_input(format!("cannot read --token-file {}: {e}", path.display()))
            })?;
            text.parse()
        }
        None => match std::env::var("WHATSAPP_ACCESS_TOKEN") {
            Ok(t) if !t.trim().is_empty() => t.parse(),
            _ => Err(Error::invalid_input(
                "no access token: set WHATSAPP_ACCESS_TOKEN or pass --token-file PATH \
                 (there is no --token flag: argv is visible to every user of the machine)",
            )),
        },
    }
}
