//! The Plinth host: an on-premises server that runs versioned WebAssembly
//! component plugins, each with its own routes, menus, tasks and tables.
//!
//! # Layout
//! - [`config`]: `config.json`, environment overrides, validation.
//! - [`startup`]: the ordered start-up sequence and the [`startup::Host`] it
//!   assembles.
//! - [`db`]: the database pool, the migration ledger, the SQL scope guard
//!   for plugins and the host's own tables.
//! - [`runtime`]: the wasmtime engine, the compile cache and plugin
//!   instances with their limits; it knows nothing of HTTP frameworks.
//! - [`install`]: plugin operations (install, upgrade, rollback, enable,
//!   disable, remove) through one journalled, crash-safe pipeline; the
//!   drop-in folder.
//! - [`plugin_cli`]: `plinth plugin …`, directly or through a running
//!   host's admin API.
//! - [`registry`]: the set of plugins serving now, swapped atomically.
//! - [`http`]: the axum router: plugin routes, health, the admin API and
//!   its OpenAPI document, static files.
//! - [`scheduler`]: runs the tasks plugins declare.
//! - [`events`]: the bus between plugins.
//! - [`agent`]: the upgrade agent: the websocket to the vendor server,
//!   verification of signed deployments, resumable downloads, install
//!   through the pipeline and status reports.

pub mod agent;
pub mod config;
pub mod db;
pub mod events;
pub mod http;
pub mod install;
pub mod plugin_cli;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod startup;

/// The version of the `plinth:plugin` WIT package this host implements; a
/// manifest's `host_api` range is checked against it.
pub const HOST_API_VERSION: &str = "0.1.0";
