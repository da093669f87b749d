//! `/api/admin/…`: the operator's API for plugin operations, the same
//! operations as `plinth plugin …` on the command line. Protected by the
//! bearer token `admin.token` from config.json until users and roles exist.
//!
//! Described in the OpenAPI document at `/api/openapi.json`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use std::sync::Arc;

use super::{ApiError, AppState};
use crate::agent::AgentSnapshot;
use crate::caller::Caller;
use crate::db::store;
use crate::install::{self, InstallError, InstallMode, OperationReport, PluginRow};

/// Refuses requests that carry no caller ([`super::authn`] found no valid
/// credential).
pub async fn require_caller(request: Request, next: Next) -> Response {
    if request.extensions().get::<Arc<Caller>>().is_some() {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send the admin token from config.json as `Authorization: Bearer <token>`",
    )
    .into_response()
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<PluginRow>>, ApiError> {
    let host = state.host()?;
    let installed = store::installed_plugins(&host.db)
        .await
        .map_err(|e| internal(&e.to_string()))?;
    Ok(Json(installed.iter().map(PluginRow::from).collect()))
}

#[derive(Debug, Deserialize)]
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
pub struct JournalQuery {
    plugin: Option<String>,
    limit: Option<i64>,
}

pub async fn journal(
    State(state): State<AppState>,
    Query(query): Query<JournalQuery>,
) -> Result<Json<Vec<install::journal::JournalEntry>>, ApiError> {
    let host = state.host()?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
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
