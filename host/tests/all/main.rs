//! Integration tests of the host, one module per capability. They form one
//! test binary so wasmtime is linked once.

mod support;

mod config_startup;
mod goods_api;
mod host_schema;
mod plugin_isolation;
mod plugin_sql_scope;
mod wasi_http_component;
