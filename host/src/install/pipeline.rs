//! Plugin operations as an operator or the agent drives them: install or
//! upgrade from a package, rollback, enable, disable, remove; and recovery of
//! operations a crash cut short.
//!
//! Every operation runs under the host's operation lock, one at a time: the
//! caller takes it ([`crate::host::OperationLock::lock`]) and passes the
//! guard, so a caller that runs several operations as one holds it across
//! all of them. Each operation journals each step. The commit point of an install is one database
//! transaction holding the plugin's migrations, its install hook, the
//! installed-set row and the journal's `committed` step; everything before it
//! is undone on failure (or on restart after a crash), everything after it
//! is completed.

use std::path::Path;

use plinth_package::archive::{self, Limits};
use plinth_package::manifest::{Manifest, PackageKind};
use semver::Version;

use super::journal::{InstallJournal, Operation, Step};
use super::{InstallError, PluginDir, load, migrate_and_record};
use crate::db::store::{self, InstalledPlugin, PluginState};
use crate::db::{DbError, migrate, now_ms, outbox, plugin_roles};
use crate::host::{Host, OperationGuard};

/// What the caller wants of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallMode {
    /// Only a plugin not installed yet.
    Install,
    /// Only a newer version of an installed plugin.
    Upgrade,
    /// Whichever applies (drop-in folder, upgrade agent).
    Auto,
}

/// The outcome of an operation, as the CLI and the admin API report it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperationReport {
    pub op_id: String,
    pub plugin: String,
    pub operation: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
}

impl OperationReport {
    fn from_journal(journal: &InstallJournal) -> Self {
        Self {
            op_id: journal.op_id.clone(),
            plugin: journal.plugin.clone(),
            operation: journal.operation.as_str().to_owned(),
            from_version: journal.from_version.clone(),
            to_version: journal.to_version.clone(),
        }
    }

    /// One line for an operator.
    pub fn summary(&self) -> String {
        match (self.from_version.as_deref(), self.to_version.as_deref()) {
            (Some(from), Some(to)) if from != to => {
                format!("{} {}: {from} -> {to}", self.operation, self.plugin)
            }
            (_, Some(to)) => format!("{} {} {to}", self.operation, self.plugin),
            (Some(from), None) => format!("{} {} {from}", self.operation, self.plugin),
            (None, None) => format!("{} {}", self.operation, self.plugin),
        }
    }
}

/// An error before the commit point: nothing took effect.
fn early(e: InstallError) -> (InstallError, bool) {
    (e, false)
}

/// Installs or upgrades the plugin in the package `bytes`.
pub async fn install_package(
    host: &Host,
    guard: &OperationGuard,
    bytes: &[u8],
    mode: InstallMode,
) -> Result<OperationReport, InstallError> {
    host.operations.check(guard);
    let limits = Limits::default();
    let manifest = archive::read_manifest(bytes, &limits).map_err(InstallError::Package)?;
    let name = manifest.name.clone();
    let current = store::installed_plugin(&host.db, &name).await?;
    let operation = decide(&manifest, current.as_ref(), mode)?;
    super::check_host_api(&manifest)?;
    check_neighbours(host, &manifest).await?;

    let mut journal = InstallJournal::new(
        &host.live,
        &name,
        operation,
        current.as_ref().map(|c| c.version.clone()),
        Some(manifest.version.to_string()),
    );
    journal
        .step(
            &host.db,
            Step::Started,
            Some(&format!("package sha256 {}", archive::sha256_hex(bytes))),
        )
        .await?;
    let staging = host.data.staging_for(&journal.op_id);
    let target = host
        .data
        .plugin_version(&name, &manifest.version.to_string());
    let result = run_install(
        host,
        bytes,
        &limits,
        &manifest,
        &mut journal,
        &staging,
        &target,
    )
    .await;
    let _ = std::fs::remove_dir_all(&staging);
    match result {
        Ok(()) => {
            prune_versions(host, &name).await;
            Ok(OperationReport::from_journal(&journal))
        }
        Err((error, committed)) => {
            if !committed {
                undo_placement(host, &name, &target).await;
            }
            let message = error.to_string();
            if let Err(e) = journal.step(&host.db, Step::Failed, Some(&message)).await {
                tracing::error!(error = %e, "cannot journal a failed operation");
            }
            tracing::warn!(plugin = %name, op = %journal.op_id, %message, "plugin operation failed; nothing changed");
            Err(error)
        }
    }
}

/// Reads a package file from disk for [`install_package`]; one larger than
/// the package limit is refused before a byte of it is read, so a caller
/// holding a downloaded file never loads more than that limit.
pub async fn read_package_file(path: &Path) -> Result<Vec<u8>, InstallError> {
    let io = |source| InstallError::Io {
        path: path.display().to_string(),
        source,
    };
    let limit = Limits::default().max_package_bytes;
    let size = tokio::fs::metadata(path).await.map_err(io)?.len();
    if size > limit {
        return Err(InstallError::Package(
            plinth_package::PackageError::PackageTooLarge { size, limit },
        ));
    }
    tokio::fs::read(path).await.map_err(io)
}

/// The install steps after `started`. On error, says whether the commit
/// point was passed (then the new version is installed and only the last
/// steps failed).
async fn run_install(
    host: &Host,
    bytes: &[u8],
    limits: &Limits,
    manifest: &Manifest,
    journal: &mut InstallJournal,
    staging: &Path,
    target: &Path,
) -> Result<(), (InstallError, bool)> {
    std::fs::create_dir_all(staging)
        .map_err(|source| InstallError::Io {
            path: staging.display().to_string(),
            source,
        })
        .map_err(early)?;
    let unpacked = archive::unpack(bytes, staging, limits)
        .map_err(InstallError::Package)
        .map_err(early)?;
    if unpacked.manifest != *manifest {
        return Err(early(InstallError::Corrupt(
            "the package's manifest read differently on the second pass".into(),
        )));
    }
    journal
        .step(&host.db, Step::Unpacked, None)
        .await
        .map_err(|e| early(InstallError::from(e)))?;

    if manifest.kind == PackageKind::Static {
        return install_static(host, manifest, journal, staging, target).await;
    }

    let staged = PluginDir {
        path: staging.to_owned(),
        manifest: manifest.clone(),
    };
    let loaded = load(host, &staged).map_err(early)?;
    journal
        .step(&host.db, Step::Compiled, None)
        .await
        .map_err(|e| early(InstallError::from(e)))?;

    place(staging, target).map_err(early)?;
    journal
        .step(&host.db, Step::Placed, None)
        .await
        .map_err(|e| early(InstallError::from(e)))?;

    let placed = PluginDir {
        path: target.to_owned(),
        manifest: manifest.clone(),
    };
    migrate_and_record(host, &placed, &loaded, Some(journal))
        .await
        .map_err(early)?;

    host.registry.put(loaded);
    finish(host, journal).await.map_err(|e| (e, true))
}

/// An assets-only package: its `public/` files are copied into the host's
/// public folder, and it is recorded like any plugin (it has no code).
async fn install_static(
    host: &Host,
    manifest: &Manifest,
    journal: &mut InstallJournal,
    staging: &Path,
    target: &Path,
) -> Result<(), (InstallError, bool)> {
    place(staging, target).map_err(early)?;
    journal
        .step(&host.db, Step::Placed, None)
        .await
        .map_err(|e| early(InstallError::from(e)))?;
    let public = target.join("public");
    copy_tree(&public, &host.config.public_dir).map_err(early)?;
    let current = store::installed_plugin(&host.db, &manifest.name)
        .await
        .map_err(|e| early(InstallError::from(e)))?;
    let record = InstalledPlugin {
        name: manifest.name.clone(),
        version: manifest.version.to_string(),
        previous_version: current.as_ref().map(|c| c.version.clone()),
        state: PluginState::Enabled,
        manifest: store::stored_manifest(manifest),
        installed_at: now_ms(),
        updated_at: now_ms(),
    };
    commit_record(host, &record, journal).await.map_err(early)?;
    finish(host, journal).await.map_err(|e| (e, true))
}

/// Writes the installed-set row and the `committed` step in one
/// transaction.
async fn commit_record(
    host: &Host,
    record: &InstalledPlugin,
    journal: &mut InstallJournal,
) -> Result<(), InstallError> {
    let mut tx = host.db.begin().await?;
    store::upsert_plugin(&mut tx, record).await?;
    journal.step_on(&mut tx, Step::Committed, None).await?;
    tx.commit().await?;
    super::fault::after_step(Step::Committed);
    Ok(())
}

/// The steps after the commit point: the registry already serves the new
/// state; bring `config.json` in line and close the journal.
async fn finish(host: &Host, journal: &mut InstallJournal) -> Result<(), InstallError> {
    // Whatever the operation committed may have changed the declared codes
    // and their grants: permission caches recompute.
    host.grants.bump();
    journal.step(&host.db, Step::Swapped, None).await?;
    let removed = [journal.plugin.as_str()];
    let forget: &[&str] = if journal.operation == Operation::Remove {
        &removed
    } else {
        &[]
    };
    sync_config_forgetting(host, forget).await?;
    journal.step(&host.db, Step::Done, None).await?;
    tracing::info!(plugin = %journal.plugin, op = %journal.op_id, operation = journal.operation.as_str(), from = ?journal.from_version, to = ?journal.to_version, "plugin operation done");
    if journal.operation != Operation::Remove {
        super::announce::operation_done(host, journal, None).await;
    }
    Ok(())
}

fn decide(
    manifest: &Manifest,
    current: Option<&InstalledPlugin>,
    mode: InstallMode,
) -> Result<Operation, InstallError> {
    let name = &manifest.name;
    let new = &manifest.version;
    match (current, mode) {
        (None, InstallMode::Upgrade) => Err(InstallError::NotInstalled {
            plugin: name.clone(),
            hint: "use `plinth plugin install` for a first install".into(),
        }),
        (None, _) => Ok(Operation::Install),
        (Some(current), InstallMode::Install) => Err(InstallError::AlreadyInstalled {
            plugin: name.clone(),
            version: current.version.clone(),
        }),
        (Some(current), _) => {
            let installed = Version::parse(&current.version).map_err(|e| {
                InstallError::Corrupt(format!("installed version of {name} is not semver: {e}"))
            })?;
            if *new > installed {
                Ok(Operation::Upgrade)
            } else if *new == installed {
                Err(InstallError::SameVersion {
                    plugin: name.clone(),
                    version: installed.to_string(),
                })
            } else {
                Err(InstallError::Downgrade {
                    plugin: name.clone(),
                    installed: installed.to_string(),
                    offered: new.to_string(),
                })
            }
        }
    }
}

/// Dependencies present and enabled at matching versions; no other plugin
/// mounted at the same route or owning an overlapping table prefix.
async fn check_neighbours(host: &Host, manifest: &Manifest) -> Result<(), InstallError> {
    let installed = store::installed_plugins(&host.db).await?;
    for (dependency, range) in &manifest.depends {
        let found = installed.iter().find(|p| &p.name == dependency);
        let reason = match found {
            None => "it is not installed".to_owned(),
            Some(p) if !p.is_enabled() => {
                format!("it is installed ({}) but disabled", p.version)
            }
            Some(p) => match Version::parse(&p.version) {
                Ok(v) if range.matches(&v) => continue,
                _ => format!("{} is installed", p.version),
            },
        };
        return Err(InstallError::Dependency {
            plugin: manifest.name.clone(),
            dependency: dependency.clone(),
            range: range.to_string(),
            reason,
        });
    }
    if manifest.kind == PackageKind::Static {
        return Ok(());
    }
    // Every readable neighbour is checked first, so a real collision is
    // reported as one; a neighbour whose stored manifest no longer reads
    // then stops the operation, since nothing says it does not collide.
    let mut unreadable = None;
    for other in installed.iter().filter(|p| p.name != manifest.name) {
        let theirs = match read_stored(other) {
            Ok(theirs) => theirs,
            Err(e) => {
                unreadable.get_or_insert(e);
                continue;
            }
        };
        if theirs.kind == PackageKind::Static {
            continue;
        }
        if theirs.route_prefix == manifest.route_prefix {
            return Err(InstallError::RouteTaken {
                plugin: manifest.name.clone(),
                route: manifest.route_prefix.clone(),
                owner: other.name.clone(),
            });
        }
        let (mine, theirs_prefix) = (
            &manifest.capabilities.table_prefix,
            &theirs.capabilities.table_prefix,
        );
        if mine.starts_with(theirs_prefix.as_str()) || theirs_prefix.starts_with(mine.as_str()) {
            return Err(InstallError::PrefixOverlap {
                plugin: manifest.name.clone(),
                prefix: mine.clone(),
                owner: other.name.clone(),
                owner_prefix: theirs_prefix.clone(),
            });
        }
    }
    unreadable.map_or(Ok(()), Err)
}

/// An installed plugin's stored manifest, or the error naming it.
fn read_stored(plugin: &InstalledPlugin) -> Result<Manifest, InstallError> {
    plugin
        .manifest()
        .map_err(|problem| InstallError::StoredManifest {
            plugin: plugin.name.clone(),
            problem,
        })
}

/// Plugins installed and enabled that depend on `name`.
async fn dependents(host: &Host, name: &str) -> Result<Vec<String>, InstallError> {
    let installed = store::installed_plugins(&host.db).await?;
    let mut users = Vec::new();
    for other in installed
        .iter()
        .filter(|p| p.name != name && p.is_enabled())
    {
        if read_stored(other)?.depends.contains_key(name) {
            users.push(other.name.clone());
        }
    }
    Ok(users)
}

/// Moves the staged files to their final folder. A folder already there is
/// a leftover (a crashed attempt, or a version rolled away from): it is not
/// serving, so it is replaced.
fn place(staging: &Path, target: &Path) -> Result<(), InstallError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| InstallError::Io { path, source }
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    if target.exists() {
        std::fs::remove_dir_all(target).map_err(io(target))?;
    }
    std::fs::rename(staging, target).map_err(io(target))?;
    std::fs::create_dir_all(staging).map_err(io(staging))?;
    Ok(())
}

/// Removes a version folder this operation placed, unless the database
/// says it is the installed or the previous version.
pub(super) async fn undo_placement(host: &Host, name: &str, target: &Path) {
    let keep = match store::installed_plugin(&host.db, name).await {
        Ok(Some(row)) => {
            let version = target.file_name().map(|v| v.to_string_lossy().into_owned());
            version.as_deref() == Some(row.version.as_str())
                || version.as_deref() == row.previous_version.as_deref()
        }
        Ok(None) => false,
        // Unsure: keeping a folder too many is harmless.
        Err(_) => true,
    };
    if !keep && target.exists() {
        let _ = std::fs::remove_dir_all(target);
    }
}

/// Keeps only the installed and the previous version of `name` on disk.
async fn prune_versions(host: &Host, name: &str) {
    let Ok(Some(row)) = store::installed_plugin(&host.db, name).await else {
        return;
    };
    let dir = host.data.plugin(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let version = entry.file_name().to_string_lossy().into_owned();
        if version != row.version && Some(&version) != row.previous_version.as_ref() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), InstallError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| InstallError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let dest = to.join(entry.file_name());
        if entry.file_type().map_err(io(from))?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            // Write beside, then rename: a reader never sees half a file.
            let tmp = dest.with_extension("plinth-tmp");
            std::fs::copy(entry.path(), &tmp).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
        }
    }
    Ok(())
}

/// Serves the previous version again. No down-migrations run: the schema
/// stays as the newer version left it, which the older code must tolerate
/// (added columns are the usual case).
pub async fn rollback(
    host: &Host,
    guard: &OperationGuard,
    name: &str,
) -> Result<OperationReport, InstallError> {
    host.operations.check(guard);
    let current = installed(host, name).await?;
    let previous = current
        .previous_version
        .clone()
        .ok_or_else(|| InstallError::NoPrevious {
            plugin: name.to_owned(),
            version: current.version.clone(),
        })?;
    let dir_path = host.data.plugin_version(name, &previous);
    let dir = PluginDir::open(&dir_path)?;
    let mut journal = InstallJournal::new(
        &host.live,
        name,
        Operation::Rollback,
        Some(current.version.clone()),
        Some(previous.clone()),
    );
    journal.step(&host.db, Step::Started, None).await?;
    let result = async {
        let loaded = if current.is_enabled() && dir.manifest.kind == PackageKind::Plugin {
            Some(load(host, &dir)?)
        } else {
            None
        };
        journal.step(&host.db, Step::Compiled, None).await?;
        let record = InstalledPlugin {
            version: previous.clone(),
            previous_version: Some(current.version.clone()),
            manifest: store::stored_manifest(&dir.manifest),
            updated_at: now_ms(),
            ..current.clone()
        };
        commit_record(host, &record, &mut journal).await?;
        if dir.manifest.kind == PackageKind::Static {
            copy_tree(&dir.path.join("public"), &host.config.public_dir)?;
        }
        if let Some(loaded) = loaded {
            host.registry.put(loaded);
        }
        finish(host, &mut journal).await
    }
    .await;
    settle(host, journal, result).await
}

/// Enables or disables a plugin: a disabled plugin keeps its files, tables
/// and data but serves no routes, menus or tasks.
pub async fn set_enabled(
    host: &Host,
    guard: &OperationGuard,
    name: &str,
    enabled: bool,
) -> Result<OperationReport, InstallError> {
    host.operations.check(guard);
    let current = installed(host, name).await?;
    let state = if enabled {
        PluginState::Enabled
    } else {
        PluginState::Disabled
    };
    if current.state == state {
        return Err(InstallError::AlreadyInState {
            plugin: name.to_owned(),
            state: state.as_str().to_owned(),
        });
    }
    if !enabled {
        let users = dependents(host, name).await?;
        if !users.is_empty() {
            return Err(InstallError::Dependents {
                plugin: name.to_owned(),
                dependents: users,
            });
        }
    }
    let operation = if enabled {
        Operation::Enable
    } else {
        Operation::Disable
    };
    let mut journal = InstallJournal::new(
        &host.live,
        name,
        operation,
        Some(current.version.clone()),
        Some(current.version.clone()),
    );
    journal.step(&host.db, Step::Started, None).await?;
    let result = async {
        let dir = PluginDir::open(&host.data.plugin_version(name, &current.version))?;
        let loaded = if enabled && dir.manifest.kind == PackageKind::Plugin {
            Some(load(host, &dir)?)
        } else {
            None
        };
        let record = InstalledPlugin {
            state,
            updated_at: now_ms(),
            ..current.clone()
        };
        commit_record(host, &record, &mut journal).await?;
        match loaded {
            Some(loaded) => {
                host.registry.put(loaded);
            }
            None => {
                host.registry.remove(name);
            }
        }
        finish(host, &mut journal).await
    }
    .await;
    settle(host, journal, result).await
}

/// Uninstalls a plugin: its routes, menus, permissions and tasks go with it
/// (they are declared in its manifest). With `drop_data` its tables,
/// migration history and files are dropped too; without, they stay for a
/// reinstall.
pub async fn remove(
    host: &Host,
    guard: &OperationGuard,
    name: &str,
    drop_data: bool,
) -> Result<OperationReport, InstallError> {
    host.operations.check(guard);
    let current = installed(host, name).await?;
    let users = dependents(host, name).await?;
    if !users.is_empty() {
        return Err(InstallError::Dependents {
            plugin: name.to_owned(),
            dependents: users,
        });
    }
    // Dropping data needs the table prefix; without it the manifest is not
    // needed, so a plugin whose stored manifest no longer reads can still be
    // removed (and then installed afresh).
    let table_prefix = if drop_data {
        Some(read_stored(&current)?.capabilities.table_prefix)
    } else {
        None
    };
    let mut journal = InstallJournal::new(
        &host.live,
        name,
        Operation::Remove,
        Some(current.version.clone()),
        None,
    );
    journal
        .step(
            &host.db,
            Step::Started,
            Some(if drop_data {
                "dropping data"
            } else {
                "keeping data"
            }),
        )
        .await?;
    let result = async {
        host.registry.remove(name);
        let mut tx = host.db.begin().await?;
        store::delete_plugin(&mut tx, name).await?;
        journal.step_on(&mut tx, Step::Committed, None).await?;
        tx.commit().await?;
        super::fault::after_step(Step::Committed);
        if let Some(table_prefix) = &table_prefix {
            let dropped = store::drop_tables_with_prefix(&host.db, table_prefix).await?;
            let mut conn = host.db.pool().acquire().await.map_err(DbError::from)?;
            migrate::forget_scope(&mut conn, &migrate::plugin_scope(name))
                .await
                .map_err(|source| InstallError::Migrate {
                    plugin: name.to_owned(),
                    source,
                })?;
            tracing::info!(plugin = name, tables = ?dropped, "plugin tables dropped");
            // Its files are data like its tables: kept for a reinstall
            // unless the operator asked to drop the data.
            crate::plugin_files::PluginFiles::drop_all(&host.data, name).map_err(|source| {
                InstallError::Io {
                    path: host.data.plugin_files(name).display().to_string(),
                    source,
                }
            })?;
            // So do the secrets saved for it from the admin web: the
            // config.json entry that named them goes with the removal.
            if let Some(secrets) = host.data.plugin_secrets(name) {
                match std::fs::remove_dir_all(&secrets) {
                    Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                        return Err(InstallError::Io {
                            path: secrets.display().to_string(),
                            source,
                        });
                    }
                    _ => {}
                }
            }
            // Its role or account goes with its tables. The removal has
            // happened; a role the server will not drop (it owns objects in
            // another database) costs a warning.
            if let Err(e) = plugin_roles::drop_role(&host.db, name).await {
                tracing::warn!(plugin = name, error = %e, "the plugin's database role was not dropped");
            }
        } else {
            // Kept data stays owned by (granted to) the plugin's role, which
            // a reinstall goes on with; only its connections close.
            host.db.plugin_sql().close_plugin_pool(name).await;
        }
        let _ = std::fs::remove_dir_all(host.data.plugin(name));
        // Its subscriptions went with its manifest; what was still waiting
        // for it is dropped, and how much is recorded on the bus and in the log.
        let dropped = outbox::drop_undelivered(&host.db, name).await?;
        if dropped > 0 {
            tracing::info!(
                plugin = name,
                dropped,
                "undelivered events to the removed plugin dropped"
            );
        }
        finish(host, &mut journal).await?;
        super::announce::operation_done(host, &journal, Some(dropped)).await;
        Ok(())
    }
    .await;
    settle(host, journal, result).await
}

async fn installed(host: &Host, name: &str) -> Result<InstalledPlugin, InstallError> {
    store::installed_plugin(&host.db, name)
        .await?
        .ok_or_else(|| InstallError::NotInstalled {
            plugin: name.to_owned(),
            hint: "`plinth plugin list` shows what is installed".into(),
        })
}

async fn settle(
    host: &Host,
    mut journal: InstallJournal,
    result: Result<(), InstallError>,
) -> Result<OperationReport, InstallError> {
    match result {
        Ok(()) => Ok(OperationReport::from_journal(&journal)),
        Err(error) => {
            let _ = journal
                .step(&host.db, Step::Failed, Some(&error.to_string()))
                .await;
            Err(error)
        }
    }
}

/// Brings `config.json`'s plugin list in line with the installed set.
/// Without a config file path (tests that build the config in memory) there
/// is nothing to write.
pub async fn sync_config(host: &Host) -> Result<(), InstallError> {
    sync_config_forgetting(host, &[]).await
}

/// [`sync_config`], also dropping the entries of `forget` (plugins just
/// removed). The file is the operator's and the database holds the truth,
/// so a file that cannot be updated costs one warning and stops nothing;
/// see [`crate::config::Config::save_plugins`] for what is written.
async fn sync_config_forgetting(host: &Host, forget: &[&str]) -> Result<(), InstallError> {
    let Some(path) = host.config_path.as_deref() else {
        return Ok(());
    };
    let installed = store::installed_plugins(&host.db).await?;
    let entries: Vec<crate::config::PluginEntry> = installed
        .iter()
        .filter_map(|p| {
            Some(crate::config::PluginEntry {
                name: p.name.clone(),
                version: Version::parse(&p.version).ok()?,
                enabled: p.is_enabled(),
                // Settings are the operator's: those in the file stay, and
                // those from the environment never go into it.
                settings: std::collections::BTreeMap::new(),
            })
        })
        .collect();
    if let Err(error) = crate::config::Config::save_plugins(path, &entries, forget) {
        tracing::warn!(
            path = %path.display(),
            "config.json does not show the installed plugins: {error}; fix the file and the host brings its plugins list in line at the next plugin operation or start (`plinth plugin list` shows what is installed)"
        );
    }
    Ok(())
}
