//! The smallest Plinth plugin: `GET /` answers `Hello from plinth` and
//! `GET /json` says which plugin and version answered. `GET /greeting` is
//! `GET /` behind a permission (plugin.toml), for the permission benchmark.

use plinth_sdk::{Plugin, Request, Response, Router, info};

struct Hello;

impl Plugin for Hello {
    fn router() -> Router {
        Router::new()
            .get("/", index)
            .get("/greeting", index)
            .get("/json", json)
    }
}

/// Benchmarked against native axum: no host calls, one small allocation.
fn index(_req: &Request) -> Response {
    Response::text(200, "Hello from plinth")
}

/// Name and version come from plugin-info (the manifest), never from code,
/// so a fork or a re-packaged version reports what is installed.
fn json(_req: &Request) -> Response {
    Response::json(
        200,
        &serde_json::json!({ "plugin": info::name(), "version": info::version() }),
    )
}

plinth_sdk::export!(Hello);
