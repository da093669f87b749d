//! `plinth plugin …`: the operator's commands for plugin packages.
//!
//! When a host is serving on the same data dir (it leaves `host.json` there
//! while it runs), every command goes through that host's admin API, so the
//! change is live at once and the serving host stays the only writer. With
//! no host running, the command opens the database and data dir itself and
//! runs the same install pipeline; the next `plinth serve` starts with the
//! result.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::db::store;
use crate::install::{self, InstallError, InstallMode, OperationReport, PluginRow};
use crate::paths::DataDir;
use crate::startup;

/// What `plinth plugin` was asked to do.
#[derive(Debug, Clone)]
pub enum PluginCommand {
    /// Builds a package from a plugin folder; needs no host.
    Pack { dir: PathBuf, out: Option<PathBuf> },
    /// Acts on the installed set.
    Host(HostCommand),
}

/// The commands that act on a host's installed set.
#[derive(Debug, Clone)]
pub enum HostCommand {
    Install { package: PathBuf },
    Upgrade { package: PathBuf },
    List { json: bool },
    Rollback { name: String },
    Enable { name: String },
    Disable { name: String },
    Remove { name: String, drop_data: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Package(#[from] plinth_package::PackageError),
    #[error("{0}")]
    Operation(#[from] InstallError),
    #[error("{0}")]
    Startup(#[from] startup::StartupError),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    #[error("the running host refused: {0}")]
    Refused(String),
    #[error("cannot reach the running host at {addr}: {message}")]
    Unreachable { addr: String, message: String },
}

/// The file a serving host leaves in its data dir.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunningHost {
    pub pid: u32,
    pub bind: String,
}

pub fn running_host_file(config: &Config) -> PathBuf {
    DataDir::new(&config.data_dir).running_host_file()
}

/// Runs one command and returns what to print on success.
pub async fn run(
    command: PluginCommand,
    config: Config,
    config_path: &Path,
) -> Result<String, CliError> {
    let command = match command {
        PluginCommand::Pack { dir, out } => return pack(&dir, out.as_deref()),
        PluginCommand::Host(command) => command,
    };
    match running_host(&config).await {
        Some(addr) => remote(&command, &config, &addr).await,
        None => local(command, config, config_path).await,
    }
}

fn pack(dir: &Path, out: Option<&Path>) -> Result<String, CliError> {
    let bytes = plinth_package::pack_dir(dir)?;
    let manifest = plinth_package::read_manifest(&bytes, &Default::default())?;
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("{}-{}.zip", manifest.name, manifest.version)));
    std::fs::write(&out, &bytes).map_err(|source| CliError::Io {
        path: out.display().to_string(),
        source,
    })?;
    Ok(format!(
        "packed {} {} into {} ({} bytes, sha256 {})",
        manifest.name,
        manifest.version,
        out.display(),
        bytes.len(),
        plinth_package::sha256_hex(&bytes)
    ))
}

/// The address of a host serving on this data dir, if one answers.
async fn running_host(config: &Config) -> Option<String> {
    let text = std::fs::read_to_string(running_host_file(config)).ok()?;
    let running: RunningHost = serde_json::from_str(&text).ok()?;
    if !Path::new(&format!("/proc/{}", running.pid)).exists() {
        return None;
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let health = client
        .get(format!("http://{}/healthz", running.bind))
        .send()
        .await
        .ok()?;
    health.status().is_success().then_some(running.bind)
}

fn read_package(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })
}

async fn local(
    command: HostCommand,
    config: Config,
    config_path: &Path,
) -> Result<String, CliError> {
    let host = startup::assemble(config, Some(config_path.to_owned())).await?;
    let guard = host.operations.lock().await;
    install::recover(&host, &guard).await?;
    let report = match command {
        HostCommand::List { json } => {
            let rows: Vec<PluginRow> = store::installed_plugins(&host.db)
                .await?
                .iter()
                .map(PluginRow::from)
                .collect();
            host.db.close().await;
            return Ok(render_list(&rows, json));
        }
        HostCommand::Install { package } => {
            let bytes = read_package(&package)?;
            install::install_package(&host, &guard, &bytes, InstallMode::Install).await
        }
        HostCommand::Upgrade { package } => {
            let bytes = read_package(&package)?;
            install::install_package(&host, &guard, &bytes, InstallMode::Upgrade).await
        }
        HostCommand::Rollback { name } => install::rollback(&host, &guard, &name).await,
        HostCommand::Enable { name } => install::set_enabled(&host, &guard, &name, true).await,
        HostCommand::Disable { name } => install::set_enabled(&host, &guard, &name, false).await,
        HostCommand::Remove { name, drop_data } => {
            install::remove(&host, &guard, &name, drop_data).await
        }
    };
    drop(guard);
    host.db.close().await;
    Ok(done(&report?))
}

fn done(report: &OperationReport) -> String {
    format!("{} (operation {})", report.summary(), report.op_id)
}

async fn remote(command: &HostCommand, config: &Config, addr: &str) -> Result<String, CliError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| CliError::Unreachable {
            addr: addr.to_owned(),
            message: e.to_string(),
        })?;
    let base = format!("http://{addr}/api/admin/plugins");
    let request = match command {
        HostCommand::List { .. } => client.get(&base),
        HostCommand::Install { package } => client
            .post(&base)
            .header("content-type", "application/zip")
            .body(read_package(package)?),
        HostCommand::Upgrade { package } => client
            .post(format!("{base}?mode=upgrade"))
            .header("content-type", "application/zip")
            .body(read_package(package)?),
        HostCommand::Rollback { name } => client.post(format!("{base}/{name}/rollback")),
        HostCommand::Enable { name } => client.post(format!("{base}/{name}/enable")),
        HostCommand::Disable { name } => client.post(format!("{base}/{name}/disable")),
        HostCommand::Remove { name, drop_data } => {
            client.delete(format!("{base}/{name}?drop_data={drop_data}"))
        }
    };
    let response = request
        .bearer_auth(&config.admin.token)
        .send()
        .await
        .map_err(|e| CliError::Unreachable {
            addr: addr.to_owned(),
            message: e.to_string(),
        })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(CliError::Refused(message));
    }
    match command {
        HostCommand::List { json } => {
            let rows: Vec<PluginRow> =
                serde_json::from_str(&body).map_err(|e| CliError::Refused(e.to_string()))?;
            Ok(render_list(&rows, *json))
        }
        _ => {
            let report: OperationReport =
                serde_json::from_str(&body).map_err(|e| CliError::Refused(e.to_string()))?;
            Ok(format!("{} via the running host", done(&report)))
        }
    }
}

/// `plinth plugin list`: a table, or JSON with `--json`.
pub fn render_list(rows: &[PluginRow], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into());
    }
    let mut out = format!(
        "{:<24} {:<12} {:<9} {:<21} {}\n",
        "NAME", "VERSION", "STATE", "INSTALLED AT", "PREVIOUS"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<24} {:<12} {:<9} {:<21} {}\n",
            row.name,
            row.version,
            row.state,
            row.installed_at,
            row.previous_version.as_deref().unwrap_or("-")
        ));
    }
    if rows.is_empty() {
        out.push_str("(no plugins installed)\n");
    }
    out.trim_end().to_owned()
}
