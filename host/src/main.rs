//! `plinth`: the host binary. This file only assembles: command line,
//! configuration, ordered start-up, serving and shutdown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use plinth_host::config::Config;
use plinth_host::http::{AppState, app};
use plinth_host::plugin_cli::{self, HostCommand, PluginCommand, RunningHost};
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
    /// Pack, install, upgrade, roll back, enable, disable or remove plugins.
    /// With a host serving on the same data dir, the command goes through
    /// its admin API and takes effect at once.
    Plugin {
        /// Path to config.json.
        #[arg(long, default_value = "config.json", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        verb: PluginVerb,
    },
}

#[derive(Subcommand)]
enum PluginVerb {
    /// Build a package (.zip) from a plugin folder holding plugin.toml,
    /// plugin.wasm, sql/<dialect>/ and public/.
    Pack {
        dir: PathBuf,
        /// Where to write the package (default: <name>-<version>.zip).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Install a plugin that is not installed yet.
    Install { package: PathBuf },
    /// Upgrade an installed plugin to the newer version in the package.
    Upgrade { package: PathBuf },
    /// Show the installed plugins.
    List {
        /// Print JSON (name, version, state, installed_at, previous_version).
        #[arg(long)]
        json: bool,
    },
    /// Serve the previous version again (no down-migrations are run).
    Rollback { name: String },
    /// Serve a disabled plugin again.
    Enable { name: String },
    /// Stop serving a plugin's routes, menus and tasks; keep its data.
    Disable { name: String },
    /// Uninstall a plugin.
    Remove {
        name: String,
        /// Also drop the plugin's tables and migration history.
        #[arg(long)]
        drop_data: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `plinth plugin …` prints one line of outcome; its logs stay quiet
    // unless RUST_LOG asks for them.
    init_tracing(match cli.command {
        Command::Serve { .. } => "info",
        Command::Plugin { .. } => "off",
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("plinth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => serve(config).await,
            Command::Plugin { config, verb } => plugin(config, verb).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming the reason; the log above has the detail.
            eprintln!("plinth: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// `error` and its causes on one line, each told once. The host's error
/// types put their cause's text in their own message (it is what API
/// responses, the journal and this line show), so a cause is appended only
/// when the message above it does not already tell it, as after a
/// `.context()`, which names only what was being done.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}

async fn plugin(config_path: PathBuf, verb: PluginVerb) -> anyhow::Result<()> {
    let command = match verb {
        PluginVerb::Pack { dir, out } => PluginCommand::Pack { dir, out },
        PluginVerb::Install { package } => PluginCommand::Host(HostCommand::Install { package }),
        PluginVerb::Upgrade { package } => PluginCommand::Host(HostCommand::Upgrade { package }),
        PluginVerb::List { json } => PluginCommand::Host(HostCommand::List { json }),
        PluginVerb::Rollback { name } => PluginCommand::Host(HostCommand::Rollback { name }),
        PluginVerb::Enable { name } => PluginCommand::Host(HostCommand::Enable { name }),
        PluginVerb::Disable { name } => PluginCommand::Host(HostCommand::Disable { name }),
        PluginVerb::Remove { name, drop_data } => {
            PluginCommand::Host(HostCommand::Remove { name, drop_data })
        }
    };
    let config = if matches!(command, PluginCommand::Pack { .. }) && !config_path.exists() {
        Config::from_json_str("{}", Path::new("."), Vec::<(String, String)>::new())?
    } else {
        Config::load(&config_path)?
    };
    let output = plugin_cli::run(command, config, &config_path).await?;
    println!("{output}");
    Ok(())
}

fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
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

    // 3. The listener comes up first so /healthz can answer 503 while
    // starting.
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (server.bind)"))?;
    let listener_addr = listener.local_addr()?;
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

    // Steps 4 to 7.
    let running_file = plugin_cli::running_host_file(&config);
    let started = match startup::start(config, Some(config_path.clone())).await {
        Ok(started) => started,
        Err(e) => {
            let _ = stop_tx.send(true);
            let _ = server.await;
            return Err(e.into());
        }
    };
    let startup::Started {
        host,
        agent,
        background,
    } = started;
    // 8. Ready.
    state.set_scheduler(background.scheduler.clone());
    state.set_ready(host.clone(), agent);
    // Tells `plinth plugin …` on this data dir to go through our admin API.
    let running = RunningHost {
        pid: std::process::id(),
        bind: listener_addr.to_string(),
    };
    if let Err(e) = std::fs::write(&running_file, serde_json::to_vec(&running)?) {
        tracing::warn!(error = %e, "cannot write {}; CLI commands will not find this host", running_file.display());
    }
    tracing::info!(bind = %listener_addr, plugins = host.registry.all().len(), "ready");

    // 9. Shutdown.
    shutdown_signal().await;
    tracing::info!("shutting down; finishing requests in flight");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(grace, server).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "requests still running after the grace period; stopping anyway"
        );
    }
    let _ = std::fs::remove_file(&running_file);
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
