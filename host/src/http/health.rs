//! `GET /healthz`: 200 when start-up has finished and the database answers
//! within a second, 503 (with the reason) otherwise. Load balancers and the
//! operator's scripts poll it.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

pub async fn healthz(State(state): State<AppState>) -> Response {
    let host = match state.host() {
        Ok(host) => host,
        Err(_) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "starting"})),
            )
                .into_response();
        }
    };
    match tokio::time::timeout(Duration::from_secs(1), host.db.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "plugins": host.registry.all().len()})),
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database error");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "database unavailable"})),
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "database not answering"})),
        )
            .into_response(),
    }
}
