//! Read-only JSON about what is installed, for the admin web shell.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{ApiError, AppState};

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

pub async fn plugins(State(state): State<AppState>) -> Result<Json<Vec<PluginSummary>>, ApiError> {
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

/// Menus of every serving plugin, ordered by `order` then title.
pub async fn menus(State(state): State<AppState>) -> Result<Json<Vec<MenuEntry>>, ApiError> {
    let host = state.host()?;
    let mut menus: Vec<MenuEntry> = host
        .registry
        .all()
        .iter()
        .flat_map(|p| {
            p.manifest.menus.iter().map(|m| MenuEntry {
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
