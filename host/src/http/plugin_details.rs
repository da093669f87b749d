//! `GET /api/admin/plugins/{name}`: one installed plugin with everything its
//! manifest declares (kind, world, mount path, fork-of, menus, permissions,
//! tasks, …), read from the manifest stored at install time, so a disabled
//! plugin, which the registry no longer holds, is described as fully as a
//! serving one. The admin web's plugins page shows it.

use axum::Json;
use axum::extract::{Path, State};
use plinth_package::Manifest;
use serde::Serialize;

use super::{ApiError, AppState};
use crate::db::store;
use crate::install::PluginRow;

#[derive(Debug, Serialize)]
pub struct PluginDetails {
    #[serde(flatten)]
    row: PluginRow,
    /// Where its routes are served: `/p/<route_prefix>/`.
    mount_path: String,
    manifest: Manifest,
}

pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<PluginDetails>, ApiError> {
    let host = state.host()?;
    let installed = store::installed_plugin(&host.db, &name)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "admin API: reading an installed plugin");
            ApiError::internal("the host could not read its database; the details are logged")
        })?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no plugin named {name:?} is installed; GET /api/admin/plugins lists them"
            ))
        })?;
    let manifest = installed.manifest().map_err(|e| {
        tracing::error!(error = %e, plugin = %name, "stored manifest unreadable");
        ApiError::internal(format!(
            "the stored manifest of {name} no longer reads; reinstall the plugin (details are logged)"
        ))
    })?;
    Ok(Json(PluginDetails {
        row: PluginRow::from(&installed),
        mount_path: format!("/p/{}/", manifest.route_prefix),
        manifest,
    }))
}
