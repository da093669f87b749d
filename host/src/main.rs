//! `plinth`: the host binary. This file only assembles: command line,
//! configuration, ordered start-up, serving and shutdown.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use plinth_host::config::Config;
use plinth_host::http::{AppState, app};
use plinth_host::startup;

#[derive(Parser)]
#[command(name = "plinth", version, about = "The Plinth plugin host")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host: load config.json, open the database, restore the
    /// installed plugins and serve. Every key can be overridden with
    /// PLINTH__SECTION__KEY environment variables.
    Serve {
        /// Path to config.json.
        #[arg(long, default_value = "config.json")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("plinth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => serve(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plinth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(config_path: PathBuf) -> anyhow::Result<()> {
    // Steps 1 and 2: configuration and secrets.
    let config = Config::load(&config_path)?;
    let bind = config.server.bind;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);

    // The listener comes up first so /healthz can answer 503 while starting.
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (server.bind)"))?;
    let state = AppState::starting(Arc::new(config.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn({
        let router = app(state.clone());
        let mut stop_rx = stop_rx.clone();
        async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.wait_for(|stop| *stop).await;
                })
                .await
        }
    });
    tracing::info!(%bind, "listening; starting up");

    // Steps 3 to 6.
    let (host, background) = match startup::start(config).await {
        Ok(started) => started,
        Err(e) => {
            let _ = stop_tx.send(true);
            let _ = server.await;
            return Err(e.into());
        }
    };
    state.set_ready(host.clone());
    tracing::info!(%bind, plugins = host.registry.all().len(), "ready");

    shutdown_signal().await;
    tracing::info!("shutting down; finishing requests in flight");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(grace, server).await.is_err() {
        tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period; stopping anyway");
    }
    background.stop();
    host.db.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
