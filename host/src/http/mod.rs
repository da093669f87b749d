//! The HTTP face of the host, built with axum.
//!
//! [`app`] returns the whole [`Router`] so tests can drive it in-process.
//! Routes:
//! - `GET /healthz`: 200 once start-up finished and the database answers,
//!   503 otherwise;
//! - `/p/<plugin>/…`: any method, handled by the plugin mounted there;
//! - `GET /api/plugins`, `GET /api/menus`: what is installed and the menu
//!   tree for the admin web;
//! - `GET /api/hello`: a native route with the same answer as the `hello`
//!   plugin, the ceiling that `cargo xtask bench` compares plugins with;
//! - `/api/admin/…`: plugin operations for operators (a caller resolved by
//!   [`authn`]), see
//!   [`admin`]; `GET /api/openapi.json` describes the API;
//! - everything else: static files from `public/` (the admin web shell).
//!
//! This layer adapts requests to the runtime and back; it holds no plugin
//! logic of its own.

pub mod admin;
mod api;
mod authn;
pub mod error;
mod health;
mod plugin_access;
mod plugin_routes;
pub mod request_id;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use tower_http::services::ServeDir;

use crate::Host;
use crate::agent::AgentState;
use crate::config::Config;

pub use error::ApiError;
pub use request_id::RequestId;

/// Shared state of every handler: the host and the upgrade agent's state.
/// The listener is up before start-up has finished (so `/healthz` can say
/// 503), hence both are filled in later.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<AppInner>,
}

#[derive(Debug)]
struct AppInner {
    config: Arc<Config>,
    started: OnceLock<Started>,
    ready: AtomicBool,
}

#[derive(Debug)]
struct Started {
    host: Host,
    agent: AgentState,
}

impl AppState {
    /// State for a host that is still starting.
    pub fn starting(config: Arc<Config>) -> Self {
        Self {
            inner: Arc::new(AppInner {
                config,
                started: OnceLock::new(),
                ready: AtomicBool::new(false),
            }),
        }
    }

    /// State for a host that has finished starting.
    pub fn ready(host: Host, agent: AgentState) -> Self {
        let state = Self::starting(host.config.clone());
        state.set_ready(host, agent);
        state
    }

    /// Marks start-up finished; from now on plugin routes are served.
    pub fn set_ready(&self, host: Host, agent: AgentState) {
        let _ = self.inner.started.set(Started { host, agent });
        self.inner.ready.store(true, Ordering::Release);
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The host, or a 503 while start-up is still running.
    pub fn host(&self) -> Result<&Host, ApiError> {
        self.started().map(|started| &started.host)
    }

    /// The upgrade agent's state, or a 503 while start-up is still running.
    pub fn agent(&self) -> Result<&AgentState, ApiError> {
        self.started().map(|started| &started.agent)
    }

    fn started(&self) -> Result<&Started, ApiError> {
        let starting = || ApiError::unavailable("the host is still starting; retry shortly");
        if !self.inner.ready.load(Ordering::Acquire) {
            return Err(starting());
        }
        self.inner.started.get().ok_or_else(starting)
    }
}

/// Largest package the admin API accepts (the package reader's own limit).
const PACKAGE_LIMIT: usize = 128 * 1024 * 1024;

/// The host's router.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config().server.body_limit_bytes;
    let admin = Router::new()
        .route("/plugins", get(admin::list).post(admin::install))
        .route("/plugins/{name}", axum::routing::delete(admin::remove))
        .route(
            "/plugins/{name}/upgrade",
            axum::routing::post(admin::upgrade),
        )
        .route(
            "/plugins/{name}/rollback",
            axum::routing::post(admin::rollback),
        )
        .route("/plugins/{name}/enable", axum::routing::post(admin::enable))
        .route(
            "/plugins/{name}/disable",
            axum::routing::post(admin::disable),
        )
        .route("/journal", get(admin::journal))
        .route("/agent", get(admin::agent))
        .route(
            "/agent/reconnect",
            axum::routing::post(admin::agent_reconnect),
        )
        // Packages are larger than ordinary request bodies.
        .layer(DefaultBodyLimit::max(PACKAGE_LIMIT))
        .layer(axum::middleware::from_fn(admin::require_caller));
    let public = ServeDir::new(&state.config().public_dir).append_index_html_on_directories(true);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/p/{*path}", any(plugin_routes::serve))
        .route("/api/plugins", get(api::plugins))
        .route("/api/menus", get(api::menus))
        .route("/api/hello", get(api::hello))
        .route("/api/openapi.json", get(admin::openapi))
        .nest("/api/admin", admin)
        .fallback_service(public)
        // One `layer` call: each call boxes every route once more, which is
        // paid per request. Request ids (with the panic guard) outermost.
        .layer((
            request_id::RequestIdLayer,
            DefaultBodyLimit::max(body_limit),
            axum::middleware::from_fn_with_state(state.clone(), authn::identify),
        ))
        .with_state(state)
}
