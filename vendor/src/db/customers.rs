//! The `customers` and `assignments` tables: who may connect (by the hash
//! of their token) and which plugin ranges each customer is assigned.

use std::collections::BTreeSet;

use sqlx::Connection;

use super::{Db, DbError, now_ms, placeholders};

/// A customer as the rest of the crate refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Customer {
    pub id: i64,
    pub name: String,
}

/// One assignment: the customer should run `plugin` within `range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRow {
    pub customer_id: i64,
    pub plugin: String,
    /// The semver range as the operator typed it (validated on the way in).
    pub range: String,
}

/// Rows per multi-row `INSERT`: 500 rows × 3 values stays far below
/// SQLite's and PostgreSQL's bind-parameter limits.
const INSERT_CHUNK: usize = 500;

/// Names among `names` that are already taken.
pub async fn existing_names(db: &Db, names: &[String]) -> Result<BTreeSet<String>, DbError> {
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM customers")
        .fetch_all(db.pool())
        .await?;
    Ok(rows
        .into_iter()
        .map(|(name,)| name)
        .filter(|name| wanted.contains(name.as_str()))
        .collect())
}

/// Inserts every `(name, token_sha256)`, each with the `(plugin, range)`
/// assignments, in one transaction: all or none.
pub async fn add_many(
    db: &Db,
    customers: &[(String, String)],
    assignments: &[(String, String)],
) -> Result<(), DbError> {
    let now = now_ms();
    let mut conn = db.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    for chunk in customers.chunks(INSERT_CHUNK) {
        let rows = vec![format!("({})", placeholders(3)); chunk.len()].join(", ");
        let sql = format!("INSERT INTO customers (name, token_sha256, created_at) VALUES {rows}");
        let sql = db.sql(&sql);
        let mut query = sqlx::query(&sql);
        for (name, token_hash) in chunk {
            query = query.bind(name).bind(token_hash).bind(now);
        }
        query.execute(&mut *tx).await?;
        for (plugin, range) in assignments {
            let names = placeholders(chunk.len());
            let text = format!(
                "INSERT INTO assignments (customer_id, plugin, version_range, assigned_at) \
                 SELECT id, ?, ?, ? FROM customers WHERE name IN ({names})"
            );
            let sql = db.sql(&text);
            let mut query = sqlx::query(&sql).bind(plugin).bind(range).bind(now);
            for (name, _) in chunk {
                query = query.bind(name);
            }
            query.execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

pub async fn by_name(db: &Db, name: &str) -> Result<Option<Customer>, DbError> {
    let row: Option<(i64, String)> =
        sqlx::query_as(&db.sql("SELECT id, name FROM customers WHERE name = ?"))
            .bind(name)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(|(id, name)| Customer { id, name }))
}

pub async fn by_token_hash(db: &Db, token_sha256: &str) -> Result<Option<Customer>, DbError> {
    let row: Option<(i64, String)> =
        sqlx::query_as(&db.sql("SELECT id, name FROM customers WHERE token_sha256 = ?"))
            .bind(token_sha256)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(|(id, name)| Customer { id, name }))
}

/// Every customer with its creation time (unix ms), by name.
pub async fn list(db: &Db) -> Result<Vec<(Customer, i64)>, DbError> {
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, name, created_at FROM customers ORDER BY name")
            .fetch_all(db.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, created_at)| (Customer { id, name }, created_at))
        .collect())
}

/// Every customer that has at least one assignment, by name.
pub async fn with_assignments(db: &Db) -> Result<Vec<Customer>, DbError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, name FROM customers c \
         WHERE EXISTS (SELECT 1 FROM assignments a WHERE a.customer_id = c.id) ORDER BY name",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Customer { id, name })
        .collect())
}

/// Assignments of one customer, or of everyone (`None`), by plugin name.
pub async fn assignments(db: &Db, customer_id: Option<i64>) -> Result<Vec<AssignmentRow>, DbError> {
    let base = "SELECT customer_id, plugin, version_range FROM assignments";
    let rows: Vec<(i64, String, String)> = match customer_id {
        Some(id) => {
            sqlx::query_as(&db.sql(&format!("{base} WHERE customer_id = ? ORDER BY plugin")))
                .bind(id)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            sqlx::query_as(&format!("{base} ORDER BY customer_id, plugin"))
                .fetch_all(db.pool())
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(customer_id, plugin, range)| AssignmentRow {
            customer_id,
            plugin,
            range,
        })
        .collect())
}

/// Sets (or replaces) the customer's range for `plugin`.
pub async fn assign(db: &Db, customer_id: i64, plugin: &str, range: &str) -> Result<(), DbError> {
    sqlx::query(&db.sql(
        "INSERT INTO assignments (customer_id, plugin, version_range, assigned_at) \
         VALUES (?, ?, ?, ?) ON CONFLICT (customer_id, plugin) \
         DO UPDATE SET version_range = excluded.version_range, assigned_at = excluded.assigned_at",
    ))
    .bind(customer_id)
    .bind(plugin)
    .bind(range)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Removes the assignment; `false` when there was none.
pub async fn unassign(db: &Db, customer_id: i64, plugin: &str) -> Result<bool, DbError> {
    let done = sqlx::query(&db.sql("DELETE FROM assignments WHERE customer_id = ? AND plugin = ?"))
        .bind(customer_id)
        .bind(plugin)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}
