//! `/api/admin/…`: the operator's API for plugin operations, the same
//! operations as `plinth plugin …` on the command line. Every route needs
//! a named host permission ([`permission_for`], enforced by [`gate`]); users,
//! roles, grants and service tokens are managed in `accounts_admin.rs`.
//!
//! Described in the OpenAPI document at `/api/openapi.json`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use std::sync::Arc;

use super::authn::ClientIp;
use super::{ApiError, AppState};
use crate::accounts::audit;
use crate::agent::AgentSnapshot;
use crate::caller::{Caller, CallerKind};
use crate::config::plugin_settings;
use crate::db::store;
use crate::install::{self, InstallError, InstallMode, OperationReport, PluginRow};

/// The host permission each admin route needs, by method and route
/// pattern (below `/api/admin`). A route missing here is refused to
/// everyone, so a new route cannot open by accident.
pub fn permission_for(method: &Method, route: &str) -> Option<&'static str> {
    let read = matches!(*method, Method::GET | Method::HEAD);
    Some(match route {
        "/plugins" | "/plugins/{name}" | "/journal" | "/operations/stream" if read => {
            "plugins.view"
        }
        "/plugins" | "/plugins/{name}/upgrade" => "plugins.install",
        "/plugins/{name}/rollback" => "plugins.rollback",
        "/plugins/{name}" => "plugins.remove",
        "/plugins/{name}/enable" | "/plugins/{name}/disable" => "plugins.enable",
        "/plugins/{name}/settings" if read => "plugins.view",
        "/plugins/{name}/settings" => "plugins.configure",
        "/agent" => "agent.view",
        "/agent/reconnect" => "agent.manage",
        "/audit" => "audit.view",
        "/roles" | "/permissions" if read => "roles.manage",
        r if r.starts_with("/users") => "users.manage",
        r if r.starts_with("/roles") => "roles.manage",
        r if r.starts_with("/tokens") => "tokens.manage",
        r if r.starts_with("/tasks/") || r == "/tasks" => match read {
            true => super::admin_tasks::VIEW,
            false => super::admin_tasks::MANAGE,
        },
        r if r.starts_with("/events/") => match read {
            true => super::admin_events::VIEW,
            false => super::admin_events::MANAGE,
        },
        _ => return None,
    })
}

/// Lets a request through only with a caller holding the route's
/// permission (401 without a caller, 403 without the code), and records
/// in the audit log every change made through the admin API and every use
/// of a service token.
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Arc<Caller>>().cloned() else {
        return super::auth::unauthorized().into_response();
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().trim_start_matches("/api/admin").to_owned())
        .unwrap_or_default();
    let method = request.method().clone();
    let Some(code) = permission_for(&method, &route) else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("no permission covers {method} /api/admin{route}; it is refused"),
        )
        .into_response();
    };
    if !caller.has(code) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs the permission {code}, which {} does not hold; ask an administrator",
                caller.login
            ),
        )
        .into_response();
    }
    let ip = request
        .extensions()
        .get::<ClientIp>()
        .map(|ip| ip.0.clone())
        .unwrap_or_default();
    // Inside the nested router the URI has lost its `/api/admin` prefix;
    // the audit log records the path the client asked for.
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri().path(), |uri| uri.path())
        .to_owned();
    let response = next.run(request).await;
    let writes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if (writes || caller.kind == CallerKind::ServiceToken)
        && let Ok(host) = state.host()
    {
        let status = response.status();
        let outcome = if status.is_success() {
            "ok"
        } else if status.is_client_error() {
            "refused"
        } else {
            "failed"
        };
        let detail = format!("{method} {path} -> {}", status.as_u16());
        audit::record(
            &host.db,
            Some(&caller),
            None,
            audit::Event {
                action: code,
                target: &path,
                outcome,
                ip: &ip,
                detail: &detail,
            },
        )
        .await;
    }
    response
}

/// A method an admin route does not serve: 405 whoever asks, since no
/// permission could make it succeed; axum adds the `Allow` header.
pub async fn method_not_allowed(method: Method, uri: axum::extract::OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}; Allow lists what it takes",
            uri.path()
        ),
    )
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<PluginRow>>, ApiError> {
    let host = state.host()?;
    let installed = store::installed_plugins(&host.db)
        .await
        .map_err(|e| internal(&e.to_string()))?;
    let rows = installed
        .iter()
        .map(|plugin| {
            let mut row = PluginRow::from(plugin);
            if let Ok(manifest) = plugin.manifest() {
                let resolved = host.plugin_settings(&manifest);
                row.settings = plugin_settings::view(&manifest.settings, resolved.as_ref().ok());
                row.settings_problem = resolved.err().map(|e| e.to_string());
            }
            row
        })
        .collect();
    Ok(Json(rows))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallQuery {
    /// `install` (default), `upgrade` or `auto`.
    mode: Option<String>,
}

pub async fn install(
    State(state): State<AppState>,
    Query(query): Query<InstallQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<OperationReport>), ApiError> {
    let host = state.host()?;
    let mode = match query.mode.as_deref() {
        None | Some("install") => InstallMode::Install,
        Some("upgrade") => InstallMode::Upgrade,
        Some("auto") => InstallMode::Auto,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "mode must be install, upgrade or auto (got {other:?})"
            )));
        }
    };
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "send the package (.zip) as the request body (Content-Type: application/zip)",
        ));
    }
    let report = install::install_package(host, &host.operations.lock().await, &body, mode)
        .await
        .map_err(operation_error)?;
    Ok((StatusCode::CREATED, Json(report)))
}

pub async fn upgrade(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<OperationReport>, ApiError> {
    let host = state.host()?;
    let manifest = plinth_package::archive::read_manifest(&body, &Default::default())
        .map_err(|e| operation_error(InstallError::Package(e)))?;
    if manifest.name != name {
        return Err(ApiError::bad_request(format!(
            "the package is {} {}, not {name}",
            manifest.name, manifest.version
        )));
    }
    let report = install::install_package(
        host,
        &host.operations.lock().await,
        &body,
        InstallMode::Upgrade,
    )
    .await
    .map_err(operation_error)?;
    Ok(Json(report))
}

pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<OperationReport>, ApiError> {
    let host = state.host()?;
    Ok(Json(
        install::rollback(host, &host.operations.lock().await, &name)
            .await
            .map_err(operation_error)?,
    ))
}

pub async fn enable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<OperationReport>, ApiError> {
    let host = state.host()?;
    Ok(Json(
        install::set_enabled(host, &host.operations.lock().await, &name, true)
            .await
            .map_err(operation_error)?,
    ))
}

pub async fn disable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<OperationReport>, ApiError> {
    let host = state.host()?;
    Ok(Json(
        install::set_enabled(host, &host.operations.lock().await, &name, false)
            .await
            .map_err(operation_error)?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    #[serde(default)]
    drop_data: bool,
}

pub async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<RemoveQuery>,
) -> Result<Json<OperationReport>, ApiError> {
    let host = state.host()?;
    Ok(Json(
        install::remove(host, &host.operations.lock().await, &name, query.drop_data)
            .await
            .map_err(operation_error)?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalQuery {
    plugin: Option<String>,
    limit: Option<i64>,
}

pub async fn journal(
    State(state): State<AppState>,
    Query(query): Query<JournalQuery>,
) -> Result<Json<Vec<install::journal::JournalEntry>>, ApiError> {
    let host = state.host()?;
    let limit = super::page_limit(query.limit, 100, 1000)?;
    let rows = install::journal::recent(&host.db, query.plugin.as_deref(), limit)
        .await
        .map_err(|e| internal(&e.to_string()))?;
    Ok(Json(rows))
}

/// The upgrade agent: connected or not, the last offer and each package's
/// progress.
pub async fn agent(State(state): State<AppState>) -> Result<Json<AgentSnapshot>, ApiError> {
    Ok(Json(state.agent()?.snapshot()))
}

/// Ends the agent's back-off wait, or restarts a stopped agent.
pub async fn agent_reconnect(
    State(state): State<AppState>,
) -> Result<Json<AgentSnapshot>, ApiError> {
    let (host, agent) = (state.host()?, state.agent()?);
    if !host.config.vendor.is_enabled() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "agent_disabled",
            "the upgrade agent is off: set vendor.endpoint in config.json and restart",
        ));
    }
    agent.reconnect_now();
    Ok(Json(agent.snapshot()))
}

fn internal(detail: &str) -> ApiError {
    tracing::error!(detail, "admin API: internal error");
    ApiError::internal("the host could not read its database; the details are logged")
}

/// Maps an operation's refusal to an answer that says what to do. The
/// messages are the installer's own: they name the plugin, the version and
/// the reason, and hold nothing internal.
pub fn operation_error(error: InstallError) -> ApiError {
    let message = error.to_string();
    let (status, code) = match &error {
        InstallError::Package(_)
        | InstallError::Settings(_)
        | InstallError::Manifest { .. }
        | InstallError::HostApi { .. }
        | InstallError::HostApiMismatch { .. } => (StatusCode::BAD_REQUEST, "bad_package"),
        InstallError::NotInstalled { .. } => (StatusCode::NOT_FOUND, "not_installed"),
        InstallError::AlreadyInstalled { .. }
        | InstallError::SameVersion { .. }
        | InstallError::Downgrade { .. }
        | InstallError::Dependency { .. }
        | InstallError::RouteTaken { .. }
        | InstallError::PrefixOverlap { .. }
        | InstallError::NoPrevious { .. }
        | InstallError::AlreadyInState { .. }
        | InstallError::Dependents { .. }
        | InstallError::StoredManifest { .. } => (StatusCode::CONFLICT, "conflict"),
        InstallError::MigrationRefused { .. }
        | InstallError::MigrationFailed { .. }
        | InstallError::Migrate { .. }
        | InstallError::HookFailed { .. }
        | InstallError::HookCrashed { .. }
        | InstallError::Runtime(_)
        | InstallError::Mismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "install_failed"),
        InstallError::Io { .. } | InstallError::Db(_) | InstallError::Corrupt(_) => {
            tracing::error!(%message, "plugin operation failed inside the host");
            return ApiError::internal(
                "the host failed to carry out the operation; nothing changed, and the details are logged",
            );
        }
    };
    ApiError::new(status, code, message)
}

/// The OpenAPI description of the host's HTTP API.
pub async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

pub const OPENAPI: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use super::*;

    /// Every admin operation in the OpenAPI document names the permission
    /// the gate asks for, and declares the 401 and 403 the gate answers.
    #[test]
    fn the_openapi_document_names_each_admin_permission() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let Some(route) = path.strip_prefix("/api/admin") else {
                continue;
            };
            for (method, op) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                let code = permission_for(&m, route)
                    .unwrap_or_else(|| panic!("{method} {path} has no permission"));
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(
                    summary.contains(&format!("(needs {code})")),
                    "{method} {path}: {summary:?} should say it needs {code}"
                );
                for status in ["401", "403"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} does not declare {status}"
                    );
                }
                seen += 1;
            }
        }
        assert!(seen > 20, "only {seen} admin operations described");
    }

    /// The document's list of host permission codes (what a service token
    /// may hold) is the host's own list.
    #[test]
    fn the_openapi_document_lists_the_host_permissions() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let listed: Vec<&str> = doc["components"]["schemas"]["HostPermission"]["enum"]
            .as_array()
            .expect("HostPermission enum")
            .iter()
            .filter_map(|code| code.as_str())
            .collect();
        let codes: Vec<&str> = crate::accounts::HOST_PERMISSIONS
            .iter()
            .map(|(code, _)| *code)
            .collect();
        assert_eq!(listed, codes, "HostPermission in openapi.json");
    }
}
