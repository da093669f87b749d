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
//!
//! then the caller serves and shuts down on SIGINT/SIGTERM. Seeding an admin
//! account joins between 4 and 5 once users and roles exist.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::{Config, PluginEntry};
use crate::db::migrate::{self, MigrateError, MigrationReport};
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
    pub db: Db,
    pub runtime: Arc<Runtime>,
    pub registry: PluginRegistry,
    pub events: EventBus,
    pub scheduler: Scheduler,
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
    /// What host imports of a plugin instance need.
    pub fn services(&self) -> HostServices {
        HostServices {
            db: self.db.clone(),
            events: self.events.clone(),
        }
    }
}

/// Runs start-up steps 3 to 6 for an already loaded and checked `config`.
/// Returns the host and its background tasks.
pub async fn start(config: Config) -> Result<(Host, Background), StartupError> {
    let config = Arc::new(config);

    // 3. Database.
    let db = Db::connect(&DbOptions {
        url: config.database.url.clone(),
        max_connections: config.database.max_connections,
        connect_timeout: Duration::from_secs(config.database.connect_timeout_secs),
    })
    .await?;
    tracing::info!(dialect = %db.dialect(), url = %crate::db::redact_url(&config.database.url), "database open");

    // 4. Host schema.
    let report: MigrationReport = migrate::migrate_host(&db, &config.database.schema_dir).await?;
    tracing::info!(applied = ?report.applied, already = report.already_applied, "host schema migrated");

    // 5. Plugins.
    let runtime = Arc::new(Runtime::new(RuntimeSettings {
        memory_limit_bytes: (config.runtime.memory_limit_mib as usize) * 1024 * 1024,
        call_timeout: Duration::from_millis(config.runtime.call_timeout_ms),
        task_timeout: Duration::from_millis(config.runtime.task_timeout_ms),
        max_warm_instances: config.runtime.max_warm_instances as usize,
        pooling: config.runtime.pooling,
        cache_dir: config.data_dir.join("cache").join("components"),
    })?);
    let (events, event_rx) = EventBus::new();
    let registry = PluginRegistry::new();
    let scheduler = Scheduler::new();
    let host = Host {
        config: config.clone(),
        db,
        runtime,
        registry: registry.clone(),
        events,
        scheduler: scheduler.clone(),
    };
    for entry in config.plugins.iter().filter(|p| p.enabled) {
        restore(&host, entry)
            .await
            .map_err(|source| StartupError::Restore {
                name: entry.name.clone(),
                version: entry.version.to_string(),
                source: Box::new(source),
            })?;
    }

    // 6. Background work.
    let tasks = vec![
        tokio::spawn(events::dispatch(event_rx, registry)),
        tokio::spawn(scheduler.clone().run(host.clone())),
    ];
    Ok((host, Background { tasks }))
}

/// The folder an installed plugin version lives in.
pub fn plugin_dir(config: &Config, name: &str, version: &str) -> std::path::PathBuf {
    config.data_dir.join("plugins").join(name).join(version)
}

async fn restore(host: &Host, entry: &PluginEntry) -> Result<(), InstallError> {
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
    let loaded = install::load(host, &dir, entry.settings.clone())?;
    install::migrate_and_record(host, &dir, &loaded).await?;
    tracing::info!(plugin = %entry.name, version = %entry.version, route = %format!("/p/{}/", dir.manifest.route_prefix), "plugin serving");
    host.registry.put(loaded);
    Ok(())
}
