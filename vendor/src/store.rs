//! The package store: a directory of package archives, each named by its
//! SHA-256 (`<sha256>.zip`), so a file's name says what it holds, the same
//! bytes are stored once and a stored file is never overwritten with other
//! bytes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why the store could not take or find a file.
#[derive(Debug, thiserror::Error)]
#[error("package store {}: {reason}", path.display())]
pub struct StoreError {
    pub path: PathBuf,
    pub reason: String,
}

/// The package store directory.
#[derive(Debug, Clone)]
pub struct PackageStore {
    dir: PathBuf,
}

impl PackageStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's file name for bytes with this SHA-256.
    pub fn file_name(sha256: &str) -> String {
        format!("{sha256}.zip")
    }

    /// Where a stored file lives.
    pub fn path(&self, file_name: &str) -> PathBuf {
        self.dir.join(file_name)
    }

    /// Stores `bytes` (whose SHA-256 is `sha256`) and returns the file name.
    /// Writes a temporary file and renames it, so a crash never leaves a
    /// half-written archive under its final name.
    pub fn put(&self, sha256: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let error = |path: &Path, e: std::io::Error, what: &str| StoreError {
            path: path.to_owned(),
            reason: format!(
                "cannot {what}: {e}; check that the directory (--store or PLINTH_VENDOR_STORE) is writable"
            ),
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| error(&self.dir, e, "create it"))?;
        let name = Self::file_name(sha256);
        let target = self.path(&name);
        if std::fs::metadata(&target).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(name);
        }
        let temp = self.dir.join(format!(
            ".{name}.{}.{:08x}.tmp",
            std::process::id(),
            rand::random::<u32>()
        ));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create_new(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &target)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            error(&target, e, "write the package archive")
        })?;
        Ok(name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn put_names_files_by_hash_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::new(dir.path().join("packages"));
        let sha = plinth_package::sha256_hex(b"zip bytes");
        let name = store.put(&sha, b"zip bytes").unwrap();
        assert_eq!(name, format!("{sha}.zip"));
        assert_eq!(std::fs::read(store.path(&name)).unwrap(), b"zip bytes");
        assert_eq!(store.put(&sha, b"zip bytes").unwrap(), name);
        let files: Vec<_> = std::fs::read_dir(store.dir()).unwrap().collect();
        assert_eq!(files.len(), 1, "no temporary files are left behind");
    }
}
