//! [`PluginFiles`]: one plugin's files under `data/files/<plugin>/`, outside
//! the versioned code folder, so they survive upgrades and rollbacks. It is
//! the one place that turns a file name a plugin (or an upload route) gave
//! into a path: the name rule is [`file_name_problem`]; every folder on the
//! way and the file itself are refused when they are symlinks (checked part
//! by part, and the file opened with `O_NOFOLLOW`), so nothing under the
//! folder can point outside it; and the quota is checked on every write,
//! under one lock so two writers cannot both squeeze under it.
//!
//! Writes go to a hidden temporary file (names starting with '.' are the
//! host's) and are renamed into place, so a reader sees the old file or the
//! new one, never half of one. No wasmtime and no axum here: the runtime's
//! `files` interface, the HTTP upload route and the public file server all
//! call this.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

pub use plinth_package::plugin_files::{PUBLIC_FOLDER, file_name_problem};

use crate::paths::DataDir;

/// Quota checks and renames of every plugin take turns, so the usage a
/// writer measured is still true when its file lands.
static COMMIT_LOCK: Mutex<()> = Mutex::new(());
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why a file operation was refused or failed. Display names the plugin's
/// file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file name {name:?} is refused: it {problem}")]
    BadName { name: String, problem: &'static str },
    #[error("file {name:?} does not exist")]
    NotFound { name: String },
    #[error("{name:?} is refused: {part:?} is a symbolic link, and plugin files may not be links")]
    Symlink { name: String, part: String },
    #[error("{name:?} is refused: {part:?} is a file, not a folder")]
    NotAFolder { name: String, part: String },
    #[error(
        "writing {name:?} would put plugin {plugin}'s files over their quota of {quota_mb} MiB ({used} bytes used, {adding} more asked); delete files or raise {setting}"
    )]
    Quota {
        plugin: String,
        name: String,
        quota_mb: u32,
        used: u64,
        adding: u64,
        /// Where the quota was set, for the advice.
        setting: String,
    },
    #[error("{name:?} is {size} bytes, more than the {limit} bytes one read may return")]
    TooLarge { name: String, size: u64, limit: u64 },
    #[error("file {name:?}: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// What `stat` and `list` tell about a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileStat {
    /// Relative to the plugin's folder, `/`-separated.
    pub name: String,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

/// One plugin's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFiles {
    plugin: String,
    root: PathBuf,
    quota_mb: u32,
    /// The setting `quota_mb` came from, named when a write is refused.
    quota_setting: String,
}

impl PluginFiles {
    /// The store with the quota `plugin`'s manifest asks for.
    pub fn new(data: &DataDir, plugin: &str, quota_mb: u32) -> Self {
        Self {
            plugin: plugin.to_owned(),
            root: data.plugin_files(plugin),
            quota_mb,
            quota_setting: format!("capabilities.files_quota_mb in the {plugin} manifest"),
        }
    }

    /// The same store under the quota `setting` gives instead.
    pub fn with_quota(mut self, quota_mb: u32, setting: String) -> Self {
        self.quota_mb = quota_mb;
        self.quota_setting = setting;
        self
    }

    pub fn quota_bytes(&self) -> u64 {
        u64::from(self.quota_mb) * 1024 * 1024
    }

    /// Writes `bytes` as `name`, replacing what was there.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<FileStat, FileError> {
        let target = self.resolve(name, true)?;
        let temp = self.temp_path();
        let io = |source| FileError::Io {
            name: name.to_owned(),
            source,
        };
        {
            let _turn = COMMIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            self.check_quota(name, &target, bytes.len() as u64, 0)?;
            let written = (|| {
                let mut file = create_new(&temp)?;
                file.write_all(bytes)?;
                file.sync_all()?;
                fs::rename(&temp, &target)
            })();
            if let Err(e) = written {
                let _ = fs::remove_file(&temp);
                return Err(io(e));
            }
        }
        self.stat_path(name, &target)
    }

    /// Reads `name`, refusing files over `limit` bytes.
    pub fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>, FileError> {
        let path = self.resolve(name, false)?;
        let mut file = open_no_follow(&path).map_err(|e| self.open_error(name, e))?;
        let size = file
            .metadata()
            .map_err(|source| self.io(name, source))?
            .len();
        if size > limit {
            return Err(FileError::TooLarge {
                name: name.to_owned(),
                size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes)
            .map_err(|source| self.io(name, source))?;
        Ok(bytes)
    }

    /// What `name` is, or `None` when it does not exist.
    pub fn stat(&self, name: &str) -> Result<Option<FileStat>, FileError> {
        let path = match self.resolve(name, false) {
            Ok(path) => path,
            Err(FileError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(stat_of(name, &meta))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.io(name, source)),
        }
    }

    /// Deletes `name`; `false` when it did not exist.
    pub fn delete(&self, name: &str) -> Result<bool, FileError> {
        let path = match self.resolve(name, false) {
            Ok(path) => path,
            Err(FileError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(self.io(name, source)),
        }
    }

    /// Every file under `folder` (`""` for all), sorted by name; the host's
    /// hidden temporary files are left out.
    pub fn list(&self, folder: &str) -> Result<Vec<FileStat>, FileError> {
        let (start, prefix) = if folder.is_empty() {
            (self.root.clone(), String::new())
        } else {
            match self.resolve(folder, false) {
                Ok(path) => (path, format!("{folder}/")),
                Err(FileError::NotFound { .. }) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        };
        let mut found = Vec::new();
        if start.is_dir() {
            walk(&start, &prefix, &mut found).map_err(|source| self.io(folder, source))?;
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// Bytes the plugin's folder holds, temporary files included.
    pub fn usage(&self) -> Result<u64, FileError> {
        let mut total = 0;
        if self.root.is_dir() {
            usage_of(&self.root, &mut total).map_err(|source| self.io("", source))?;
        }
        Ok(total)
    }

    /// The path of a file under `public/` for the file server, `None` when
    /// there is no such file. `name` is relative to `public/`.
    pub fn public_file(&self, name: &str) -> Result<Option<(PathBuf, FileStat)>, FileError> {
        let full = format!("{PUBLIC_FOLDER}/{name}");
        if let Some(problem) = file_name_problem(name) {
            return Err(FileError::BadName {
                name: name.to_owned(),
                problem,
            });
        }
        match self.stat(&full)? {
            Some(stat) => Ok(Some((self.root.join(&full), stat))),
            None => Ok(None),
        }
    }

    /// Starts storing an upload as `name`, at most `limit` bytes (also
    /// bounded by what the quota has left).
    pub fn begin_upload(&self, name: &str, limit: u64) -> Result<PendingUpload, FileError> {
        let target = self.resolve(name, true)?;
        let left = self.quota_bytes().saturating_sub(self.usage()?);
        let temp = self.temp_path();
        let file = create_new(&temp).map_err(|source| self.io(name, source))?;
        Ok(PendingUpload {
            files: self.clone(),
            name: name.to_owned(),
            target,
            temp,
            file: Some(file),
            written: 0,
            limit: limit.min(left),
            quota_bound: left < limit,
        })
    }

    /// Removes every file of `plugin` (uninstall with `--drop-data`).
    pub fn drop_all(data: &DataDir, plugin: &str) -> std::io::Result<()> {
        match fs::remove_dir_all(data.plugin_files(plugin)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The path for `name` after checking the name rule and that no part
    /// on the way is a symlink; with `create`, missing folders are made
    /// (one at a time, each checked).
    fn resolve(&self, name: &str, create: bool) -> Result<PathBuf, FileError> {
        if let Some(problem) = file_name_problem(name) {
            return Err(FileError::BadName {
                name: name.to_owned(),
                problem,
            });
        }
        let parts: Vec<&str> = name.split('/').collect();
        let mut path = self.root.clone();
        if create {
            fs::create_dir_all(&self.root).map_err(|source| self.io(name, source))?;
        }
        self.check_folder(name, &path, "", create)?;
        let (file, folders) = parts.split_last().unwrap_or((&"", &[]));
        for (i, part) in folders.iter().enumerate() {
            path.push(part);
            self.check_folder(name, &path, &parts[..=i].join("/"), create)?;
        }
        path.push(file);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => Err(FileError::Symlink {
                name: name.to_owned(),
                part: name.to_owned(),
            }),
            Ok(_) => Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if create {
                    Ok(path)
                } else {
                    Err(FileError::NotFound {
                        name: name.to_owned(),
                    })
                }
            }
            Err(source) => Err(self.io(name, source)),
        }
    }

    fn check_folder(
        &self,
        name: &str,
        path: &Path,
        part: &str,
        create: bool,
    ) -> Result<(), FileError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => Err(FileError::Symlink {
                name: name.to_owned(),
                part: part.to_owned(),
            }),
            Ok(meta) if !meta.is_dir() => Err(FileError::NotAFolder {
                name: name.to_owned(),
                part: part.to_owned(),
            }),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                match fs::create_dir(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        Err(self.io(name, e))
                    }
                    _ => Ok(()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FileError::NotFound {
                name: name.to_owned(),
            }),
            Err(source) => Err(self.io(name, source)),
        }
    }

    /// Refuses a write of `adding` bytes to `target` when the folder
    /// (`already_counted` of which is the new content, already on disk in
    /// a temporary file) would go over the quota; the old content of
    /// `target` stops counting.
    fn check_quota(
        &self,
        name: &str,
        target: &Path,
        adding: u64,
        already_counted: u64,
    ) -> Result<(), FileError> {
        let replaced = fs::symlink_metadata(target).map_or(0, |m| m.len());
        let used = self
            .usage()?
            .saturating_sub(replaced)
            .saturating_sub(already_counted);
        if used + adding > self.quota_bytes() {
            return Err(FileError::Quota {
                plugin: self.plugin.clone(),
                name: name.to_owned(),
                quota_mb: self.quota_mb,
                used,
                adding,
                setting: self.quota_setting.clone(),
            });
        }
        Ok(())
    }

    fn temp_path(&self) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join(format!(".partial-{}-{n}", std::process::id()))
    }

    fn stat_path(&self, name: &str, path: &Path) -> Result<FileStat, FileError> {
        let meta = fs::symlink_metadata(path).map_err(|source| self.io(name, source))?;
        Ok(stat_of(name, &meta))
    }

    fn open_error(&self, name: &str, e: std::io::Error) -> FileError {
        match e.kind() {
            std::io::ErrorKind::NotFound => FileError::NotFound {
                name: name.to_owned(),
            },
            // O_NOFOLLOW answers ELOOP for a link that appeared after the check.
            _ if e.raw_os_error() == Some(libc::ELOOP) => FileError::Symlink {
                name: name.to_owned(),
                part: name.to_owned(),
            },
            _ => self.io(name, e),
        }
    }

    fn io(&self, name: &str, source: std::io::Error) -> FileError {
        FileError::Io {
            name: name.to_owned(),
            source,
        }
    }
}

/// An upload being streamed into a temporary file; [`PendingUpload::finish`]
/// puts it in place, dropping it without finishing removes it.
#[derive(Debug)]
pub struct PendingUpload {
    files: PluginFiles,
    name: String,
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
    written: u64,
    limit: u64,
    quota_bound: bool,
}

impl PendingUpload {
    /// Appends a chunk; refused once the upload passes its limit.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), FileError> {
        let adding = chunk.len() as u64;
        if self.written + adding > self.limit {
            return Err(if self.quota_bound {
                FileError::Quota {
                    plugin: self.files.plugin.clone(),
                    name: self.name.clone(),
                    quota_mb: self.files.quota_mb,
                    used: self.files.usage().unwrap_or(0).saturating_sub(self.written),
                    adding: self.written + adding,
                    setting: self.files.quota_setting.clone(),
                }
            } else {
                FileError::TooLarge {
                    name: self.name.clone(),
                    size: self.written + adding,
                    limit: self.limit,
                }
            });
        }
        let file = self.file.as_mut().ok_or_else(|| FileError::Io {
            name: self.name.clone(),
            source: std::io::Error::other("the upload was already finished"),
        })?;
        file.write_all(chunk).map_err(|source| FileError::Io {
            name: self.name.clone(),
            source,
        })?;
        self.written += adding;
        Ok(())
    }

    /// Checks the quota once more (other writers may have written since the
    /// upload began) and puts the file in place.
    pub fn finish(mut self) -> Result<FileStat, FileError> {
        let io = |name: &str, source| FileError::Io {
            name: name.to_owned(),
            source,
        };
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(|e| io(&self.name, e))?;
        }
        let _turn = COMMIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        self.files
            .check_quota(&self.name, &self.target, self.written, self.written)?;
        fs::rename(&self.temp, &self.target).map_err(|e| io(&self.name, e))?;
        self.files.stat_path(&self.name, &self.target)
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        // After a finished upload the temporary file is gone already.
        let _ = fs::remove_file(&self.temp);
    }
}

fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn stat_of(name: &str, meta: &fs::Metadata) -> FileStat {
    let modified_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    FileStat {
        name: name.to_owned(),
        size: meta.len(),
        modified_ms,
    }
}

fn walk(dir: &Path, prefix: &str, found: &mut Vec<FileStat>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        let meta = fs::symlink_metadata(entry.path())?;
        let name = format!("{prefix}{file_name}");
        if meta.is_dir() {
            walk(&entry.path(), &format!("{name}/"), found)?;
        } else if meta.is_file() {
            found.push(stat_of(&name, &meta));
        }
    }
    Ok(())
}

fn usage_of(dir: &Path, total: &mut u64) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = fs::symlink_metadata(entry.path())?;
        if meta.is_dir() {
            usage_of(&entry.path(), total)?;
        } else if meta.is_file() {
            *total += meta.len();
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn files(dir: &Path, quota_mb: u32) -> PluginFiles {
        PluginFiles::new(&DataDir::new(dir), "goods", quota_mb)
    }

    #[test]
    fn written_files_read_back_list_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = files(dir.path(), 1);
        store.write("public/a.txt", b"hello").unwrap();
        store.write("notes/b.txt", b"x").unwrap();
        assert_eq!(store.read("public/a.txt", 100).unwrap(), b"hello");
        let names: Vec<String> = store
            .list("")
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["notes/b.txt", "public/a.txt"]);
        assert_eq!(store.stat("public/a.txt").unwrap().unwrap().size, 5);
        assert!(store.delete("public/a.txt").unwrap());
        assert!(!store.delete("public/a.txt").unwrap());
        assert!(store.stat("public/a.txt").unwrap().is_none());
        assert!(matches!(
            store.read("public/a.txt", 100),
            Err(FileError::NotFound { .. })
        ));
    }

    #[test]
    fn names_leaving_the_folder_are_refused_before_touching_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = files(dir.path(), 1);
        for bad in ["../escape", "/etc/passwd", "a\\b", "a\0b", "a/../../b"] {
            let e = store.write(bad, b"x").unwrap_err();
            assert!(matches!(e, FileError::BadName { .. }), "{bad:?}: {e}");
        }
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn symlinks_inside_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let store = files(dir.path(), 1);
        store.write("keep.txt", b"x").unwrap();
        let root = dir.path().join("files").join("goods");
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("file")).unwrap();
        let e = store.read("link/secret", 100).unwrap_err();
        assert!(matches!(e, FileError::Symlink { .. }), "{e}");
        let e = store.read("file", 100).unwrap_err();
        assert!(matches!(e, FileError::Symlink { .. }), "{e}");
        let e = store.write("link/new", b"x").unwrap_err();
        assert!(matches!(e, FileError::Symlink { .. }), "{e}");
        assert!(!outside.path().join("new").exists());
    }

    #[test]
    fn the_quota_counts_every_file_and_a_replaced_one_stops_counting() {
        let dir = tempfile::tempdir().unwrap();
        let store = files(dir.path(), 1);
        let half = vec![0u8; 600 * 1024];
        store.write("a", &half).unwrap();
        store.write("a", &half).unwrap();
        let e = store.write("b", &half).unwrap_err();
        assert!(matches!(e, FileError::Quota { .. }), "{e}");
        assert!(e.to_string().contains("files_quota_mb"), "{e}");
        assert!(store.stat("b").unwrap().is_none());
    }

    #[test]
    fn an_operator_quota_replaces_the_manifest_one_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = files(dir.path(), 64).with_quota(1, "files.plugins.goods.quota_mb".into());
        let e = store.write("a", &vec![0u8; 1100 * 1024]).unwrap_err();
        assert!(matches!(e, FileError::Quota { quota_mb: 1, .. }), "{e}");
        assert!(
            e.to_string().contains("files.plugins.goods.quota_mb"),
            "{e}"
        );
    }

    #[test]
    fn an_upload_past_the_quota_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = files(dir.path(), 1);
        let mut upload = store.begin_upload("public/big", 10 * 1024 * 1024).unwrap();
        let chunk = vec![1u8; 256 * 1024];
        let mut refused = None;
        for _ in 0..8 {
            if let Err(e) = upload.write(&chunk) {
                refused = Some(e);
                break;
            }
        }
        assert!(matches!(refused, Some(FileError::Quota { .. })));
        drop(upload);
        assert_eq!(store.usage().unwrap(), 0);
        let mut upload = store.begin_upload("public/small", 1024).unwrap();
        upload.write(b"image").unwrap();
        assert_eq!(upload.finish().unwrap().size, 5);
        assert_eq!(store.read("public/small", 10).unwrap(), b"image");
    }
}
