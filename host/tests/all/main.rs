//! Integration tests of the host, one module per capability. They form one
//! test binary so wasmtime is linked once.

mod browser;
mod support;
mod vendor_process;
mod vendor_standin;

mod admin_api_permissions;
mod admin_web;
mod agent_hostile_vendor;
mod agent_verification;
mod audit_log;
mod config_file_edits;
mod config_startup;
mod crash_recovery;
mod dropin;
mod event_dead_letters;
mod event_outbox;
mod goods_api;
mod goods_stock_summary;
mod host_api_compat;
mod host_schema;
mod hostile_packages;
mod hot_swap;
mod installed_host;
mod missing_plugins;
mod outbound_http_policy;
mod package_lifecycle;
mod permission_reconcile;
mod plugin_calls;
mod plugin_cli;
mod plugin_files;
mod plugin_isolation;
mod plugin_roles_lifecycle;
mod plugin_route_permissions;
mod plugin_settings;
mod plugin_sql_scope;
mod plugin_sql_walls;
mod route_rate_limits;
mod sign_in_limits;
mod sign_in_sessions;
mod stored_manifest;
mod task_claims_across_hosts;
mod task_schedule;
mod tasks_events_kv;
mod upgrade_agent;
mod wasi_http_component;
