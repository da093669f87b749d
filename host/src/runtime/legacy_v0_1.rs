//! Host API 0.1.0, linked beside the current version so plugins built
//! against it keep installing and serving.
//!
//! WIT packages below 1.0 are incompatible across minor versions, so the
//! linker cannot satisfy a plugin's `plinth:plugin/sql@0.1.0` import with
//! the `@0.2.0` instance. `bindgen!` therefore runs a second time, on the
//! frozen `wit/frozen/0.1.0` contract, and each 0.1.0 import is answered by
//! the current implementation: the 0.1.0 interfaces are unchanged in 0.2.0,
//! so every function here only converts between the two generated copies of
//! the same types.

use super::bindings::{self as current, PluginState, WitHeader, WitRequest, WitResponse};

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit/frozen/0.1.0",
    imports: { default: async },
    exports: { default: async },
});

pub use self::Plugin as PluginV0_1;
pub use self::PluginPre as PluginPreV0_1;

use self::exports::plinth::plugin::handler as old_handler;
use self::plinth::plugin as old;
use current::plinth::plugin as now;

impl From<old::sql::Value> for now::sql::Value {
    fn from(value: old::sql::Value) -> Self {
        use old::sql::Value as V;
        match value {
            V::Null => Self::Null,
            V::Integer(i) => Self::Integer(i),
            V::Real(f) => Self::Real(f),
            V::Text(s) => Self::Text(s),
            V::Blob(b) => Self::Blob(b),
        }
    }
}

impl From<now::sql::Value> for old::sql::Value {
    fn from(value: now::sql::Value) -> Self {
        use now::sql::Value as V;
        match value {
            V::Null => Self::Null,
            V::Integer(i) => Self::Integer(i),
            V::Real(f) => Self::Real(f),
            V::Text(s) => Self::Text(s),
            V::Blob(b) => Self::Blob(b),
        }
    }
}

impl From<now::sql::SqlError> for old::sql::SqlError {
    fn from(error: now::sql::SqlError) -> Self {
        use now::sql::SqlError as E;
        match error {
            E::Refused(m) => Self::Refused(m),
            E::Invalid(m) => Self::Invalid(m),
            E::Failed(m) => Self::Failed(m),
        }
    }
}

fn params(params: Vec<old::sql::Value>) -> Vec<now::sql::Value> {
    params.into_iter().map(Into::into).collect()
}

impl old::types::Host for PluginState {}

impl old::plugin_info::Host for PluginState {
    async fn name(&mut self) -> String {
        now::plugin_info::Host::name(self).await
    }

    async fn version(&mut self) -> String {
        now::plugin_info::Host::version(self).await
    }

    async fn table_prefix(&mut self) -> String {
        now::plugin_info::Host::table_prefix(self).await
    }

    async fn mount_path(&mut self) -> String {
        now::plugin_info::Host::mount_path(self).await
    }
}

impl old::sql::Host for PluginState {
    async fn current_dialect(&mut self) -> old::sql::Dialect {
        match now::sql::Host::current_dialect(self).await {
            now::sql::Dialect::Sqlite => old::sql::Dialect::Sqlite,
            now::sql::Dialect::Postgres => old::sql::Dialect::Postgres,
            now::sql::Dialect::Mysql => old::sql::Dialect::Mysql,
        }
    }

    async fn query(
        &mut self,
        statement: String,
        values: Vec<old::sql::Value>,
    ) -> Result<old::sql::Rows, old::sql::SqlError> {
        let rows = now::sql::Host::query(self, statement, params(values)).await?;
        Ok(old::sql::Rows {
            columns: rows.columns,
            rows: rows
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(Into::into).collect())
                .collect(),
        })
    }

    async fn execute(
        &mut self,
        statement: String,
        values: Vec<old::sql::Value>,
    ) -> Result<u64, old::sql::SqlError> {
        Ok(now::sql::Host::execute(self, statement, params(values)).await?)
    }
}

impl old::log::Host for PluginState {
    async fn log(&mut self, level: old::log::Level, message: String) {
        use now::log::Level as L;
        let level = match level {
            old::log::Level::Trace => L::Trace,
            old::log::Level::Debug => L::Debug,
            old::log::Level::Info => L::Info,
            old::log::Level::Warn => L::Warn,
            old::log::Level::Error => L::Error,
        };
        now::log::Host::log(self, level, message).await
    }
}

impl old::settings::Host for PluginState {
    async fn get(&mut self, key: String) -> Option<String> {
        now::settings::Host::get(self, key).await
    }
}

impl old::kv::Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        now::kv::Host::get(self, key).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        now::kv::Host::set(self, key, value).await
    }

    async fn delete(&mut self, key: String) -> Result<bool, String> {
        now::kv::Host::delete(self, key).await
    }
}

impl old::events::Host for PluginState {
    async fn publish(&mut self, topic: String, payload: String) -> Result<(), String> {
        now::events::Host::publish(self, topic, payload).await
    }
}

/// The request in the 0.1.0 types. Copies the strings: only old plugins pay
/// for it.
pub fn request(request: &WitRequest) -> old_handler::Request {
    old_handler::Request {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request
            .headers
            .iter()
            .map(|h| old::types::Header {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect(),
        body: request.body.clone(),
        request_id: request.request_id.clone(),
    }
}

/// The 0.1.0 response in the current types.
pub fn response(response: old_handler::Response) -> WitResponse {
    WitResponse {
        status: response.status,
        headers: response
            .headers
            .into_iter()
            .map(|h| WitHeader {
                name: h.name,
                value: h.value,
            })
            .collect(),
        body: response.body,
    }
}
