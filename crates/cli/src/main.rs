//! The `scopegate` binary: `serve`, and the commands that administer the same store.
//!
//! Every command takes `--json` (one JSON document on stdout); errors go to stderr with exit
//! code 1 and change nothing.

/// Prints a line on stdout. A closed pipe (`scopegate … | head`) is not an error worth a panic:
/// the reader has what it wanted.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod commands;
mod settings;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the request path allocates small short-lived buffers on two threads, where glibc's
/// arena locks showed in profiles (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "scopegate",
    version,
    about = "A self-hostable OAuth 2.0 / OpenID Connect server with LinkedIn's permission model"
)]
struct Cli {
    #[command(flatten)]
    global: settings::Global,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCOPEGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let serving = matches!(cli.command, commands::Command::Serve(_));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // SCOPEGATE_LOG_FORMAT=json gives one JSON object per line for log collectors.
    if serving && std::env::var("SCOPEGATE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else if serving {
        builder.init();
    } else {
        // Administrative commands print results; only warnings and errors go to the log.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.global, cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
