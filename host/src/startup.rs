//! Ordered start-up (shared/DESIGN.md): each step runs only after the one
//! before it succeeded, and a failing step stops start-up with a message that
//! names what was wrong.
//!
//! 1. load `config.json` and environment overrides ([`Config::load`]);
//! 2. refuse placeholder secrets in production (part of 1);
//! 3. open the database;
//! 4. migrate the host schema;
//! 5. restore the installed, enabled plugins;
//! 6. start the event dispatcher and the scheduler;
//! 7. start the upgrade agent when `vendor.endpoint` is set;
//!
//! then the caller serves and shuts down on SIGINT/SIGTERM. Seeding an admin
//! account joins between 4 and 5 once users and roles exist.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use plinth_package::manifest::PackageKind;

use crate::agent::AgentState;
use crate::config::{Config, PluginEntry};
use crate::db::migrate::{self, MigrateError, MigrationReport};
use crate::db::plugin_sql::PluginSqlPolicy;
use crate::db::store;
use crate::db::{Db, DbError, DbOptions};
use crate::events::{self, EventBus};
use crate::install::{self, InstallError, PluginDir};
use crate::registry::PluginRegistry;
use crate::runtime::{HostServices, Runtime, RuntimeError, RuntimeSettings};
use crate::scheduler::Scheduler;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("opening the database: {0}")]
    Database(#[from] DbError),
    #[error("migrating the host schema: {0}")]
    Schema(#[from] MigrateError),
    #[error("starting the plugin runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("starting the upgrade agent: {0}")]
    Agent(String),
    #[error("settling interrupted plugin operations: {0}")]
    Recover(InstallError),
    #[error(
        "restoring plugin {name} {version}: {source}. \
         Reinstall it, or remove it from config.json's plugins list"
    )]
    Restore {
        name: String,
        version: String,
        source: Box<InstallError>,
    },
}

/// Everything the running host is made of. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Host {
    pub config: Arc<Config>,
    /// The file `config` came from; the installer keeps its plugin list in
    /// line with the installed set. `None` for a config built in memory.
    pub config_path: Option<std::path::PathBuf>,
    /// Plugin operations run one at a time.
    pub operations: Arc<tokio::sync::Mutex<()>>,
    pub db: Db,
    pub runtime: Arc<Runtime>,
    pub registry: PluginRegistry,
    pub events: EventBus,
    pub scheduler: Scheduler,
    /// The upgrade agent's state (disabled when no vendor is configured).
    pub agent: AgentState,
}

/// Background tasks started with the host; aborted on shutdown.
#[derive(Debug)]
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

impl Host {
    /// The operator's settings for plugin `name` from config.json (empty
    /// when it has none).
    pub fn plugin_settings(&self, name: &str) -> std::collections::BTreeMap<String, String> {
        self.config
            .plugins
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.settings.clone())
            .unwrap_or_default()
    }

    /// What host imports of a plugin instance need.
    pub fn services(&self) -> HostServices {
        HostServices {
            db: self.db.clone(),
            events: self.events.clone(),
        }
    }
}

/// Steps 3 and 4 plus the runtime: a host with its database migrated and
/// nothing loaded yet. The CLI runs one plugin operation on this without
/// serving; [`start`] goes on to restore the plugins.
pub async fn assemble(
    config: Config,
    config_path: Option<PathBuf>,
) -> Result<(Host, EventReceiver), StartupError> {
    let config = Arc::new(config);

    // 3. Database.
    let db = Db::connect(&DbOptions {
        url: config.database.url.clone(),
        max_connections: config.database.max_connections,
        connect_timeout: Duration::from_secs(config.database.connect_timeout_secs),
    })
    .await?;
    tracing::info!(dialect = %db.dialect(), url = %crate::db::redact_url(&config.database.url), "database open");
    db.plugin_sql().configure(&PluginSqlPolicy {
        production: config.is_production(),
        allow_superuser: config.database.plugin_sql_as_superuser,
        plugin_memory_limit_bytes: (config.runtime.memory_limit_mib as usize) * 1024 * 1024,
    })?;

    // 4. Host schema.
    let report: MigrationReport = migrate::migrate_host(&db, &config.database.schema_dir).await?;
    tracing::info!(applied = ?report.applied, already = report.already_applied, "host schema migrated");

    let runtime = Arc::new(Runtime::new(RuntimeSettings {
        memory_limit_bytes: (config.runtime.memory_limit_mib as usize) * 1024 * 1024,
        call_timeout: Duration::from_millis(config.runtime.call_timeout_ms),
        task_timeout: Duration::from_millis(config.runtime.task_timeout_ms),
        max_warm_instances: config.runtime.max_warm_instances as usize,
        pooling: config.runtime.pooling,
        cache_dir: config.data_dir.join("cache").join("components"),
    })?);
    let (events, event_rx) = EventBus::new();
    let host = Host {
        config_path,
        operations: Arc::new(tokio::sync::Mutex::new(())),
        db,
        runtime,
        registry: PluginRegistry::new(),
        events,
        scheduler: Scheduler::new(),
        agent: AgentState::new(&config.vendor),
        config,
    };
    Ok((host, EventReceiver(event_rx)))
}

/// The receiving end of the event bus, handed to the dispatcher.
#[derive(Debug)]
pub struct EventReceiver(tokio::sync::mpsc::Receiver<events::Event>);

/// Runs start-up steps 3 to 6 for an already loaded and checked `config`.
/// Returns the host and its background tasks.
pub async fn start(
    config: Config,
    config_path: Option<PathBuf>,
) -> Result<(Host, Background), StartupError> {
    let (host, event_rx) = assemble(config, config_path).await?;

    // 5. Plugins: settle operations a crash cut short, then restore the
    // installed set, then bring config.json in line with it.
    install::recover(&host)
        .await
        .map_err(StartupError::Recover)?;
    restore_installed(&host).await?;
    install::sync_config(&host)
        .await
        .map_err(StartupError::Recover)?;

    // 6. Background work, then 7. the upgrade agent.
    let mut tasks = vec![
        tokio::spawn(events::dispatch(event_rx.0, host.registry.clone())),
        tokio::spawn(host.scheduler.clone().run(host.clone())),
        tokio::spawn(crate::install::dropin::watch(host.clone())),
    ];
    if host.config.vendor.is_enabled() {
        tasks.extend(crate::agent::spawn(host.clone()).map_err(StartupError::Agent)?);
    }
    Ok((host, Background { tasks }))
}

/// The folder an installed plugin version lives in.
pub fn plugin_dir(config: &Config, name: &str, version: &str) -> PathBuf {
    config.data_dir.join("plugins").join(name).join(version)
}

/// Serves every installed, enabled plugin; the database's installed set is
/// the truth. A plugin listed in config.json but not installed yet, whose
/// version folder is in `data/plugins/`, is adopted (installed) here.
async fn restore_installed(host: &Host) -> Result<(), StartupError> {
    let installed = store::installed_plugins(&host.db).await?;
    for row in &installed {
        if let Some(entry) = host.config.plugins.iter().find(|p| p.name == row.name)
            && entry.version.to_string() != row.version
        {
            tracing::warn!(plugin = %row.name, installed = %row.version, listed = %entry.version, "config.json lists another version than is installed; the installed one serves (use `plinth plugin upgrade` to change it)");
        }
        if row.state != "enabled" {
            continue;
        }
        let dir = PluginDir::open(&plugin_dir(&host.config, &row.name, &row.version));
        let restored = match dir {
            Ok(dir) if dir.manifest.kind == PackageKind::Static => Ok(()),
            Ok(dir) => serve(host, &dir, None).await,
            Err(e) => Err(e),
        };
        restored.map_err(|source| StartupError::Restore {
            name: row.name.clone(),
            version: row.version.clone(),
            source: Box::new(source),
        })?;
    }
    for entry in host.config.plugins.iter().filter(|p| p.enabled) {
        if installed.iter().any(|row| row.name == entry.name) {
            continue;
        }
        adopt(host, entry)
            .await
            .map_err(|source| StartupError::Restore {
                name: entry.name.clone(),
                version: entry.version.to_string(),
                source: Box::new(source),
            })?;
    }
    Ok(())
}

async fn serve(
    host: &Host,
    dir: &PluginDir,
    journal: Option<&mut install::InstallJournal>,
) -> Result<(), InstallError> {
    let loaded = install::load(host, dir, host.plugin_settings(&dir.manifest.name))?;
    install::migrate_and_record(host, dir, &loaded, journal).await?;
    tracing::info!(plugin = %dir.manifest.name, version = %dir.manifest.version, route = %format!("/p/{}/", dir.manifest.route_prefix), "plugin serving");
    host.registry.put(loaded);
    Ok(())
}

async fn adopt(host: &Host, entry: &PluginEntry) -> Result<(), InstallError> {
    let path = plugin_dir(&host.config, &entry.name, &entry.version.to_string());
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
    install::check_host_api(&dir.manifest)?;
    let mut journal = install::InstallJournal::new(
        &entry.name,
        install::Operation::Install,
        None,
        Some(entry.version.to_string()),
    );
    journal
        .step(
            &host.db,
            install::Step::Started,
            Some("listed in config.json, found in data/plugins"),
        )
        .await?;
    match serve(host, &dir, Some(&mut journal)).await {
        Ok(()) => {
            journal.step(&host.db, install::Step::Done, None).await?;
            Ok(())
        }
        Err(e) => {
            let _ = journal
                .step(&host.db, install::Step::Failed, Some(&e.to_string()))
                .await;
            Err(e)
        }
    }
}
