//! `GET /api/openapi.json`: the OpenAPI document of every route
//! [`super::app`] serves, kept in `openapi.json` beside this file and
//! compiled in, so the server and its description ship together. The
//! `openapi_document` integration test fails when a route of the router
//! is missing from it, and `cargo xtask openapi-check` runs schemathesis
//! against a real server with it.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub const OPENAPI: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
