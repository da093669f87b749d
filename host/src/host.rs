//! [`Host`]: what the parts of a running host share: the configuration, the
//! data dir, the operation lock, the database, the runtime, the serving set
//! and the event bus. Start-up assembles it; install, the background jobs,
//! the agent and the HTTP layer are handed it. Whatever only one of them
//! needs (the scheduler's running set, the agent's state) stays with that
//! part.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::caller::GrantsGeneration;
use plinth_package::manifest::Manifest;

use crate::config::Config;
use crate::config::plugin_settings::{self, ConfiguredSettings, ResolvedSettings, SettingsError};
use crate::db::Db;
use crate::events::EventBus;
use crate::live::LiveFeed;
use crate::paths::DataDir;
use crate::plugin_files::PluginFiles;
use crate::registry::PluginRegistry;
use crate::runtime::outbound::OutboundSettings;
use crate::runtime::{HostServices, Runtime};

/// Everything the running host is made of. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Host {
    pub config: Arc<Config>,
    /// The file `config` came from; the installer keeps its plugin list in
    /// line with the installed set. `None` for a config built in memory.
    pub config_path: Option<PathBuf>,
    /// The paths under `config.data_dir`.
    pub data: DataDir,
    /// Plugin operations run one at a time, each holding its guard.
    pub operations: OperationLock,
    pub db: Db,
    pub runtime: Arc<Runtime>,
    pub registry: PluginRegistry,
    pub events: EventBus,
    /// Bumped on every change to grants, roles or declared permissions.
    pub grants: GrantsGeneration,
    /// Journal steps and agent changes, for the admin web to watch.
    pub live: LiveFeed,
    /// Plugins' configured settings: `config.plugins[].settings` as the
    /// admin API last changed them (what [`Host::plugin_settings`] reads).
    pub settings: ConfiguredSettings,
}

impl Host {
    /// Plugin `manifest.name`'s settings from config.json and the
    /// environment, checked against its `[[settings]]`.
    pub fn plugin_settings(&self, manifest: &Manifest) -> Result<ResolvedSettings, SettingsError> {
        let configured = self.settings.of(&manifest.name);
        plugin_settings::resolve(
            &manifest.name,
            &manifest.settings,
            &configured,
            &self.config.plugin_env,
        )
    }

    /// Plugin `manifest.name`'s file store, under the operator's quota
    /// (`files.plugins.<name>.quota_mb`) when config.json sets one, else
    /// the manifest's.
    pub fn plugin_files(&self, manifest: &Manifest) -> PluginFiles {
        let files = PluginFiles::new(
            &self.data,
            &manifest.name,
            manifest.capabilities.files_quota_mb,
        );
        match self.config.files.quota_for(&manifest.name) {
            Some((quota_mb, setting)) => files.with_quota(quota_mb, setting),
            None => files,
        }
    }

    /// What host imports of a plugin instance need.
    pub fn services(&self) -> HostServices {
        HostServices {
            db: self.db.clone(),
            events: self.events.clone(),
            outbound: Arc::new(OutboundSettings {
                config: self.config.outbound.clone(),
                own: vec![self.config.server.bind.ip()],
            }),
            plugins: Arc::new(self.registry.clone()),
        }
    }
}

/// The lock plugin operations take, one at a time. Its guard is a value, so
/// a caller running several operations as one (an agent deployment of many
/// packages, and undoing them) holds it across all of them and nothing else
/// lands in between. Cheap to clone; clones share the lock.
#[derive(Clone, Debug, Default)]
pub struct OperationLock {
    mutex: Arc<Mutex<()>>,
}

/// Held while plugin operations run; dropping it lets the next one in.
#[derive(Debug)]
pub struct OperationGuard {
    guard: OwnedMutexGuard<()>,
}

impl OperationLock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until no other operation runs.
    pub async fn lock(&self) -> OperationGuard {
        OperationGuard {
            guard: self.mutex.clone().lock_owned().await,
        }
    }

    /// Whether `guard` was taken from this lock (and not another host's).
    pub fn is_held_by(&self, guard: &OperationGuard) -> bool {
        Arc::ptr_eq(&self.mutex, OwnedMutexGuard::mutex(&guard.guard))
    }

    /// Operations call this with the guard they were handed; a guard of
    /// another host's lock is a bug in the caller, caught in tests.
    pub(crate) fn check(&self, guard: &OperationGuard) {
        debug_assert!(
            self.is_held_by(guard),
            "a plugin operation was handed another host's operation guard"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guard_keeps_other_operations_out_until_dropped() {
        let lock = OperationLock::new();
        let guard = lock.lock().await;
        assert!(lock.is_held_by(&guard));
        assert!(!OperationLock::new().is_held_by(&guard));
        let waiting = tokio::spawn({
            let lock = lock.clone();
            async move {
                let _second = lock.lock().await;
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "a second operation got in while the guard was held"
        );
        drop(guard);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the lock is free once the guard is dropped")
            .expect("task");
    }
}
