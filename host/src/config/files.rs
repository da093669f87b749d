//! `files` in `config.json`: the operator's say over plugin files.
//! `plugins.<name>.quota_mb` replaces the quota the plugin's manifest asks
//! for (`capabilities.files_quota_mb`), up or down, so an operator can give
//! one customer's image-heavy catalogue room or keep a plugin small
//! without repackaging it.
//!
//! ```json
//! "files": { "plugins": { "goods": { "quota_mb": 512 } } }
//! ```

use std::collections::BTreeMap;

use plinth_package::plugin_files::MAX_FILES_QUOTA_MB;
use serde::{Deserialize, Serialize};

/// `files`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    pub plugins: BTreeMap<String, PluginFilesConfig>,
}

/// `files.plugins.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginFilesConfig {
    /// MiB the plugin's folder may hold, instead of the manifest's.
    pub quota_mb: u32,
}

impl FilesConfig {
    /// `Err((key, reason))` for the first bad value.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (name, plugin) in &self.plugins {
            if !(1..=MAX_FILES_QUOTA_MB).contains(&plugin.quota_mb) {
                return Err((
                    format!("files.plugins.{name}.quota_mb"),
                    format!(
                        "{} is out of range: give 1..={MAX_FILES_QUOTA_MB} (MiB)",
                        plugin.quota_mb
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The operator's quota for `plugin`, in MiB, and the key that set it.
    pub fn quota_for(&self, plugin: &str) -> Option<(u32, String)> {
        self.plugins.get(plugin).map(|p| {
            (
                p.quota_mb,
                format!("files.plugins.{plugin}.quota_mb in config.json"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_range_quota_is_named_by_key() {
        for bad in [0, MAX_FILES_QUOTA_MB + 1] {
            let mut config = FilesConfig::default();
            config
                .plugins
                .insert("goods".into(), PluginFilesConfig { quota_mb: bad });
            let (key, reason) = config.check().expect_err("out of range");
            assert_eq!(key, "files.plugins.goods.quota_mb");
            assert!(reason.contains("out of range"), "{reason}");
        }
        let mut config = FilesConfig::default();
        config
            .plugins
            .insert("goods".into(), PluginFilesConfig { quota_mb: 2 });
        assert!(config.check().is_ok());
        assert_eq!(config.quota_for("goods").map(|q| q.0), Some(2));
        assert_eq!(config.quota_for("rates"), None);
    }
}
