//! [`transaction`]: runs a closure inside the call's own database
//! transaction (host API 0.2). Its statements and the events it publishes
//! commit together when the closure returns `Ok`, and roll back together
//! when it returns `Err` (or the call ends first): a rolled-back event is
//! never delivered.
//!
//! ```ignore
//! db::transaction(|tx| {
//!     tx.execute("UPDATE goods_items SET stock = stock - ? WHERE sku = ?", &[n.into(), sku.into()])?;
//!     events::publish("goods.stock-low", &payload)?;
//!     Ok(())
//! })?;
//! ```

use super::{Error, Rows, Value, from_wit_error};
use crate::__bindings::plinth::plugin::sql_transaction as wit;

/// The open transaction, handed to the closure. Statements through it (or
/// through [`super::query`]/[`super::execute`] directly) run inside it.
#[derive(Debug)]
pub struct Transaction {
    _open: (),
}

impl Transaction {
    /// [`super::query`], inside the transaction.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        super::query(sql, params)
    }

    /// [`super::execute`], inside the transaction.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        super::execute(sql, params)
    }
}

/// Runs `body` in a transaction: committed when it returns `Ok`, rolled
/// back when it returns `Err`. One transaction per call at a time.
pub fn transaction<T, E: From<Error>>(
    body: impl FnOnce(&Transaction) -> Result<T, E>,
) -> Result<T, E> {
    crate::guest_only("db::transaction");
    wit::begin().map_err(from_wit_error)?;
    match body(&Transaction { _open: () }) {
        Ok(value) => {
            wit::commit().map_err(from_wit_error)?;
            Ok(value)
        }
        Err(error) => {
            // The body's error is what the caller needs; a failed rollback
            // is undone by the host at the end of the call anyway.
            let _ = wit::rollback();
            Err(error)
        }
    }
}
