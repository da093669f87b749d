//! Read-only JSON about what is installed, for the admin web shell: for
//! signed-in callers only, and only what their permissions open.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;

use super::{ApiError, AppState, auth};
use crate::caller::Caller;

/// The native twin of the `hello` plugin's `GET /`: same body, no wasm.
pub async fn hello() -> &'static str {
    "Hello from plinth"
}

#[derive(Serialize)]
pub struct PluginSummary {
    name: String,
    version: String,
    description: String,
    world: String,
    mount_path: String,
    forked_from: Option<String>,
    tasks: Vec<String>,
}

/// The plugins serving now, for a caller who may see the admin's plugin
/// list (`plugins.view`): names, versions and mount paths are none of an
/// anonymous caller's business.
pub async fn plugins(
    State(state): State<AppState>,
    caller: Option<Extension<Arc<Caller>>>,
) -> Result<Json<Vec<PluginSummary>>, ApiError> {
    let caller = auth::require(caller)?;
    if !caller.has("plugins.view") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs the permission plugins.view, which {} does not hold; ask an administrator",
                caller.login
            ),
        ));
    }
    let host = state.host()?;
    let list = host
        .registry
        .all()
        .iter()
        .map(|p| PluginSummary {
            name: p.manifest.name.clone(),
            version: p.manifest.version.to_string(),
            description: p.manifest.description.clone(),
            world: format!("{:?}", p.manifest.world).to_lowercase(),
            mount_path: format!("/p/{}/", p.manifest.route_prefix),
            forked_from: p.manifest.forked_from.clone(),
            tasks: p.manifest.tasks.iter().map(|t| t.name.clone()).collect(),
        })
        .collect();
    Ok(Json(list))
}

#[derive(Serialize)]
pub struct MenuEntry {
    plugin: String,
    id: String,
    title: String,
    path: String,
    parent: Option<String>,
    order: i64,
    permission: Option<String>,
}

/// The menus of every serving plugin that the signed-in caller's
/// permissions open (a menu without a permission opens to anyone signed
/// in), ordered by `order` then title. The shell hides the same entries;
/// the host decides, so a hidden entry is not even named.
pub async fn menus(
    State(state): State<AppState>,
    caller: Option<Extension<Arc<Caller>>>,
) -> Result<Json<Vec<MenuEntry>>, ApiError> {
    let caller = auth::require(caller)?;
    let host = state.host()?;
    let mut menus: Vec<MenuEntry> = host
        .registry
        .all()
        .iter()
        .flat_map(|p| {
            let caller = caller.clone();
            p.manifest
                .menus
                .iter()
                .filter(move |m| m.permission.as_deref().is_none_or(|code| caller.has(code)))
                .map(|m| MenuEntry {
                    plugin: p.manifest.name.clone(),
                    id: m.id.clone(),
                    title: m.title.clone(),
                    path: m.path.clone(),
                    parent: m.parent.clone(),
                    order: m.order,
                    permission: m.permission.clone(),
                })
        })
        .collect();
    menus.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.title.cmp(&b.title)));
    Ok(Json(menus))
}
