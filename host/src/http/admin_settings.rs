//! `/api/admin/plugins/{name}/settings`: a plugin's declared settings with
//! their values (`GET`, `plugins.view`), and changing them (`PUT`,
//! `plugins.configure`) through [`install::change_settings`], which checks
//! them with start-up's rule, writes config.json (a secret into the host's
//! own file, which config.json names) and reloads the plugin.
//! A secret's value is never answered: only whether it is `set`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

use super::json_body::{JsonBody, object};
use super::{ApiError, AppState};
use crate::config::SettingValue;
use crate::config::plugin_settings::{self, SettingView};
use crate::db::store;
use crate::install::{self, SettingsChangeError};

/// A plugin's settings, as both routes answer them.
#[derive(Debug, Serialize)]
pub struct PluginSettings {
    pub plugin: String,
    pub version: String,
    pub settings: Vec<SettingView>,
    /// Why the configured values do not pass the manifest's rules (the
    /// plugin then does not load); absent when they do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<PluginSettings>, ApiError> {
    let host = state.host()?;
    let record = store::installed_plugin(&host.db, &name)
        .await
        .map_err(|e| change_error(SettingsChangeError::Db(e)))?
        .ok_or_else(|| change_error(SettingsChangeError::NotInstalled(name.clone())))?;
    let manifest = record.manifest().map_err(|source| {
        change_error(SettingsChangeError::Manifest {
            plugin: name.clone(),
            source,
        })
    })?;
    let resolved = host.plugin_settings(&manifest);
    Ok(Json(PluginSettings {
        plugin: name,
        version: record.version,
        settings: plugin_settings::view(&manifest.settings, resolved.as_ref().ok()),
        problem: resolved.err().map(|e| e.to_string()),
    }))
}

pub async fn change(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: JsonBody,
) -> Result<Json<PluginSettings>, ApiError> {
    let body: Map<String, Value> = object(
        body,
        "{\"<key>\": <string, integer, true/false or null>, …}",
    )?;
    let mut changes = BTreeMap::new();
    for (key, value) in body {
        let value = match value {
            Value::Null => None,
            Value::String(s) => Some(SettingValue::Text(s)),
            Value::Bool(b) => Some(SettingValue::Bool(b)),
            Value::Number(n) if n.is_i64() => {
                Some(SettingValue::Int(n.as_i64().unwrap_or_default()))
            }
            Value::Object(map) if map.contains_key("file") => Some(SettingValue::File {
                file: map
                    .get("file")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
            }),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_setting",
                    format!(
                        "plugin {name}: setting {key:?} must be a string, an integer, true/false, or null for its default"
                    ),
                ));
            }
        };
        changes.insert(key, value);
    }
    let host = state.host()?;
    let guard = host.operations.lock().await;
    let settings = install::change_settings(host, &guard, &name, changes)
        .await
        .map_err(change_error)?;
    drop(guard);
    let version = host
        .registry
        .by_name(&name)
        .map(|p| p.version())
        .unwrap_or_default();
    Ok(Json(PluginSettings {
        plugin: name,
        version,
        settings,
        problem: None,
    }))
}

fn change_error(error: SettingsChangeError) -> ApiError {
    let message = error.to_string();
    match error {
        SettingsChangeError::NotInstalled(_) => ApiError::not_found(message),
        SettingsChangeError::Invalid(_) | SettingsChangeError::FileValue { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_setting", message)
        }
        SettingsChangeError::FromEnvironment { .. } | SettingsChangeError::Save(_) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", message)
        }
        SettingsChangeError::Manifest { .. } => {
            ApiError::new(StatusCode::CONFLICT, "conflict", message)
        }
        SettingsChangeError::Reload(e) => super::admin::operation_error(e),
        // The host's own disk: the message names the file, never the value.
        SettingsChangeError::SecretFile(e) => {
            tracing::error!(error = %e, "settings API: a secret file was not written");
            ApiError::internal(message)
        }
        SettingsChangeError::Db(e) => {
            tracing::error!(error = %e, "settings API: database error");
            ApiError::internal("the host database did not answer; see the host log")
        }
    }
}
