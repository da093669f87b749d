//! Ordered start-up (shared/DESIGN.md, docs/ARCHITECTURE.md "Start-up"):
//! each step runs only after the one before it succeeded, and a failing step
//! stops start-up with a message that names what was wrong. This module only
//! sequences; each step's work lives in the module that owns it.
//!
//! 1. load `config.json` and environment overrides ([`Config::load`], in
//!    `main.rs`);
//! 2. refuse placeholder secrets in production (part of 1);
//! 3. bind the listener (`main.rs`);
//! 4. open the database ([`Db::connect`]);
//! 5. migrate the host schema ([`migrate::migrate_host`]);
//! 6. bring the plugins into service: settle operations a crash cut short,
//!    restore the installed set, adopt listed plugins found on disk, bring
//!    config.json in line ([`install::recover`], [`install::restore`],
//!    [`install::sync_config`]);
//! 7. start the background jobs ([`Background::start`]) and, when
//!    `vendor.endpoint` is set, the upgrade agent ([`agent::spawn`]);
//!
//! then `main.rs` marks the host ready (8), serves, and shuts down on
//! SIGINT/SIGTERM (9). Seeding the super-admin role and the first
//! administrator ([`accounts::seed`]) runs right after 5.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::accounts::{self, AccountError};
use crate::agent::{self, AgentState};
use crate::background::Background;
use crate::config::Config;
use crate::config::plugin_settings::ConfiguredSettings;
use crate::db::migrate::{self, MigrateError, MigrationReport};
use crate::db::plugin_sql::PluginSqlPolicy;
use crate::db::{Db, DbError, DbOptions};
use crate::events::EventBus;
use crate::host::{Host, OperationLock};
use crate::install::{self, InstallError, RestoreError};
use crate::paths::DataDir;
use crate::registry::PluginRegistry;
use crate::runtime::{Runtime, RuntimeError, RuntimeSettings};

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
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error("seeding the administrator account: {0}")]
    Seed(#[from] AccountError),
}

/// A started host: what it shares, the agent's state and its background
/// jobs.
#[derive(Debug)]
pub struct Started {
    pub host: Host,
    pub agent: AgentState,
    pub background: Background,
}

/// Steps 4 and 5 plus the runtime: a host with its database migrated and
/// nothing loaded yet. The CLI runs one plugin operation on this without
/// serving; [`start`] goes on to restore the plugins.
pub async fn assemble(config: Config, config_path: Option<PathBuf>) -> Result<Host, StartupError> {
    let config = Arc::new(config);
    let data = DataDir::new(&config.data_dir);

    // 4. Database.
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

    // 5. Host schema.
    let report: MigrationReport = migrate::migrate_host(&db, &config.database.schema_dir).await?;
    tracing::info!(applied = ?report.applied, already = report.already_applied, "host schema migrated");

    // 5b. The super-admin role and the first administrator.
    let seeded = accounts::seed::seed(&db, &config).await?;
    if seeded.admin_created {
        tracing::info!(login = %config.admin.login, "seeded the first administrator (admin.login)");
    }

    let runtime = Arc::new(Runtime::new(RuntimeSettings {
        memory_limit_bytes: (config.runtime.memory_limit_mib as usize) * 1024 * 1024,
        call_timeout: Duration::from_millis(config.runtime.call_timeout_ms),
        task_timeout: Duration::from_millis(config.runtime.task_timeout_ms),
        max_warm_instances: config.runtime.max_warm_instances as usize,
        pooling: config.runtime.pooling,
        cache_dir: data.component_cache(),
    })?);
    let events = EventBus::new(db.clone());
    let host = Host {
        config_path,
        data,
        operations: OperationLock::new(),
        db,
        runtime,
        registry: PluginRegistry::new(),
        events,
        grants: Default::default(),
        live: Default::default(),
        settings: ConfiguredSettings::new(
            config
                .plugins
                .iter()
                .map(|p| (p.name.clone(), p.settings.clone()))
                .collect(),
        ),
        config,
    };
    Ok(host)
}

/// Runs start-up steps 4 to 7 for an already loaded and checked `config`.
pub async fn start(config: Config, config_path: Option<PathBuf>) -> Result<Started, StartupError> {
    let host = assemble(config, config_path).await?;

    // 6. Plugins, under the operation lock like every plugin operation.
    {
        let guard = host.operations.lock().await;
        install::recover(&host, &guard)
            .await
            .map_err(StartupError::Recover)?;
        install::restore(&host, &guard).await?;
        install::sync_config(&host)
            .await
            .map_err(StartupError::Recover)?;
    }

    // 7. Background jobs, then the upgrade agent.
    let mut background = Background::start(&host).await;
    let agent = AgentState::new(&host.config.vendor, host.live.clone());
    if host.config.vendor.is_enabled() {
        match agent::spawn(host.clone(), agent.clone()) {
            Ok(tasks) => background.adopt(tasks),
            Err(e) => {
                background.stop();
                return Err(StartupError::Agent(e));
            }
        }
    }
    Ok(Started {
        host,
        agent,
        background,
    })
}
