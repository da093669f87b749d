//! Customer authentication: `Authorization: Bearer <customer token>` on the
//! websocket upgrade and on every download, checked against the stored
//! token hashes.

use axum::http::{HeaderMap, header};

use super::AppState;
use super::error::ApiError;
use crate::db::customers::Customer;

/// The customer whose token the request carries, or a 401.
pub async fn customer(state: &AppState, headers: &HeaderMap) -> Result<Customer, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "send the customer token as `Authorization: Bearer <token>` (vendor.customer_token in the host's config.json)",
            )
        })?;
    state
        .vendor()
        .customer_by_token(token)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "unknown_token",
                "this customer token is not known to the vendor: check vendor.customer_token in the host's config.json, or ask the vendor for the token issued with `plinth-vendor customer add`",
            )
        })
}
