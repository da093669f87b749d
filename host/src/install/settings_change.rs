//! Changing an installed plugin's settings while the host runs: the
//! operator's new values are checked with the rule start-up uses
//! ([`plugin_settings::resolve`]), written into config.json's
//! `plugins[].settings` ([`Config::save_plugin_settings`], only the keys
//! changed, so the operator's own edits to the others stay), kept in the
//! host's [`crate::config::plugin_settings::ConfiguredSettings`], and the
//! serving plugin is loaded again so its next call reads them. Requests in
//! flight finish on the instance they started on, as with a hot swap.
//!
//! A value the environment sets (`PLINTH__PLUGINS__<NAME>__<KEY>`) wins
//! over config.json, so changing it here would change nothing: refused
//! with the variable named. A `{"file": …}` value is config.json's alone,
//! so the admin API cannot make the host read an arbitrary file.
//!
//! A secret's value never goes into config.json: with a config file, the
//! host writes it into a file of its own ([`secret_files`],
//! `data/secrets/<plugin>/<key>`) and config.json gets `{"file": …}` naming
//! it, the form start-up already reads. Going back to the default deletes
//! that file. Without a config file (tests) the value stays in memory only.

use std::collections::BTreeMap;
use std::path::Path;

use plinth_package::manifest::PackageKind;
use plinth_package::settings::SettingSpec;

use super::secret_files::{self, SecretFileError, WrittenSecret};
use super::{InstallError, PluginDir, load};
use crate::config::plugin_settings::{
    self, ResolvedSettings, SettingValue, SettingView, SettingsError,
};
use crate::config::{Config, ConfigError};
use crate::db::DbError;
use crate::db::store::{self, StoredManifestError};
use crate::host::{Host, OperationGuard};

/// Why a settings change was refused or failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsChangeError {
    #[error("plugin {0} is not installed; GET /api/admin/plugins lists the installed ones")]
    NotInstalled(String),
    #[error(transparent)]
    Invalid(#[from] SettingsError),
    #[error(
        "plugin {plugin}: setting {key:?} is set by the environment variable {var}, which wins over config.json; change it there"
    )]
    FromEnvironment {
        plugin: String,
        key: String,
        var: String,
    },
    #[error(
        "plugin {plugin}: setting {key:?} cannot name a file through the admin API; give the value itself, or name the file in config.json"
    )]
    FileValue { plugin: String, key: String },
    #[error("plugin {plugin}'s stored manifest cannot be read: {source}")]
    Manifest {
        plugin: String,
        source: StoredManifestError,
    },
    #[error("the settings were not saved: {0}")]
    Save(#[from] ConfigError),
    #[error("the settings were not saved: {0}")]
    SecretFile(#[from] SecretFileError),
    #[error("the settings were saved but the plugin did not load again: {0}")]
    Reload(#[from] InstallError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Applies `changes` (key → new value, `None` to go back to the default)
/// to plugin `plugin`'s configured settings, under the operation lock
/// `guard` so no install or upgrade loads the plugin meanwhile. Answers
/// the settings as the admin API shows them (secrets only as set or not).
pub async fn change_settings(
    host: &Host,
    guard: &OperationGuard,
    plugin: &str,
    changes: BTreeMap<String, Option<SettingValue>>,
) -> Result<Vec<SettingView>, SettingsChangeError> {
    host.operations.check(guard);
    let record = store::installed_plugin(&host.db, plugin)
        .await?
        .ok_or_else(|| SettingsChangeError::NotInstalled(plugin.to_owned()))?;
    let manifest = record
        .manifest()
        .map_err(|source| SettingsChangeError::Manifest {
            plugin: plugin.to_owned(),
            source,
        })?;
    let mut configured = host.settings.of(plugin);
    for (key, value) in &changes {
        let var = plugin_settings::env_var(plugin, key);
        if host.config.plugin_env.contains_key(&var) {
            return Err(SettingsChangeError::FromEnvironment {
                plugin: plugin.to_owned(),
                key: key.clone(),
                var,
            });
        }
        match value {
            Some(SettingValue::File { .. }) => {
                return Err(SettingsChangeError::FileValue {
                    plugin: plugin.to_owned(),
                    key: key.clone(),
                });
            }
            Some(value) => {
                configured.insert(key.clone(), value.clone());
            }
            None => {
                configured.remove(key);
            }
        }
    }
    let resolved = plugin_settings::resolve(
        plugin,
        &manifest.settings,
        &configured,
        &host.config.plugin_env,
    )?;
    if let Some(path) = host.config_path.as_deref() {
        save(
            host,
            path,
            plugin,
            &manifest.settings,
            &changes,
            &resolved,
            &mut configured,
        )?;
    }
    host.settings.set(plugin, configured);
    // Keys only: a value may be a secret.
    tracing::info!(plugin, keys = ?changes.keys().collect::<Vec<_>>(), "plugin settings changed");
    if record.is_enabled() && manifest.kind == PackageKind::Plugin {
        // The values passed the check, so a failure here is the runtime's
        // (the code folder, compiling): the old instance keeps serving.
        let dir = PluginDir::open(&host.data.plugin_version(plugin, &record.version))?;
        host.registry.put(load(host, &dir)?);
    }
    Ok(plugin_settings::view(&manifest.settings, Some(&resolved)))
}

/// Writes `changes` into config.json at `path`, each secret among them
/// (by `specs`) as `{"file": …}` naming the host's own file with its
/// `resolved` value, which `configured` then names too. When config.json
/// cannot be saved the secret files are put back as they were; a secret
/// going back to its default has its file deleted once config.json no
/// longer names it.
fn save(
    host: &Host,
    path: &Path,
    plugin: &str,
    specs: &[SettingSpec],
    changes: &BTreeMap<String, Option<SettingValue>>,
    resolved: &ResolvedSettings,
    configured: &mut BTreeMap<String, SettingValue>,
) -> Result<(), SettingsChangeError> {
    let secret_keys: Vec<&str> = specs
        .iter()
        .filter(|spec| spec.is_secret() && changes.contains_key(&spec.key))
        .map(|spec| spec.key.as_str())
        .collect();
    let removed = |key: &str| changes.get(key).is_some_and(Option::is_none);
    let mut to_save = changes.clone();
    let mut written: Vec<WrittenSecret> = Vec::new();
    for key in secret_keys.iter().copied().filter(|key| !removed(key)) {
        // The checked value, as the plugin reads it. `resolve` gives every
        // key it was given a value for; should it not, the key is left out
        // of config.json rather than written in plain text.
        let Some(text) = resolved.get(key) else {
            to_save.remove(key);
            continue;
        };
        match secret_files::write(&host.data, plugin, key, text) {
            Ok(secret) => {
                let file = SettingValue::File {
                    file: secret.path().to_path_buf(),
                };
                to_save.insert(key.to_owned(), Some(file.clone()));
                configured.insert(key.to_owned(), file);
                written.push(secret);
            }
            Err(e) => {
                written.into_iter().for_each(WrittenSecret::undo);
                return Err(e.into());
            }
        }
    }
    if let Err(e) = Config::save_plugin_settings(path, plugin, &to_save) {
        written.into_iter().for_each(WrittenSecret::undo);
        return Err(e.into());
    }
    for key in secret_keys.iter().copied().filter(|key| removed(key)) {
        if let Err(error) = secret_files::remove(&host.data, plugin, key) {
            // config.json no longer names the file, so the change stands;
            // the file is left for the operator to delete.
            tracing::warn!(%error, "plugin settings: a removed secret's file stays");
        }
    }
    Ok(())
}
