//! The HTTP face of the host, built with axum.
//!
//! [`app`] returns the whole [`Router`] so tests can drive it in-process.
//! Routes:
//! - `GET /healthz`: 200 once start-up finished and the database answers,
//!   503 otherwise;
//! - `/p/<plugin>/…`: any method, handled by the plugin mounted there;
//!   a route in its `[[uploads]]` has its body stored as a file first;
//! - `GET /files/<plugin>/…`: the plugin's public files ([`plugin_files`]);
//! - `GET /api/plugins`, `GET /api/menus`: what is installed and the menu
//!   tree for the admin web, for signed-in callers, cut to their codes;
//! - `GET /api/hello`: a native route with the same answer as the `hello`
//!   plugin, the ceiling that `cargo xtask bench` compares plugins with;
//! - `/api/admin/…`: plugin operations for operators (a caller resolved by
//!   [`authn`]), see
//!   [`admin`]; `GET /api/admin/operations/stream` streams journal steps
//!   and agent changes as server-sent events ([`live`]);
//!   `GET /api/openapi.json` describes the API;
//! - everything else: static files from `public/` (the admin web shell).
//!
//! This layer adapts requests to the runtime and back; it holds no plugin
//! logic of its own.

mod accounts_admin;
pub mod admin;
mod admin_events;
mod admin_settings;
pub mod admin_tasks;
mod api;
mod auth;
pub mod authn;
pub mod error;
mod health;
mod json_body;
mod live;
mod plugin_access;
mod plugin_details;
mod plugin_files;
mod plugin_routes;
mod rate_limit;
pub mod request_id;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use tower_http::services::ServeDir;

use crate::Host;
use crate::accounts::callers::CallerCache;
use crate::agent::AgentState;
use crate::background::Scheduler;
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
    /// The task scheduler, for run-now; set once the background jobs run.
    scheduler: OnceLock<Scheduler>,
    callers: CallerCache,
    sign_in_limit: SignInLimiter,
    route_limits: rate_limit::RouteLimiters,
}

/// Sign-in attempts per client address (`admin.sign_in.per_ip_per_minute`).
type SignInLimiter = governor::DefaultKeyedRateLimiter<String>;

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
                started: OnceLock::new(),
                ready: AtomicBool::new(false),
                scheduler: OnceLock::new(),
                callers: CallerCache::default(),
                sign_in_limit: governor::RateLimiter::keyed(governor::Quota::per_minute(
                    std::num::NonZeroU32::new(config.admin.sign_in.per_ip_per_minute)
                        .unwrap_or(std::num::NonZeroU32::MIN),
                )),
                config,
                route_limits: Default::default(),
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

    /// Hands the running scheduler to the task admin API.
    pub fn set_scheduler(&self, scheduler: Scheduler) {
        let _ = self.inner.scheduler.set(scheduler);
    }

    /// The scheduler, or a 503 until the background jobs run.
    pub fn scheduler(&self) -> Result<&Scheduler, ApiError> {
        self.inner.scheduler.get().ok_or_else(|| {
            ApiError::unavailable("the task scheduler is not running yet; retry shortly")
        })
    }

    /// The manifests' per-route rate limiters.
    fn route_limits(&self) -> &rate_limit::RouteLimiters {
        &self.inner.route_limits
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Resolved sessions and service tokens.
    pub fn callers(&self) -> &CallerCache {
        &self.inner.callers
    }

    /// Whether client address `ip` may try another sign-in now.
    pub fn sign_in_allowed(&self, ip: &str) -> bool {
        let limiter = &self.inner.sign_in_limit;
        // Forget addresses whose bucket has refilled, so the map stays small.
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&ip.to_owned()).is_ok()
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

/// A listing's `limit` query parameter: `default` when absent, refused
/// with 400 outside 1 to `max` (as the OpenAPI document says), never
/// silently clamped.
fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit={limit} is out of range: give 1 to {max}"
        )));
    }
    Ok(limit)
}

/// `/api/admin/…` for users, roles, grants, service tokens and the audit log.
fn accounts_routes() -> Router<AppState> {
    use accounts_admin as a;
    use axum::routing::{delete, put};
    Router::new()
        .route("/users", get(a::list_users).post(a::create_user))
        .route(
            "/users/{login}",
            get(a::get_user)
                .patch(a::update_user)
                .delete(a::delete_user),
        )
        .route(
            "/users/{login}/sign-out",
            axum::routing::post(a::sign_out_user),
        )
        .route("/users/{login}/unlock", axum::routing::post(a::unlock_user))
        .route(
            "/users/{login}/roles/{role}",
            put(a::add_user_role).delete(a::remove_user_role),
        )
        .route("/roles", get(a::list_roles).post(a::create_role))
        .route("/roles/{name}", delete(a::delete_role))
        .route("/roles/{name}/grants", get(a::role_grants))
        .route("/permissions", get(a::permissions))
        .route(
            "/roles/{name}/grants/{permission}",
            put(a::grant).delete(a::revoke),
        )
        .route("/tokens", get(a::list_tokens).post(a::create_token))
        .route("/tokens/{name}", delete(a::revoke_token))
        .route("/audit", get(a::audit))
}

/// The host's router.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config().server.body_limit_bytes;
    let admin = Router::new()
        .route("/plugins", get(admin::list).post(admin::install))
        .route(
            "/plugins/{name}",
            get(plugin_details::show).delete(admin::remove),
        )
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
            "/plugins/{name}/settings",
            get(admin_settings::show).put(admin_settings::change),
        )
        .route(
            "/plugins/{name}/disable",
            axum::routing::post(admin::disable),
        )
        .route("/tasks", get(admin_tasks::list))
        .route(
            "/tasks/{plugin}/{task}/run",
            axum::routing::post(admin_tasks::run_now),
        )
        .route(
            "/tasks/{plugin}/{task}/pause",
            axum::routing::post(admin_tasks::pause),
        )
        .route(
            "/tasks/{plugin}/{task}/resume",
            axum::routing::post(admin_tasks::resume),
        )
        .route("/tasks/{plugin}/{task}/runs", get(admin_tasks::runs))
        .route("/journal", get(admin::journal))
        .route("/agent", get(admin::agent))
        .route("/operations/stream", get(live::stream))
        .route(
            "/agent/reconnect",
            axum::routing::post(admin::agent_reconnect),
        )
        .merge(accounts_routes())
        .merge(admin_events::routes())
        // Packages are larger than ordinary request bodies.
        .layer(DefaultBodyLimit::max(PACKAGE_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::gate,
        ))
        // After the gate, so it replaces the gated 405: a method the route
        // does not serve is answered as such (axum adds `Allow`), not with
        // a 401/403 for a request that could never succeed.
        .method_not_allowed_fallback(admin::method_not_allowed);
    let public = ServeDir::new(&state.config().public_dir).append_index_html_on_directories(true);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/p/{*path}", any(plugin_routes::serve))
        .route("/files/{plugin}/{*name}", get(plugin_files::serve))
        .route("/api/plugins", get(api::plugins))
        .route("/api/menus", get(api::menus))
        .route("/api/hello", get(api::hello))
        .route("/api/openapi.json", get(admin::openapi))
        .route("/api/auth/login", axum::routing::post(auth::login))
        .route("/api/auth/logout", axum::routing::post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route(
            "/api/auth/password",
            axum::routing::post(auth::change_password),
        )
        .nest("/api/admin", admin)
        .fallback_service(tower::Layer::layer(
            &axum::middleware::from_fn(authn::pages_need_sign_in),
            public,
        ))
        // One `layer` call: each call boxes every route once more, which is
        // paid per request. Request ids (with the panic guard) outermost.
        .layer((
            request_id::RequestIdLayer,
            axum::middleware::from_fn(error::json_refusals),
            DefaultBodyLimit::max(body_limit),
            axum::middleware::from_fn_with_state(state.clone(), authn::identify),
        ))
        .with_state(state)
}
