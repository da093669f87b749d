//! `plinth-vendor`: parses the command line, sets up logging and the
//! runtime, and runs the command (see `plinth_vendor::cli`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use plinth_vendor::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its work; one-shot commands only warnings.
    let default_level = if cli::is_server(&cli) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            // Vendor errors already name their cause; add only causes the
            // message does not include yet.
            let mut message = error.to_string();
            for cause in error.chain().skip(1) {
                let cause = cause.to_string();
                if !message.contains(&cause) {
                    message = format!("{message}: {cause}");
                }
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let code = runtime.block_on(cli::run(cli, &mut out))?;
    std::io::Write::flush(&mut out).context("cannot write to standard output")?;
    Ok(code)
}
