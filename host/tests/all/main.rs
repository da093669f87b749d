//! Integration tests of the host, one module per capability. They form one
//! test binary so wasmtime is linked once.

mod support;
mod vendor_process;
mod vendor_standin;

mod agent_hostile_vendor;
mod agent_verification;
mod config_file_edits;
mod config_startup;
mod crash_recovery;
mod dropin;
mod goods_api;
mod host_api_compat;
mod host_schema;
mod hostile_packages;
mod hot_swap;
mod installed_host;
mod missing_plugins;
mod package_lifecycle;
mod permission_reconcile;
mod plugin_cli;
mod plugin_isolation;
mod plugin_route_permissions;
mod plugin_sql_scope;
mod plugin_sql_walls;
mod stored_manifest;
mod tasks_events_kv;
mod upgrade_agent;
mod wasi_http_component;
