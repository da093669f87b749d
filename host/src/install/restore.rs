//! How plugins come back into service when a host starts, beside the
//! operations in [`super::pipeline`] that change them later:
//!
//! - [`recover`] settles operations a crash cut short;
//! - [`restore`] serves the installed, enabled plugins (the database's
//!   installed set is the truth) and adopts plugins listed in config.json
//!   whose version folder is in `data/plugins/` but which are not installed
//!   yet; listed plugins with no folder are named in one warning and the
//!   rest serve.
//!
//! Both run before anything else can start an operation; the caller holds
//! the operation lock all the same.

use plinth_package::manifest::PackageKind;

use super::journal::{self, InstallJournal, Operation, Step};
use super::pipeline::undo_placement;
use super::{InstallError, PluginDir, check_host_api, load, migrate_and_record};
use crate::config::PluginEntry;
use crate::db::DbError;
use crate::db::store::{self, PluginState};
use crate::host::{Host, OperationGuard};

/// Why the plugins could not be restored; start-up stops on it.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("reading the installed plugins: {0}")]
    Db(#[from] DbError),
    #[error(
        "restoring plugin {name} {version}: {source}. \
         Reinstall it, or remove it from config.json's plugins list"
    )]
    Plugin {
        name: String,
        version: String,
        source: Box<InstallError>,
    },
}

/// What [`restore`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Plugins serving now, as `name version`.
    pub serving: Vec<String>,
    /// Plugins config.json lists that are neither installed nor in
    /// `data/plugins/`, as `name version`; they were skipped.
    pub missing: Vec<String>,
}

/// Serves every installed, enabled plugin, then adopts the plugins
/// config.json lists whose folders are in `data/plugins/`.
pub async fn restore(host: &Host, guard: &OperationGuard) -> Result<RestoreReport, RestoreError> {
    host.operations.check(guard);
    let mut report = RestoreReport::default();
    let fail = |name: &str, version: &str| {
        let (name, version) = (name.to_owned(), version.to_owned());
        move |source: InstallError| RestoreError::Plugin {
            name,
            version,
            source: Box::new(source),
        }
    };
    let installed = store::installed_plugins(&host.db).await?;
    for row in &installed {
        if let Some(entry) = host.config.plugins.iter().find(|p| p.name == row.name)
            && entry.version.to_string() != row.version
        {
            tracing::warn!(plugin = %row.name, installed = %row.version, listed = %entry.version, "config.json lists another version than is installed; the installed one serves (use `plinth plugin upgrade` to change it)");
        }
        if row.state != PluginState::Enabled {
            continue;
        }
        let dir = PluginDir::open(&host.data.plugin_version(&row.name, &row.version));
        let restored = match dir {
            Ok(dir) if dir.manifest.kind == PackageKind::Static => Ok(()),
            Ok(dir) => serve(host, &dir, None).await,
            Err(e) => Err(e),
        };
        restored.map_err(fail(&row.name, &row.version))?;
        report.serving.push(format!("{} {}", row.name, row.version));
    }
    for entry in host.config.plugins.iter().filter(|p| p.enabled) {
        if installed.iter().any(|row| row.name == entry.name) {
            continue;
        }
        let version = entry.version.to_string();
        if !host.data.plugin_version(&entry.name, &version).exists() {
            report.missing.push(format!("{} {version}", entry.name));
            continue;
        }
        adopt(host, entry)
            .await
            .map_err(fail(&entry.name, &version))?;
        report.serving.push(format!("{} {version}", entry.name));
    }
    if !report.missing.is_empty() {
        tracing::warn!(
            missing = %report.missing.join(", "),
            "config.json lists plugins that are not installed and not in {}; serving the rest. \
             Install each with `plinth plugin install <package.zip>` (or let the upgrade agent deploy it)",
            host.data.plugins().display()
        );
    }
    Ok(report)
}

async fn serve(
    host: &Host,
    dir: &PluginDir,
    journal: Option<&mut InstallJournal>,
) -> Result<(), InstallError> {
    let loaded = load(host, dir)?;
    migrate_and_record(host, dir, &loaded, journal).await?;
    tracing::info!(plugin = %dir.manifest.name, version = %dir.manifest.version, route = %format!("/p/{}/", dir.manifest.route_prefix), "plugin serving");
    host.registry.put(loaded);
    Ok(())
}

/// Installs a plugin config.json lists from its folder in `data/plugins/`.
async fn adopt(host: &Host, entry: &PluginEntry) -> Result<(), InstallError> {
    let path = host
        .data
        .plugin_version(&entry.name, &entry.version.to_string());
    let dir = PluginDir::open(&path)?;
    let found = format!("{} {}", dir.manifest.name, dir.manifest.version);
    let expected = format!("{} {}", entry.name, entry.version);
    if found != expected {
        return Err(InstallError::Mismatch {
            dir: path.display().to_string(),
            found,
            expected,
        });
    }
    check_host_api(&dir.manifest)?;
    let mut journal = InstallJournal::new(
        &host.live,
        &entry.name,
        Operation::Install,
        None,
        Some(entry.version.to_string()),
    );
    journal
        .step(
            &host.db,
            Step::Started,
            Some("listed in config.json, found in data/plugins"),
        )
        .await?;
    match serve(host, &dir, Some(&mut journal)).await {
        Ok(()) => {
            journal.step(&host.db, Step::Done, None).await?;
            Ok(())
        }
        Err(e) => {
            let _ = journal
                .step(&host.db, Step::Failed, Some(&e.to_string()))
                .await;
            Err(e)
        }
    }
}

/// Settles operations a crash cut short, before plugins are restored.
/// Before the commit point nothing took effect: staged and placed files are
/// removed. After it the new state stands: only the last steps are missing,
/// and start-up completes them.
pub async fn recover(host: &Host, guard: &OperationGuard) -> Result<Vec<String>, InstallError> {
    host.operations.check(guard);
    let mut settled = Vec::new();
    for last in journal::unfinished(&host.db).await? {
        let steps = journal::steps_of(&host.db, &last.op_id).await?;
        let committed = steps.iter().any(|s| s.step == Step::Committed.as_str());
        let _ = std::fs::remove_dir_all(host.data.staging_for(&last.op_id));
        let message = if committed {
            format!(
                "host stopped after `{}`; the {} had taken effect and was completed at start-up",
                last.step, last.operation
            )
        } else {
            if let Some(to) = &last.to_version
                && matches!(last.operation.as_str(), "install" | "upgrade")
            {
                undo_placement(
                    host,
                    &last.plugin,
                    &host.data.plugin_version(&last.plugin, to),
                )
                .await;
            }
            format!(
                "host stopped after `{}`, before the {} took effect; nothing changed",
                last.step, last.operation
            )
        };
        let mut journal = InstallJournal::resume(&host.live, &last);
        journal
            .step(&host.db, Step::Recovered, Some(&message))
            .await?;
        tracing::warn!(plugin = %last.plugin, op = %last.op_id, "{message}");
        settled.push(message);
    }
    // No operation runs while this does, so whatever is left in staging
    // (even of an operation that finished but was killed before cleaning
    // up) is debris.
    if let Ok(entries) = std::fs::read_dir(host.data.staging()) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(settled)
}
