//! The files a secret setting saved from the admin API lives in, so it never
//! reaches config.json in plain text: [`write`] puts the value into the
//! host's own file ([`DataDir::secret_file`], `data/secrets/<plugin>/<key>`)
//! and config.json then names it as `{"file": …}`, which start-up reads
//! like any operator's secret file. [`remove`] deletes that file when the
//! key goes back to its default.
//!
//! Only the host's own path is ever written or deleted: a `{"file": …}`
//! the operator wrote in config.json names a file that stays theirs.
//!
//! A file is written atomically (a temporary file in the same folder,
//! synced, renamed over), 0600 in a 0700 folder on unix, with the value and
//! one newline, which the reader trims, so the value reads back exactly.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::paths::DataDir;

/// A secret file could not be written or deleted. Names the file, never
/// the value.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}: setting {key:?} cannot be kept in the host's secret file {}: {source}", path.display())]
pub struct SecretFileError {
    pub plugin: String,
    pub key: String,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// A secret just written, with what the file held before so a change that
/// then fails can put it back.
#[derive(Debug)]
pub struct WrittenSecret {
    path: PathBuf,
    before: Option<String>,
}

impl WrittenSecret {
    /// The file's absolute path, as config.json names it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts back what the file held before [`write`] (or deletes a file it
    /// created), because the change it belonged to was not saved.
    pub fn undo(self) {
        let undone = match &self.before {
            Some(before) => replace(&self.path, before),
            None => remove_file(&self.path),
        };
        if let Err(error) = undone {
            tracing::warn!(path = %self.path.display(), %error, "secret file: could not undo a change that was not saved");
        }
    }
}

/// Writes `value` as secret `key` of plugin `plugin` into the host's own
/// file for it, replacing what it held.
pub fn write(
    data: &DataDir,
    plugin: &str,
    key: &str,
    value: &str,
) -> Result<WrittenSecret, SecretFileError> {
    let path = path_of(data, plugin, key)?;
    let error = |source| SecretFileError {
        plugin: plugin.to_owned(),
        key: key.to_owned(),
        path: path.clone(),
        source,
    };
    let before = match fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(error(e)),
    };
    replace(&path, &format!("{value}\n")).map_err(error)?;
    Ok(WrittenSecret { path, before })
}

/// Deletes the host's own file for secret `key` of plugin `plugin`, if
/// there is one.
pub fn remove(data: &DataDir, plugin: &str, key: &str) -> Result<(), SecretFileError> {
    let path = path_of(data, plugin, key)?;
    remove_file(&path).map_err(|source| SecretFileError {
        plugin: plugin.to_owned(),
        key: key.to_owned(),
        path,
        source,
    })
}

/// The absolute path of the host's file for `key` (config.json must not
/// depend on the folder the host was started in).
fn path_of(data: &DataDir, plugin: &str, key: &str) -> Result<PathBuf, SecretFileError> {
    let error = |path: PathBuf, source| SecretFileError {
        plugin: plugin.to_owned(),
        key: key.to_owned(),
        path,
        source,
    };
    let path = data.secret_file(plugin, key).ok_or_else(|| {
        error(
            data.root().join("secrets"),
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the plugin name or key is not a plain file name",
            ),
        )
    })?;
    std::path::absolute(&path).map_err(|e| error(path, e))
}

fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Replaces the file at `path` with `contents`: a temporary file beside it,
/// synced, renamed over, and the folder synced so the rename lasts.
fn replace(path: &Path, contents: &str) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no folder"))?;
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> io::Result<()> {
        let mut file = private_file_options().open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Not every platform can open a folder to sync it.
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates `dir` (the plugin's folder under `secrets/`) and its parents;
/// on unix the plugin's folder and `secrets/` itself are 0700 even when
/// they were there already.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        for folder in [Some(dir), dir.parent()].into_iter().flatten() {
            fs::set_permissions(folder, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

fn private_file_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_written_private_read_back_exactly_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let written = write(&data, "goods", "api_key", "first").unwrap();
        assert_eq!(
            written.path(),
            dir.path().join("secrets/goods/api_key").as_path()
        );
        assert_eq!(fs::read_to_string(written.path()).unwrap(), "first\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(written.path()), 0o600);
            assert_eq!(mode(&dir.path().join("secrets/goods")), 0o700);
            assert_eq!(mode(&dir.path().join("secrets")), 0o700);
        }

        let again = write(&data, "goods", "api_key", "second").unwrap();
        assert_eq!(fs::read_to_string(again.path()).unwrap(), "second\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("secrets/goods"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["api_key"], "no temporary file stays");

        remove(&data, "goods", "api_key").unwrap();
        assert!(!again.path().exists());
        remove(&data, "goods", "api_key").unwrap();
    }

    #[test]
    fn undo_puts_back_the_old_value_or_deletes_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let first = write(&data, "goods", "api_key", "first").unwrap();
        let path = first.path().to_path_buf();
        write(&data, "goods", "api_key", "second").unwrap().undo();
        assert_eq!(fs::read_to_string(&path).unwrap(), "first\n");
        first.undo();
        assert!(!path.exists());
    }

    #[test]
    fn a_name_that_is_not_plain_is_refused_without_touching_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        let outside = dir.path().join("outside");
        fs::write(&outside, "keep").unwrap();
        let e = write(&data, "..", "outside", "x").unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::InvalidInput);
        assert!(remove(&data, "goods", "../../outside").is_err());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
    }
}
