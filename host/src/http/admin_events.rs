//! `/api/admin/events/…`: the dead letters of the event bus, deliveries
//! that failed `events.max_attempts` times. An operator lists them
//! (`events.view`), replays one or all, or discards one (`events.manage`).
//! A replayed delivery starts again with a fresh count of attempts.
//!
//! Described in the OpenAPI document at `/api/openapi.json`.

use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::db::outbox::{self, DeliveryRow};

/// Lists dead letters.
pub const VIEW: &str = "events.view";
/// Replays and discards dead letters.
pub const MANAGE: &str = "events.manage";

/// The routes, mounted under `/api/admin` behind the caller check.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events/dead-letters", get(list))
        .route("/events/dead-letters/replay", post(replay_all))
        .route("/events/dead-letters/{id}", delete(discard))
        .route("/events/dead-letters/{id}/replay", post(replay_one))
}

fn internal(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(detail = %error, "admin API: internal error");
    ApiError::internal("the host could not read its database; the details are logged")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// Only this subscriber's.
    subscriber: Option<String>,
    /// Delivery ids after this one (paging).
    after: Option<i64>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<Vec<DeliveryRow>>, ApiError> {
    let limit = super::page_limit(query.limit, 100, 1000)?;
    let host = state.host()?;
    let rows = outbox::deliveries(
        &host.db,
        "dead",
        query.subscriber.as_deref(),
        query.after.unwrap_or(0),
        limit,
    )
    .await
    .map_err(|e| internal(&e))?;
    Ok(Json(rows))
}

pub async fn replay_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = delivery_id(&id)?;
    let host = state.host()?;
    let replayed = outbox::replay_dead(&host.db, Some(id))
        .await
        .map_err(|e| internal(&e))?;
    if replayed == 0 {
        return Err(no_dead_letter(id));
    }
    host.events.wake();
    tracing::info!(delivery = id, "dead letter replayed");
    Ok(Json(json!({ "replayed": replayed })))
}

pub async fn replay_all(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let host = state.host()?;
    let replayed = outbox::replay_dead(&host.db, None)
        .await
        .map_err(|e| internal(&e))?;
    host.events.wake();
    tracing::info!(replayed, "dead letters replayed");
    Ok(Json(json!({ "replayed": replayed })))
}

pub async fn discard(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = delivery_id(&id)?;
    let host = state.host()?;
    if !outbox::discard_dead(&host.db, id)
        .await
        .map_err(|e| internal(&e))?
    {
        return Err(no_dead_letter(id));
    }
    tracing::info!(delivery = id, "dead letter discarded");
    Ok(Json(json!({ "discarded": 1 })))
}

/// The id in the path, refused in the API's own error shape.
fn delivery_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{text:?} is not a dead letter id; ids are the integers GET /api/admin/events/dead-letters lists"
        ))
    })
}

fn no_dead_letter(id: i64) -> ApiError {
    ApiError::not_found(format!(
        "there is no dead letter {id}; GET /api/admin/events/dead-letters lists them"
    ))
}
