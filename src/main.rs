//! `wa-verify`: verify WhatsApp Business phone numbers from the command line.
//!
//! Exit codes: 0 when the API said `success: true`; 2 for usage errors and any input
//! refused before a request is sent; 1 for every other failure.

mod cmd;
mod metrics;
mod output;
mod signals;

use std::process::ExitCode;

use clap::error::ErrorKind as ClapErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(usage_error(&e)),
    };
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(cmd::run(cli.command));
    ExitCode::from(code)
}

/// A flag clap refused: `--help` and `--version` print as usual (exit 0); everything else
/// is a usage error, one JSON object on stdout under `--output json`, exit 2.
fn usage_error(e: &clap::Error) -> u8 {
    if matches!(
        e.kind(),
        ClapErrorKind::DisplayHelp
            | ClapErrorKind::DisplayVersion
            | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            output::EXIT_USAGE
        } else {
            output::EXIT_OK
        };
    }
    // Parsing failed, so read `--output json` from the raw arguments.
    let args: Vec<String> = std::env::args().collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "--output" && w[1] == "json")
        || args.iter().any(|a| a == "--output=json");
    let format = if json {
        output::Format::Json
    } else {
        output::Format::Text
    };
    let text = e.render().to_string();
    let message = text
        .trim()
        .strip_prefix("error: ")
        .unwrap_or(text.trim())
        .to_owned();
    output::usage(format, &message)
}

/// Logs go to stderr, never stdout: `-v` info, `-vv` debug, `-vvv` trace, or `RUST_LOG`.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
