//! Bringing a plugin version into service: check its manifest, compile it,
//! migrate its tables, run its install hook, swap it in and record it. The
//! one home of "a plugin comes into service": the operations an operator or
//! the agent drives ([`pipeline`]: install, upgrade, rollback, enable,
//! disable, remove, config.json sync) and what start-up runs ([`restore`]:
//! recover, restore, adopt).
//!
//! [`load`] then [`migrate_and_record`] is the one path every plugin version takes into service,
//! whether it is restored at start-up or installed later. Migrations and the
//! install hook share one transaction where the dialect has transactional
//! DDL, so a failing step leaves the previous version's schema untouched and
//! the previous version serving.

use std::path::{Path, PathBuf};

use plinth_package::manifest::{Manifest, PackageKind, PluginWorld};
use sqlx::AnyConnection;

use crate::config::plugin_settings::{ResolvedSettings, SettingView, SettingsError};
use crate::db::migrate::{self, MigrateError, Migration, plugin_scope};
use crate::db::scope::{self, ScopeError};
use crate::db::store::{self, InstalledPlugin, PluginState, StoredManifestError};
use crate::db::{Db, DbError, Dialect, now_ms};
use crate::db::{plugin_roles, plugin_sql};
use crate::host::Host;
use crate::registry::LoadedPlugin;
use crate::runtime::{CallError, LoadedComponent, PluginIdentity, RuntimeError, World};

mod announce;
pub mod fault;
pub mod journal;
mod pipeline;
pub mod restore;
pub mod secret_files;
mod settings_change;

pub use journal::{InstallJournal, Operation, Step};
pub use pipeline::*;
pub use restore::{RestoreError, RestoreReport, recover, restore};
pub use settings_change::{SettingsChangeError, change_settings};

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{path}: {source}")]
    Manifest {
        path: String,
        source: plinth_package::manifest::ManifestError,
    },
    #[error("{plugin} {version} needs host API {wanted}, but this host provides {have}")]
    HostApi {
        plugin: String,
        version: String,
        wanted: String,
        have: String,
    },
    #[error(
        "{plugin}'s plugin.toml says host_api = \"{declared}\", but its component was built for host API {built_for}; set host_api to a range that admits {built_for} (e.g. \"^{built_for}\")"
    )]
    HostApiMismatch {
        plugin: String,
        declared: String,
        built_for: String,
    },
    #[error("{dir} holds {found}, but {expected} was expected")]
    Mismatch {
        dir: String,
        found: String,
        expected: String,
    },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{plugin}: migration {migration} refused: {source}")]
    MigrationRefused {
        plugin: String,
        migration: String,
        source: ScopeError,
    },
    #[error("{plugin}: migration {migration} failed: {message}")]
    MigrationFailed {
        plugin: String,
        migration: String,
        message: String,
    },
    #[error("{plugin}: {source}")]
    Migrate {
        plugin: String,
        source: MigrateError,
    },
    #[error("{plugin}: install hook ({from} -> {to}) returned an error: {message}")]
    HookFailed {
        plugin: String,
        from: String,
        to: String,
        message: String,
    },
    #[error("{plugin}: install hook failed: {source}")]
    HookCrashed { plugin: String, source: CallError },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("package refused: {0}")]
    Package(plinth_package::archive::PackageError),
    #[error("{plugin} is not installed; {hint}")]
    NotInstalled { plugin: String, hint: String },
    #[error(
        "{plugin} {version} is already installed; use `plinth plugin upgrade` with a newer version"
    )]
    AlreadyInstalled { plugin: String, version: String },
    #[error("{plugin} {version} is already installed")]
    SameVersion { plugin: String, version: String },
    #[error(
        "{plugin} {offered} is older than the installed {installed}; versions only move up \
         (use `plinth plugin rollback {plugin}` to go back to the previous version)"
    )]
    Downgrade {
        plugin: String,
        installed: String,
        offered: String,
    },
    #[error(
        "{plugin} needs {dependency} {range}, but {reason}; install or enable {dependency} first"
    )]
    Dependency {
        plugin: String,
        dependency: String,
        range: String,
        reason: String,
    },
    #[error(
        "{plugin} wants the route /p/{route}/, which {owner} already serves; set route_prefix in its manifest"
    )]
    RouteTaken {
        plugin: String,
        route: String,
        owner: String,
    },
    #[error(
        "{plugin}'s table prefix \"{prefix}\" overlaps {owner}'s \"{owner_prefix}\", so one could reach \
         the other's tables; set capabilities.table_prefix to a prefix that neither starts nor is started by it"
    )]
    PrefixOverlap {
        plugin: String,
        prefix: String,
        owner: String,
        owner_prefix: String,
    },
    #[error("{plugin} {version} has no previous version to roll back to")]
    NoPrevious { plugin: String, version: String },
    #[error("{plugin} is already {state}")]
    AlreadyInState { plugin: String, state: String },
    #[error("{plugin} is needed by {}: disable or remove those first", dependents.join(", "))]
    Dependents {
        plugin: String,
        dependents: Vec<String>,
    },
    #[error(
        "{plugin}'s stored manifest (plinth_plugins.manifest) cannot be read back: {problem}. \
         Nothing changed; replace it by upgrading {plugin} to a newer package, or remove it \
         (`plinth plugin remove {plugin}`, keeping its data) and install it again"
    )]
    StoredManifest {
        plugin: String,
        problem: StoredManifestError,
    },
    #[error("inconsistent install state: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for InstallError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Sql(e))
    }
}

/// One installed plugin, as `plinth plugin list --json` prints it and the
/// admin API answers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PluginRow {
    pub name: String,
    pub version: String,
    pub state: String,
    pub installed_at: String,
    pub previous_version: Option<String>,
    /// The declared settings with their values, secrets hidden (filled by
    /// the admin API, which knows the configuration).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingView>,
    /// Why the current settings would stop the plugin from loading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_problem: Option<String>,
}

impl From<&InstalledPlugin> for PluginRow {
    fn from(p: &InstalledPlugin) -> Self {
        Self {
            name: p.name.clone(),
            version: p.version.clone(),
            state: p.state.as_str().to_owned(),
            installed_at: chrono::DateTime::from_timestamp_millis(p.installed_at)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default(),
            previous_version: p.previous_version.clone(),
            settings: Vec::new(),
            settings_problem: None,
        }
    }
}

/// An unpacked plugin version on disk:
/// `plugin.toml`, `plugin.wasm` and `sql/<dialect>/NNNN_*.sql`.
#[derive(Debug, Clone)]
pub struct PluginDir {
    pub path: PathBuf,
    pub manifest: Manifest,
}

impl PluginDir {
    /// Reads and validates the manifest of the plugin in `path`.
    pub fn open(path: &Path) -> Result<Self, InstallError> {
        let manifest_path = path.join("plugin.toml");
        let text = std::fs::read_to_string(&manifest_path).map_err(|source| InstallError::Io {
            path: manifest_path.display().to_string(),
            source,
        })?;
        let manifest = Manifest::parse(&text).map_err(|source| InstallError::Manifest {
            path: manifest_path.display().to_string(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            manifest,
        })
    }

    pub fn wasm_path(&self) -> PathBuf {
        self.path.join("plugin.wasm")
    }

    pub fn read_wasm(&self) -> Result<Vec<u8>, InstallError> {
        let path = self.wasm_path();
        std::fs::read(&path).map_err(|source| InstallError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Checks that this host can run `manifest`: its `host_api` range meets
/// one of the versions the host links.
pub fn check_host_api(manifest: &Manifest) -> Result<(), InstallError> {
    if manifest.kind != PackageKind::Plugin {
        return Ok(());
    }
    let linked = crate::HOST_API_VERSIONS
        .iter()
        .filter_map(|v| semver::Version::parse(v).ok());
    if linked.clone().any(|v| manifest.host_api_allows(&v)) {
        return Ok(());
    }
    Err(InstallError::HostApi {
        plugin: manifest.name.clone(),
        version: manifest.version.to_string(),
        wanted: manifest
            .host_api
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default(),
        have: crate::HOST_API_VERSIONS.join(" and "),
    })
}

/// Checks that the component was built for a host API the manifest's
/// `host_api` range admits, so the range an operator reads in plugin.toml
/// is the contract the code really uses.
fn check_built_for(manifest: &Manifest, built_for: &str) -> Result<(), InstallError> {
    let built = semver::Version::parse(built_for).ok();
    if built.is_some_and(|v| manifest.host_api_allows(&v)) {
        return Ok(());
    }
    Err(InstallError::HostApiMismatch {
        plugin: manifest.name.clone(),
        declared: manifest
            .host_api
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default(),
        built_for: built_for.to_owned(),
    })
}

/// The identity a plugin's guest code sees.
pub fn identity(host: &Host, manifest: &Manifest, settings: ResolvedSettings) -> PluginIdentity {
    PluginIdentity {
        depends: manifest.depends.keys().cloned().collect(),
        files: host.plugin_files(manifest),
        name: manifest.name.clone(),
        version: manifest.version.to_string(),
        table_prefix: manifest.capabilities.table_prefix.clone(),
        mount_path: format!("/p/{}", manifest.route_prefix),
        forked_from: manifest.forked_from.clone(),
        settings,
        outbound_hosts: manifest.capabilities.outbound_hosts.clone(),
    }
}

/// Compiles and links the plugin in `dir` without touching the database;
/// its settings are checked first, so a wrong one stops the operation.
pub fn load(host: &Host, dir: &PluginDir) -> Result<LoadedPlugin, InstallError> {
    check_host_api(&dir.manifest)?;
    let settings = host.plugin_settings(&dir.manifest)?;
    let wasm = dir.read_wasm()?;
    let label = format!("{} {}", dir.manifest.name, dir.manifest.version);
    let component = host.runtime.compile(&label, &wasm)?;
    let world = match dir.manifest.world {
        PluginWorld::Plinth => World::Plinth,
        PluginWorld::WasiHttp => World::WasiHttp,
    };
    let component = host.runtime.load(
        identity(host, &dir.manifest, settings),
        world,
        &component,
        host.services(),
    )?;
    if let LoadedComponent::Plinth(plinth) = &component {
        check_built_for(&dir.manifest, plinth.api_version())?;
    }
    Ok(LoadedPlugin {
        manifest: dir.manifest.clone(),
        component,
        routes: plinth_package::RouteTable::new(&dir.manifest.routes),
    })
}

/// Brings `dir` into service as far as the database is concerned: applies
/// pending migrations, runs the install hook when the version changed, and
/// records the plugin. The caller swaps `loaded` into the registry after
/// this returns `Ok`.
pub async fn migrate_and_record(
    host: &Host,
    dir: &PluginDir,
    loaded: &LoadedPlugin,
    mut journal: Option<&mut InstallJournal>,
) -> Result<InstalledPlugin, InstallError> {
    let manifest = &dir.manifest;
    let name = manifest.name.clone();
    let version = manifest.version.to_string();
    let previous = store::installed_plugin(&host.db, &name).await?;
    let migrations =
        migrate::plugin_migrations(&dir.path.join("sql"), host.db.dialect()).map_err(|source| {
            InstallError::Migrate {
                plugin: name.clone(),
                source,
            }
        })?;
    let scope_name = plugin_scope(&name);
    let from_version = previous.as_ref().map(|p| p.version.clone());
    let version_changed = from_version.as_deref() != Some(version.as_str());

    // The plugin's own database role or account, before its tables are
    // created or changed (on MySQL granted the names its migrations make).
    let prefix = &manifest.capabilities.table_prefix;
    let names: Vec<String> = migrations
        .iter()
        .flat_map(|m| {
            plugin_roles::names_under_prefix(&m.sql.replace("{{prefix}}", prefix), prefix)
        })
        .collect();
    plugin_roles::ensure_role(&host.db, &name, prefix, &names).await?;
    if !host.db.dialect().transactional_ddl() {
        // MySQL: DDL commits as it runs; each file is recorded right after it.
        // The statements run through the plugin's own account.
        let mut conn = host.db.pool().acquire().await.map_err(DbError::from)?;
        let mut own = host.db.plugin_sql().plugin_transaction(&name).await?;
        apply_plugin_migrations(
            &mut conn,
            own.as_deref_mut(),
            &host.db,
            &name,
            &scope_name,
            manifest,
            &migrations,
        )
        .await?;
        if let Some(own) = own {
            own.commit().await?;
        }
        // Grants follow the tables: the plugin's account gets any new ones.
        plugin_roles::ensure_role(&host.db, &name, prefix, &names).await?;
    }
    // A pool-owned ('static) transaction, because the install hook's store
    // holds it while the guest runs.
    let mut tx = host.db.begin().await?;
    // The plugin's migrations and install hook run logged in as its own role
    // or account where it has one, so no statement of theirs can switch back
    // to the host's user (`RESET ROLE`, `set_config('role', …)`); the
    // host's records go in `tx`. `own` commits just before `tx`.
    let mut own = match host.db.dialect() {
        Dialect::Postgres | Dialect::Mysql => {
            host.db.plugin_sql().plugin_transaction(&name).await?
        }
        Dialect::Sqlite => None,
    };
    if host.db.dialect().transactional_ddl() {
        apply_plugin_migrations(
            &mut tx,
            own.as_deref_mut(),
            &host.db,
            &name,
            &scope_name,
            manifest,
            &migrations,
        )
        .await?;
    }
    let now = now_ms();
    let record = InstalledPlugin {
        name: name.clone(),
        version: version.clone(),
        previous_version: if version_changed {
            from_version.clone()
        } else {
            previous.as_ref().and_then(|p| p.previous_version.clone())
        },
        state: PluginState::Enabled,
        manifest: store::stored_manifest(manifest),
        installed_at: if version_changed {
            now
        } else {
            previous.as_ref().map_or(now, |p| p.installed_at)
        },
        updated_at: now,
    };
    store::upsert_plugin(&mut tx, &record).await?;

    if version_changed && let crate::runtime::LoadedComponent::Plinth(component) = &loaded.component
    {
        // The hook's SQL runs in the plugin's own transaction when it has
        // one; its events then go in the host's, which that login may not
        // write, and commit with the host's records.
        let (hook_tx, host_tx) = match own.take() {
            Some(own) => (own, Some(tx)),
            None => (tx, None),
        };
        let own_login = host_tx.is_some();
        let (outcome, txs) = component
            .install(hook_tx, host_tx, from_version.as_deref(), &version)
            .await;
        let (hook_tx, host_tx) = (txs.sql, txs.events);
        let from = from_version.clone().unwrap_or_else(|| "nothing".into());
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(InstallError::HookFailed {
                plugin: name.clone(),
                from,
                to: version.clone(),
                message,
            }),
            Err(source) => Some(InstallError::HookCrashed {
                plugin: name.clone(),
                source,
            }),
        };
        // Cut off mid-call, the hook may have lost either transaction.
        let lost = own_login && host_tx.is_none();
        match (failure, hook_tx) {
            (None, Some(hook_tx)) if !lost => {
                let (own, mut tx) = match host_tx {
                    Some(host_tx) => (Some(hook_tx), host_tx),
                    None => (None, hook_tx),
                };
                if let Some(journal) = journal.as_deref_mut() {
                    journal.step_on(&mut tx, Step::Committed, None).await?;
                }
                if let Some(own) = own {
                    own.commit().await?;
                }
                tx.commit().await?;
                fault::after_step(Step::Committed);
            }
            (None, hook_tx) => {
                if let Some(hook_tx) = hook_tx {
                    hook_tx.rollback().await?;
                }
                if let Some(host_tx) = host_tx {
                    host_tx.rollback().await?;
                }
                return Err(InstallError::HookCrashed {
                    plugin: name,
                    source: CallError::BadResponse {
                        plugin: manifest.name.clone(),
                        message: "the install transaction was lost".into(),
                    },
                });
            }
            (Some(error), hook_tx) => {
                if let Some(hook_tx) = hook_tx {
                    hook_tx.rollback().await?;
                }
                if let Some(host_tx) = host_tx {
                    host_tx.rollback().await?;
                }
                return Err(error);
            }
        }
        return Ok(record);
    }
    if let Some(journal) = journal {
        journal.step_on(&mut tx, Step::Committed, None).await?;
    }
    if let Some(own) = own {
        own.commit().await?;
    }
    tx.commit().await?;
    fault::after_step(Step::Committed);
    Ok(record)
}

/// Applies the pending migrations: their statements on `own` (the plugin's
/// own login) when given, else on `conn` inside the plugin's wall; the
/// history on `conn`, the host's.
async fn apply_plugin_migrations(
    conn: &mut AnyConnection,
    mut own: Option<&mut AnyConnection>,
    db: &Db,
    plugin: &str,
    scope_name: &str,
    manifest: &Manifest,
    migrations: &[Migration],
) -> Result<(), InstallError> {
    let todo = migrate::pending(conn, scope_name, migrations)
        .await
        .map_err(|source| InstallError::Migrate {
            plugin: plugin.to_owned(),
            source,
        })?;
    let prefix = &manifest.capabilities.table_prefix;
    for migration in todo {
        let refused = |source| InstallError::MigrationRefused {
            plugin: plugin.to_owned(),
            migration: migration.id.clone(),
            source,
        };
        let statements: Vec<String> = if db.plugin_sql().guard_is_off_for(plugin) {
            scope::split_script_unchecked(db.dialect(), prefix, &migration.sql).map_err(refused)?
        } else {
            scope::check_script(db.dialect(), prefix, &migration.sql)
                .map_err(refused)?
                .into_iter()
                .map(|s| s.sql)
                .collect()
        };
        for statement in statements {
            // One checked statement at a time, inside the plugin's database
            // wall (its own login, or the authorizer on SQLite).
            let target: &mut AnyConnection = match own.as_deref_mut() {
                Some(own) => own,
                None => &mut *conn,
            };
            plugin_sql::run_migration_statement(
                target,
                db,
                plugin,
                prefix,
                &statement,
                plugin_sql::MIGRATION_STATEMENT_LIMIT,
            )
            .await
            .map_err(|message| InstallError::MigrationFailed {
                plugin: plugin.to_owned(),
                migration: migration.id.clone(),
                message,
            })?;
        }
        migrate::record(conn, scope_name, migration)
            .await
            .map_err(|source| InstallError::Migrate {
                plugin: plugin.to_owned(),
                source,
            })?;
    }
    Ok(())
}
