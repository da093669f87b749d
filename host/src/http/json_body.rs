//! The JSON request bodies of the API: each is a JSON object, as the
//! OpenAPI document says. axum's `Json<T>` alone also lets serde fill a
//! struct from an array (`[null, null]` sets its fields in order), which no
//! client means; so a handler takes the body as a [`JsonBody`] (an object,
//! or axum's refusal) and [`object`] turns it into its own type, or into a
//! 400 that names the shape it expected.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ApiError;

/// A request body that parsed as a JSON object, or why it did not.
pub type JsonBody = Result<Json<Map<String, Value>>, JsonRejection>;

/// The body as `T`; `shape` describes the object for the error message,
/// e.g. `{"name", "title"?}`.
pub fn object<T: DeserializeOwned>(body: JsonBody, shape: &str) -> Result<T, ApiError> {
    let refused = |detail: String| {
        ApiError::bad_request(format!(
            "send a JSON object {shape} with Content-Type: application/json ({detail})"
        ))
    };
    let Json(fields) = body.map_err(|rejection| refused(rejection.body_text()))?;
    serde_json::from_value(Value::Object(fields)).map_err(|e| refused(e.to_string()))
}
