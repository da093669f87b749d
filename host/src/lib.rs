//! The Plinth host: an on-premises server that runs versioned WebAssembly
//! component plugins, each with its own routes, menus, tasks and tables.
//!
//! # Layout
//!
//! In layers: a module uses only modules in the layers above it
//! (docs/ARCHITECTURE.md "Layers"; `tests::layers` enforces it).
//!
//! 1. [`config`]: `config.json`, environment overrides, validation;
//!    [`paths`]: [`paths::DataDir`], every path under the data dir;
//!    [`caller`]: who an authenticated request is and what it may do.
//! 2. [`db`]: the database pool, the migration ledger, the SQL scope guard
//!    for plugins and the host's own tables; [`events`]: the bus between
//!    plugins.
//! 3. [`runtime`]: the wasmtime engine, the compile cache and plugin
//!    instances with their limits; it knows nothing of HTTP frameworks.
//! 4. [`registry`]: the set of plugins serving now, swapped atomically.
//! 5. [`host`]: [`Host`], what the parts share, and the operation lock.
//! 6. [`install`]: how a plugin comes into service: install, upgrade,
//!    rollback, enable, disable, remove through one journalled, crash-safe
//!    pipeline, and recover, restore and adopt at start-up.
//! 7. [`background`]: event delivery, the task scheduler, the drop-in
//!    folder; [`agent`]: the upgrade agent: the websocket to the vendor
//!    server, verification of signed deployments, resumable downloads,
//!    install through the pipeline and status reports.
//! 8. [`http`]: the axum router: plugin routes, health, the admin API and
//!    its OpenAPI document, static files.
//! 9. [`startup`]: the ordered start-up sequence.
//! 10. [`plugin_cli`]: `plinth plugin …`, directly or through a running
//!     host's admin API.
//! 11. `main.rs`: the binary.

pub mod agent;
pub mod background;
pub mod caller;
pub mod config;
pub mod db;
pub mod events;
pub mod host;
pub mod http;
pub mod install;
pub mod paths;
pub mod plugin_cli;
pub mod registry;
pub mod runtime;
pub mod startup;

pub use host::Host;

#[cfg(test)]
mod layers;

/// The current version of the `plinth:plugin` WIT package, the one
/// `plinth-sdk` builds against.
pub const HOST_API_VERSION: &str = "0.2.0";

/// Every `plinth:plugin` version the host links (`wit/frozen/<v>/` for the
/// earlier ones); a manifest's `host_api` range must meet one of them.
pub const HOST_API_VERSIONS: &[&str] = &["0.1.0", HOST_API_VERSION];

#[cfg(test)]
mod tests {
    /// `HOST_API_VERSION` must be the version `wit/plugin.wit` declares, or
    /// manifests would be checked against a contract the host does not
    /// implement.
    #[test]
    fn host_api_version_is_the_wit_package_version() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/plugin.wit");
        let wit = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let declared = wit
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("package plinth:plugin@")?
                    .strip_suffix(';')
            })
            .unwrap_or_else(|| panic!("{path} has no `package plinth:plugin@x.y.z;` line"));
        assert_eq!(
            declared,
            super::HOST_API_VERSION,
            "wit/plugin.wit declares plinth:plugin@{declared}; set HOST_API_VERSION to match"
        );
    }

    /// Every earlier version the host links has its frozen contract, and
    /// that file still declares that version: the legacy bindings are
    /// generated from it.
    #[test]
    fn every_linked_earlier_version_has_its_frozen_wit() {
        for version in super::HOST_API_VERSIONS {
            if *version == super::HOST_API_VERSION {
                continue;
            }
            let path = format!(
                "{}/../wit/frozen/{version}/plugin.wit",
                env!("CARGO_MANIFEST_DIR")
            );
            let wit = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(
                wit.contains(&format!("package plinth:plugin@{version};")),
                "{path} must declare plinth:plugin@{version}"
            );
        }
    }
}
