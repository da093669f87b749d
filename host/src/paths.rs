//! [`DataDir`]: every path under the host's data folder (`data_dir` in
//! config.json), named once. Other modules ask it for a path instead of
//! joining folder names themselves, so the layout below is the whole truth:
//!
//! ```text
//! data/
//!   plugins/<name>/<version>/   an installed plugin version (plugin.toml, plugin.wasm, sql/, public/)
//!   staging/<op_id>/            a package being unpacked by one operation
//!   cache/components/           compiled components, keyed by their wasm's hash
//!   dropin/                     packages dropped here are installed
//!   dropin/installed/           ... and moved here when that worked
//!   dropin/failed/              ... or here when it was refused
//!   download/                   the upgrade agent's resumable downloads
//!   files/<name>/               plugin files, kept across versions (public/ served at /files/<name>/)
//!   secrets/<name>/<key>        a secret setting saved from the admin API (0600, folders 0700)
//!   host.json                   left by a serving host for `plinth plugin …`
//! ```

use std::path::{Component, Path, PathBuf};

/// The data folder of one host. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where installed plugins live, one folder per plugin.
    pub fn plugins(&self) -> PathBuf {
        self.root.join("plugins")
    }

    /// Every version of plugin `name` kept on disk.
    pub fn plugin(&self, name: &str) -> PathBuf {
        self.plugins().join(name)
    }

    /// The folder one installed plugin version lives in.
    pub fn plugin_version(&self, name: &str, version: &str) -> PathBuf {
        self.plugin(name).join(version)
    }

    /// Where operations unpack packages before placing them.
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// The staging folder of operation `op_id`.
    pub fn staging_for(&self, op_id: &str) -> PathBuf {
        self.staging().join(op_id)
    }

    /// The runtime's cache of compiled components.
    pub fn component_cache(&self) -> PathBuf {
        self.root.join("cache").join("components")
    }

    /// The drop-in folder watched for packages.
    pub fn dropin(&self) -> PathBuf {
        self.root.join("dropin")
    }

    /// Where a dropped package goes after its install worked.
    pub fn dropin_installed(&self) -> PathBuf {
        self.dropin().join("installed")
    }

    /// Where a dropped package goes after it was refused.
    pub fn dropin_failed(&self) -> PathBuf {
        self.dropin().join("failed")
    }

    /// The upgrade agent's downloads.
    pub fn downloads(&self) -> PathBuf {
        self.root.join("download")
    }

    /// Plugin `name`'s files: outside its versioned folders, so they
    /// survive upgrades, rollbacks and an uninstall without `--drop-data`.
    pub fn plugin_files(&self, name: &str) -> PathBuf {
        self.root.join("files").join(name)
    }

    /// The file holding secret setting `key` of plugin `plugin` when it
    /// was saved from the admin API (config.json then names this file).
    /// `None` unless both are plain names, so neither can climb out of
    /// `secrets/` (`..`, `/`, an empty name).
    pub fn secret_file(&self, plugin: &str, key: &str) -> Option<PathBuf> {
        let folder = self.plugin_secrets(plugin)?;
        plain_name(key).then(|| folder.join(key))
    }

    /// The folder of plugin `plugin`'s secrets saved from the admin API;
    /// `None` unless `plugin` is a plain name.
    pub fn plugin_secrets(&self, plugin: &str) -> Option<PathBuf> {
        plain_name(plugin).then(|| self.root.join("secrets").join(plugin))
    }

    /// The file a serving host leaves so `plinth plugin …` can find it.
    pub fn running_host_file(&self) -> PathBuf {
        self.root.join("host.json")
    }
}

/// Whether `name` is one plain path component (no `..`, `/`, or empty).
fn plain_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(components.next(), Some(Component::Normal(c)) if c == name)
        && components.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sit_where_the_layout_says() {
        let data = DataDir::new("/srv/data");
        assert_eq!(
            data.plugin_version("goods", "1.2.0"),
            Path::new("/srv/data/plugins/goods/1.2.0")
        );
        assert_eq!(data.staging_for("op1"), Path::new("/srv/data/staging/op1"));
        assert_eq!(
            data.component_cache(),
            Path::new("/srv/data/cache/components")
        );
        assert_eq!(data.dropin_failed(), Path::new("/srv/data/dropin/failed"));
        assert_eq!(data.downloads(), Path::new("/srv/data/download"));
        assert_eq!(
            data.plugin_files("goods"),
            Path::new("/srv/data/files/goods")
        );
        assert_eq!(data.running_host_file(), Path::new("/srv/data/host.json"));
        assert_eq!(
            data.secret_file("goods", "api_key"),
            Some(PathBuf::from("/srv/data/secrets/goods/api_key"))
        );
    }

    #[test]
    fn a_secret_file_name_cannot_leave_its_folder() {
        let data = DataDir::new("/srv/data");
        for (plugin, key) in [
            ("..", "api_key"),
            ("goods", ".."),
            ("goods", "."),
            ("goods", ""),
            ("", "api_key"),
            ("goods", "../../etc/passwd"),
            ("goods", "/etc/passwd"),
            ("goods/x", "api_key"),
            ("goods", "a/"),
        ] {
            assert_eq!(data.secret_file(plugin, key), None, "{plugin:?} {key:?}");
        }
    }
}
