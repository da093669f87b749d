//! The `sql-transaction` import (host API 0.2.0): a plugin's own
//! transaction, scoped to one call. While it is open the plugin's statements
//! (still checked and walled by `db::plugin_sql`) and its `events.publish`
//! run inside it; [`end_of_call`] rolls back whatever a call left open.
//! Inside the host's own transaction (an event delivery) `begin` opens a
//! savepoint instead, so the plugin's rollback undoes only its part.

use std::time::{Duration, Instant};

use super::bindings::PluginState;
use super::bindings::plinth::plugin::sql::SqlError;
use super::bindings::plinth::plugin::sql_transaction::Host;
use crate::db::plugin_sql::{self, PluginSqlCall, Savepoint};
use crate::db::scope::Allow;

fn invalid(message: &str) -> SqlError {
    SqlError::Invalid(message.to_owned())
}

fn from_plugin_sql(e: plugin_sql::PluginSqlError) -> SqlError {
    match e {
        plugin_sql::PluginSqlError::Refused(m) => SqlError::Refused(m),
        plugin_sql::PluginSqlError::Invalid(m) => SqlError::Invalid(m),
        plugin_sql::PluginSqlError::Failed(m) => SqlError::Failed(m),
    }
}

fn failed(e: sqlx::Error) -> SqlError {
    SqlError::Failed(format!("the transaction did not end cleanly: {e}"))
}

impl PluginState {
    /// Ends the savepoint a `begin` inside an event delivery or an install
    /// hook opened, and its twin in the hook's events transaction.
    async fn end_savepoint(&mut self, how: Savepoint) -> Result<(), SqlError> {
        self.call.savepoint_open = false;
        let tx = self
            .call
            .install_tx
            .as_mut()
            .ok_or_else(|| invalid("no transaction is open"))?;
        plugin_sql::savepoint(tx, how)
            .await
            .map_err(from_plugin_sql)?;
        if let Some(events) = self.call.events_tx.as_mut() {
            plugin_sql::savepoint(events, how)
                .await
                .map_err(from_plugin_sql)?;
        }
        Ok(())
    }
}

impl Host for PluginState {
    async fn begin(&mut self) -> Result<(), SqlError> {
        if self.call.plugin_tx.is_some() || self.call.savepoint_open {
            return Err(invalid(
                "a transaction is already open in this call; commit or roll it back first",
            ));
        }
        if let Some(tx) = self.call.install_tx.as_mut() {
            plugin_sql::savepoint(tx, Savepoint::Open)
                .await
                .map_err(from_plugin_sql)?;
            // Events published inside go to the events transaction: a
            // savepoint there too, so the plugin's rollback undoes them.
            if let Some(events) = self.call.events_tx.as_mut() {
                plugin_sql::savepoint(events, Savepoint::Open)
                    .await
                    .map_err(from_plugin_sql)?;
            }
            self.call.savepoint_open = true;
            return Ok(());
        }
        let budget = if self.call.budget.is_zero() {
            Duration::from_secs(5)
        } else {
            self.call.budget
        };
        let call = PluginSqlCall {
            db: &self.services.db,
            plugin: &self.identity.name,
            table_prefix: &self.identity.table_prefix,
            allow: Allow::Dml,
            deadline: self
                .call
                .sql_deadline
                .unwrap_or_else(|| Instant::now() + budget),
            budget,
        };
        let tx = plugin_sql::begin_transaction(&call)
            .await
            .map_err(from_plugin_sql)?;
        self.call.plugin_tx = Some(tx);
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), SqlError> {
        if self.call.savepoint_open {
            return self.end_savepoint(Savepoint::Release).await;
        }
        let own = self
            .call
            .plugin_tx
            .take()
            .ok_or_else(|| invalid("no transaction is open; call begin first"))?;
        own.tx.commit().await.map_err(failed)?;
        if std::mem::take(&mut self.call.published_in_tx) {
            self.services.events.wake();
        }
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), SqlError> {
        if self.call.savepoint_open {
            return self.end_savepoint(Savepoint::RollBack).await;
        }
        let own = self
            .call
            .plugin_tx
            .take()
            .ok_or_else(|| invalid("no transaction is open; call begin first"))?;
        self.call.published_in_tx = false;
        own.tx.rollback().await.map_err(failed)
    }
}

/// How long ending what a call left open may take before its connection
/// is dropped instead (sqlx then rolls it back or closes it).
const END_WAIT: Duration = Duration::from_secs(10);

/// Ends what the call left open, before its store is reused: the plugin's
/// transaction is rolled back, a savepoint in the host's transaction rolled
/// back to, and a statement given up on leaves the plugin's scope first.
/// Bounded: a database that does not answer costs the connection (and the
/// host's transaction, which then fails), never a call hung for good
/// holding its instance permit.
pub(super) async fn end_of_call(state: &mut PluginState) {
    if tokio::time::timeout(END_WAIT, end_open_work(state))
        .await
        .is_err()
    {
        tracing::warn!(plugin = %state.identity.name, "ending the call's transaction took over {} s; its connection was dropped", END_WAIT.as_secs());
        // The host's transaction may still hold the plugin's half-undone
        // part: it is dropped too, so nothing of the call commits.
        state.call.install_tx = None;
        state.call.events_tx = None;
        state.call.install_scope = None;
        state.call.plugin_tx = None;
        state.call.savepoint_open = false;
        state.call.published_in_tx = false;
    }
}

async fn end_open_work(state: &mut PluginState) {
    let db = state.services.db.clone();
    let call = &mut state.call;
    if let (Some(own), Some(entered)) = (call.plugin_tx.as_mut(), call.install_scope.take()) {
        let _ = plugin_sql::leave(&mut own.tx, &db, entered).await;
    }
    if call.savepoint_open {
        call.savepoint_open = false;
        if let Some(tx) = call.install_tx.as_mut() {
            if let Some(entered) = call.install_scope.take() {
                let _ = plugin_sql::leave(tx, &db, entered).await;
            }
            tracing::warn!(plugin = %state.identity.name, "the call ended inside its transaction; its part was rolled back");
            let _ = plugin_sql::savepoint(tx, Savepoint::RollBack).await;
        }
        if let Some(events) = call.events_tx.as_mut() {
            let _ = plugin_sql::savepoint(events, Savepoint::RollBack).await;
        }
    }
    call.published_in_tx = false;
    if let Some(own) = call.plugin_tx.take() {
        tracing::warn!(plugin = %state.identity.name, "the call ended with its transaction open; it was rolled back");
        let _ = own.tx.rollback().await;
    }
}
