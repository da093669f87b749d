//! The WIT `files` interface: a thin adapter from the guest's calls to the
//! plugin's [`PluginFiles`] store (name rule, symlink refusal, quota), run on
//! the blocking pool because the store uses `std::fs`.

use std::sync::Arc;

use super::PluginIdentity;
use super::bindings::PluginState;
use super::bindings::plinth::plugin::files::{FileStat as WitFileStat, Host};
use crate::plugin_files::{FileError, FileStat, PluginFiles};

/// Largest file one `read` returns: guest memory is limited, and a larger
/// file is better served to users through `public/`.
const MAX_READ_BYTES: u64 = 16 * 1024 * 1024;

impl From<FileStat> for WitFileStat {
    fn from(stat: FileStat) -> Self {
        Self {
            name: stat.name,
            size: stat.size,
            modified_ms: stat.modified_ms,
        }
    }
}

/// Runs `work` on the plugin's store off the async threads. Takes the
/// identity, not the store state, so the future stays `Send`.
async fn on_files<T: Send + 'static>(
    identity: Arc<PluginIdentity>,
    work: impl FnOnce(&PluginFiles) -> Result<T, FileError> + Send + 'static,
) -> Result<T, String> {
    let files = identity.files.clone();
    match tokio::task::spawn_blocking(move || work(&files)).await {
        Ok(result) => result.map_err(|e| {
            tracing::debug!(plugin = %identity.name, error = %e, "plugin file operation refused");
            e.to_string()
        }),
        Err(e) => Err(format!("the host's file operation did not finish: {e}")),
    }
}

impl Host for PluginState {
    async fn write(&mut self, name: String, data: Vec<u8>) -> Result<WitFileStat, String> {
        on_files(self.identity.clone(), move |files| {
            files.write(&name, &data)
        })
        .await
        .map(WitFileStat::from)
    }

    async fn read(&mut self, name: String) -> Result<Vec<u8>, String> {
        on_files(self.identity.clone(), move |files| {
            files.read(&name, MAX_READ_BYTES)
        })
        .await
    }

    async fn stat(&mut self, name: String) -> Result<Option<WitFileStat>, String> {
        on_files(self.identity.clone(), move |files| files.stat(&name))
            .await
            .map(|stat| stat.map(WitFileStat::from))
    }

    async fn list(&mut self, folder: String) -> Result<Vec<WitFileStat>, String> {
        on_files(self.identity.clone(), move |files| files.list(&folder))
            .await
            .map(|stats| stats.into_iter().map(WitFileStat::from).collect())
    }

    async fn delete(&mut self, name: String) -> Result<bool, String> {
        on_files(self.identity.clone(), move |files| files.delete(&name)).await
    }
}
