//! The plugin's own files, kept by the host under `data/files/<plugin>/`,
//! outside the versioned code folder: they survive upgrades and rollbacks.
//! Files under `public/` are served by the host at `/files/<plugin>/…`
//! (with ranges and caching headers); the rest are private.
//!
//! Names are relative and `/`-separated (`public/items/7/front.png`); the
//! host refuses absolute names, `..`, hidden parts, backslashes and links,
//! and checks every write against the manifest's
//! `capabilities.files_quota_mb`. Errors are 500 [`Error`]s carrying the
//! host's message (which names the file), so handlers can use `?`.

use crate::__bindings::plinth::plugin::files as wit;
use crate::Error;

/// What the host knows about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// Relative to the plugin's folder.
    pub name: String,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

impl From<wit::FileStat> for FileStat {
    fn from(stat: wit::FileStat) -> Self {
        Self {
            name: stat.name,
            size: stat.size,
            modified_ms: stat.modified_ms,
        }
    }
}

/// Writes `data` as `name`, replacing the file whole.
pub fn write(name: &str, data: impl AsRef<[u8]>) -> Result<FileStat, Error> {
    crate::guest_only("files::write");
    wit::write(name, data.as_ref())
        .map(FileStat::from)
        .map_err(Error::internal)
}

/// Reads all of `name` (at most 16 MiB).
pub fn read(name: &str) -> Result<Vec<u8>, Error> {
    crate::guest_only("files::read");
    wit::read(name).map_err(Error::internal)
}

/// What `name` is, or `None` when there is no such file.
pub fn stat(name: &str) -> Result<Option<FileStat>, Error> {
    crate::guest_only("files::stat");
    wit::stat(name)
        .map(|stat| stat.map(FileStat::from))
        .map_err(Error::internal)
}

/// Every file under `folder` (`""` for all), sorted by name.
pub fn list(folder: &str) -> Result<Vec<FileStat>, Error> {
    crate::guest_only("files::list");
    wit::list(folder)
        .map(|stats| stats.into_iter().map(FileStat::from).collect())
        .map_err(Error::internal)
}

/// Deletes `name`; returns whether it existed.
pub fn delete(name: &str) -> Result<bool, Error> {
    crate::guest_only("files::delete");
    wit::delete(name).map_err(Error::internal)
}
