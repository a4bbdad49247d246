//! `wa-verify sandbox`: the local emulator until Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use wa_verify_core::config::duration;
use wa_verify_sandbox::{Sandbox, SandboxConfig};

use super::{read_token, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::metrics::Exporter;
use crate::signals::Signals;

#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A TOML file: numbers, quotas, codes, faults.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// The token to accept (else WHATSAPP_ACCESS_TOKEN, else a generated one).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// On SIGINT/SIGTERM, how long requests in flight may finish before the remaining
    /// connections are closed (default 5s; a second signal exits at once).
    #[arg(long, value_name = "DUR")]
    shutdown_grace: Option<String>,
    /// Serve the sandbox's own counters (answers by status and Graph code, codes sent)
    /// as Prometheus text at http://ADDR/metrics (loopback only).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
}

pub(crate) async fn run(args: SandboxArgs) -> u8 {
    let mut config = match &args.config {
        Some(path) => match SandboxConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        },
        None => SandboxConfig::default(),
    };
    if let Some(grace) = &args.shutdown_grace {
        match duration::parse(grace) {
            Ok(g) => config.server.shutdown_grace = g,
            Err(e) => {
                eprintln!("error: --shutdown-grace: {e}");
                return EXIT_USAGE;
            }
        }
    }
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "error: --listen must be a loopback address (127.0.0.1:PORT or [::1]:PORT), got {}: \
             the sandbox hands out verification codes to anyone who can reach it",
            args.listen
        );
        return EXIT_USAGE;
    }
    let mut builder = Sandbox::builder().config(config).listen(args.listen);
    let given = args.token_file.is_some() || std::env::var_os("WHATSAPP_ACCESS_TOKEN").is_some();
    if given {
        match read_token(args.token_file.as_deref()) {
            Ok(t) => builder = builder.token(t.expose_secret()),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    // Handlers first: a signal that arrives once the "listening" line is out (a test or a
    // process manager reacting to it) must shut down gracefully, not kill the process.
    let mut signals = Signals::install();
    let sandbox = match builder.start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    let base = sandbox.base_url();
    // A closed stdout (the reader went away) must not stop the server: ignore write errors.
    let say = |line: String| {
        let _ = writeln!(std::io::stdout(), "{line}");
    };
    let metrics = match args.metrics_listen {
        Some(addr) => {
            let registry = Exporter::sandbox_only(Box::new(sandbox.stats_reader()));
            match crate::metrics::serve(addr, registry).await {
                Ok(served) => Some(served),
                Err(why) => {
                    eprintln!("error: {why}");
                    return EXIT_USAGE;
                }
            }
        }
        None => None,
    };
    say(format!("wa-verify sandbox listening on {base}"));
    if let Some((bound, _)) = &metrics {
        say(format!("metrics at http://{bound}/metrics"));
    }
    // Printed once, only when generated: a token the user gave is theirs to know.
    let token = if given {
        "$WHATSAPP_ACCESS_TOKEN".to_owned()
    } else {
        say(format!("token: {}", sandbox.token()));
        sandbox.token().to_owned()
    };
    say("try:".to_owned());
    say(format!(
        "  curl -X POST '{base}/v23.0/1234567890/request_code' \\\n    -H \"Authorization: Bearer {token}\" \\\n    -H 'Content-Type: application/json' \\\n    -d '{{\"code_method\":\"SMS\",\"language\":\"en_US\"}}'"
    ));
    say(format!("  curl '{base}/__sandbox/outbox'"));
    let signal = signals.recv().await;
    // Requests in flight get the grace period; a second signal exits at once.
    signals.exit_on_next(signal);
    if let Some((_, task)) = metrics {
        task.abort();
    }
    sandbox.shutdown().await;
    EXIT_OK
}
