//! Host bindings for the `plinth:plugin` world and the store state that
//! implements its imports.
//!
//! All of `bindgen!`'s output lives here, beside the `Host` trait impls, so the
//! rest of the host sees only [`PluginState`] and the generated
//! [`Plugin`]/[`PluginPre`] types. Imports are `async` because SQL and
//! key-value calls go to the database through sqlx.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Any;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::outbound::OutboundClient;
use super::stdio::PluginLogStream;
use super::{HostServices, PluginIdentity};
use crate::db::plugin_sql::{self, Entered, PluginSqlCall, SqlValue};
use crate::db::scope::Allow;
use crate::db::store as host_store;

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use exports::plinth::plugin::handler::{Request as WitRequest, Response as WitResponse};
use plinth::plugin::sql::{Dialect as WitDialect, Rows, SqlError, Value};
pub use plinth::plugin::types::Header as WitHeader;

/// What one store knows: the WASI context that grants nothing, the memory
/// limits, who the plugin is, and the state of the call in progress.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
    pub(super) identity: Arc<PluginIdentity>,
    pub(super) services: HostServices,
    /// The `outbound-http` import's client (`outbound/wit.rs`).
    pub(super) outbound: Arc<OutboundClient>,
    pub(super) call: CallState,
}

/// Per-call state, reset before every call into the guest.
#[derive(Default)]
pub struct CallState {
    /// The request id the guest's log lines are tagged with; empty outside
    /// requests. A buffer kept across calls, so setting it costs no
    /// allocation on a warm instance.
    pub request_id: String,
    /// Epoch ticks spent running guest code in this call.
    pub ticks: u64,
    /// The CPU budget of this call, in epoch ticks.
    pub max_ticks: u64,
    /// The host's transaction, present only while an install hook (DDL
    /// allowed: `host_tx_ddl`) or an event delivery runs; the call's SQL
    /// runs inside it.
    pub install_tx: Option<sqlx::Transaction<'static, Any>>,
    /// The host's transaction during an install hook whose SQL runs in the
    /// plugin's own login (`install_tx` is then that login's, PostgreSQL
    /// and MySQL): the hook's events go here, since that login may not
    /// write the host's event tables, and commit with the host's records
    /// of the install.
    pub events_tx: Option<sqlx::Transaction<'static, Any>>,
    pub host_tx_ddl: bool,
    /// The database-side scope of a statement running in `install_tx`;
    /// still set after the call only when the call was given up on
    /// mid-statement, and then left before the transaction is used again.
    pub install_scope: Option<Entered>,
    /// The plugin's own transaction (`sql-transaction`), open between its
    /// `begin` and `commit`/`rollback`; rolled back if the call ends first.
    pub plugin_tx: Option<plugin_sql::PluginTransaction>,
    /// A plugin `begin` inside `install_tx` opened a savepoint.
    pub savepoint_open: bool,
    /// Events were written in `plugin_tx`: wake the relay once it commits.
    pub published_in_tx: bool,
    /// When this call's wall limit fires: plugin statements end by then.
    pub sql_deadline: Option<Instant>,
    /// This call's CPU budget, the longest one statement may run.
    pub budget: Duration,
    /// The user the request that started this call came from (`None` for
    /// an anonymous request, a task, an event or a hook); the `auth`
    /// imports read it.
    pub caller: Option<Arc<crate::caller::Caller>>,
    /// The plugins whose calls led here, outermost first (empty for a call
    /// from the host), for cutting loops in `plugins.call`.
    pub chain: Vec<String>,
}

impl PluginState {
    pub fn new(
        identity: Arc<PluginIdentity>,
        services: HostServices,
        outbound: Arc<OutboundClient>,
        limits: StoreLimits,
    ) -> Self {
        // Nothing is granted: no preopened directories, no environment, no
        // arguments, network addresses denied (the default). Stdout and stderr
        // go to the host log so a guest panic message is not lost.
        let wasi = WasiCtx::builder()
            .stdout(PluginLogStream::new(identity.name.clone(), "stdout"))
            .stderr(PluginLogStream::new(identity.name.clone(), "stderr"))
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits,
            identity,
            services,
            outbound,
            call: CallState::default(),
        }
    }

    fn request_id(&self) -> &str {
        match self.call.request_id.as_str() {
            "" => "-",
            id => id,
        }
    }

    async fn run_sql(
        &mut self,
        statement: String,
        params: Vec<Value>,
        want_rows: bool,
    ) -> Result<plugin_sql::SqlOutcome, SqlError> {
        let call = &mut self.call;
        let allow = if call.install_tx.is_some() && call.host_tx_ddl {
            Allow::DmlAndDdl
        } else {
            Allow::Dml
        };
        let params: Vec<SqlValue> = params.into_iter().map(SqlValue::from).collect();
        let budget = if call.budget.is_zero() {
            Duration::from_secs(5)
        } else {
            call.budget
        };
        let sql_call = PluginSqlCall {
            db: &self.services.db,
            plugin: &self.identity.name,
            table_prefix: &self.identity.table_prefix,
            allow,
            deadline: call.sql_deadline.unwrap_or_else(|| Instant::now() + budget),
            budget,
        };
        let open_tx = match (call.install_tx.as_mut(), call.plugin_tx.as_mut()) {
            (Some(tx), _) => Some(&mut **tx),
            (None, Some(own)) => Some(&mut *own.tx),
            (None, None) => None,
        };
        let result = match open_tx {
            Some(tx) => {
                plugin_sql::run_in_transaction(
                    &sql_call,
                    tx,
                    &statement,
                    params,
                    want_rows,
                    &mut call.install_scope,
                )
                .await
            }
            None => plugin_sql::run_pooled(&sql_call, &statement, params, want_rows).await,
        };
        result.map_err(|e| {
            let request_id = match call.request_id.as_str() {
                "" => "-",
                id => id,
            };
            tracing::debug!(plugin = %self.identity.name, request_id = %request_id, error = %e, "plugin SQL not run");
            match e {
                plugin_sql::PluginSqlError::Refused(m) => SqlError::Refused(m),
                plugin_sql::PluginSqlError::Invalid(m) => SqlError::Invalid(m),
                plugin_sql::PluginSqlError::Failed(m) => SqlError::Failed(m),
            }
        })
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl From<Value> for SqlValue {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => SqlValue::Null,
            Value::Integer(i) => SqlValue::Integer(i),
            Value::Real(f) => SqlValue::Real(f),
            Value::Text(s) => SqlValue::Text(s),
            Value::Blob(b) => SqlValue::Blob(b),
        }
    }
}

impl From<SqlValue> for Value {
    fn from(value: SqlValue) -> Self {
        match value {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(i) => Value::Integer(i),
            SqlValue::Real(f) => Value::Real(f),
            SqlValue::Text(s) => Value::Text(s),
            SqlValue::Blob(b) => Value::Blob(b),
        }
    }
}

impl plinth::plugin::types::Host for PluginState {}

impl plinth::plugin::plugin_info::Host for PluginState {
    async fn name(&mut self) -> String {
        self.identity.name.clone()
    }

    async fn version(&mut self) -> String {
        self.identity.version.clone()
    }

    async fn table_prefix(&mut self) -> String {
        self.identity.table_prefix.clone()
    }

    async fn mount_path(&mut self) -> String {
        self.identity.mount_path.clone()
    }
}

impl plinth::plugin::sql::Host for PluginState {
    async fn current_dialect(&mut self) -> WitDialect {
        match self.services.db.dialect() {
            crate::db::Dialect::Sqlite => WitDialect::Sqlite,
            crate::db::Dialect::Postgres => WitDialect::Postgres,
            crate::db::Dialect::Mysql => WitDialect::Mysql,
        }
    }

    async fn query(&mut self, statement: String, params: Vec<Value>) -> Result<Rows, SqlError> {
        match self.run_sql(statement, params, true).await? {
            plugin_sql::SqlOutcome::Rows { columns, rows } => Ok(Rows {
                columns,
                rows: rows
                    .into_iter()
                    .map(|row| row.into_iter().map(Value::from).collect())
                    .collect(),
            }),
            plugin_sql::SqlOutcome::Affected(_) => Ok(Rows {
                columns: Vec::new(),
                rows: Vec::new(),
            }),
        }
    }

    async fn execute(&mut self, statement: String, params: Vec<Value>) -> Result<u64, SqlError> {
        match self.run_sql(statement, params, false).await? {
            plugin_sql::SqlOutcome::Affected(n) => Ok(n),
            plugin_sql::SqlOutcome::Rows { rows, .. } => Ok(rows.len() as u64),
        }
    }
}

impl plinth::plugin::log::Host for PluginState {
    async fn log(&mut self, level: plinth::plugin::log::Level, message: String) {
        use plinth::plugin::log::Level;
        let plugin = &self.identity.name;
        let request_id = self.request_id();
        match level {
            Level::Trace => tracing::trace!(plugin, request_id, "{message}"),
            Level::Debug => tracing::debug!(plugin, request_id, "{message}"),
            Level::Info => tracing::info!(plugin, request_id, "{message}"),
            Level::Warn => tracing::warn!(plugin, request_id, "{message}"),
            Level::Error => tracing::error!(plugin, request_id, "{message}"),
        }
    }
}

impl plinth::plugin::settings::Host for PluginState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.identity.settings.get(&key).cloned()
    }
}

/// Largest key and value the `kv` interface accepts.
const KV_MAX_KEY: usize = 255;
const KV_MAX_VALUE: usize = 1024 * 1024;

impl plinth::plugin::kv::Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        host_store::kv_get(&self.services.db, &self.identity.name, &key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        if key.is_empty() || key.len() > KV_MAX_KEY {
            return Err(format!(
                "kv keys are 1 to {KV_MAX_KEY} bytes (got {})",
                key.len()
            ));
        }
        if value.len() > KV_MAX_VALUE {
            return Err(format!(
                "kv values are at most {KV_MAX_VALUE} bytes (got {})",
                value.len()
            ));
        }
        host_store::kv_set(&self.services.db, &self.identity.name, &key, &value)
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete(&mut self, key: String) -> Result<bool, String> {
        host_store::kv_delete(&self.services.db, &self.identity.name, &key)
            .await
            .map_err(|e| e.to_string())
    }
}

impl plinth::plugin::events::Host for PluginState {
    async fn publish(&mut self, topic: String, payload: String) -> Result<(), String> {
        let source = &self.identity.name;
        let events = &self.services.events;
        // Inside the host's transaction (an event delivery, an install hook)
        // the event commits or rolls back with it.
        // Inside the plugin's own transaction it commits with it, too.
        if let Some(tx) = self.call.events_tx.as_mut() {
            events.publish_in(tx, source, topic, payload).await
        } else if let Some(tx) = self.call.install_tx.as_mut() {
            events.publish_in(tx, source, topic, payload).await
        } else if let Some(own) = self.call.plugin_tx.as_mut() {
            self.call.published_in_tx = true;
            events.publish_in(&mut own.tx, source, topic, payload).await
        } else {
            events.publish(source, topic, payload).await
        }
        .map_err(|e| e.to_string())
    }
}
