//! The grants of the permission and button codes plugins declare, kept in
//! line with the installed set: `plinth_role_grants` rows whose `plugin` is
//! the declaring plugin, and the `plinth_roles` rows their default roles
//! need.
//!
//! [`super::store`] calls these on the same connection (the operation's
//! transaction) as it writes or deletes the installed-set row, so a plugin
//! is never installed without its grants, nor removed leaving them. A code
//! is "new" when the previous manifest did not declare it: only new codes
//! get their `default_roles`, so an administrator's revocation survives an
//! upgrade or an enable. A renamed code is a dropped one plus a new one.

use std::collections::BTreeSet;

use plinth_package::manifest::Manifest;

use super::{DbError, conn_dialect, host_sql, now_ms};

/// The data scope a role created for a manifest's `default_roles` starts
/// with: the narrowest, until an administrator widens it.
const NEW_ROLE_DATA_SCOPE: &str = "self";

/// Every grantable code `manifest` declares, with its default roles.
pub fn declared_codes(manifest: &Manifest) -> Vec<(&str, &[String])> {
    manifest
        .permissions
        .iter()
        .map(|p| (p.code.as_str(), p.default_roles.as_slice()))
        .chain(
            manifest
                .buttons
                .iter()
                .map(|b| (b.code.as_str(), b.default_roles.as_slice())),
        )
        .collect()
}

/// Brings the grants of `next.name`'s codes in line with `next`, given the
/// manifest it replaces (`None` on a first install).
pub async fn reconcile(
    conn: &mut sqlx::AnyConnection,
    previous: Option<&Manifest>,
    next: &Manifest,
) -> Result<(), DbError> {
    let dialect = conn_dialect(conn);
    let plugin = next.name.as_str();
    let declared = declared_codes(next);
    let keep: BTreeSet<&str> = declared.iter().map(|(code, _)| *code).collect();

    let granted = sqlx::query(&host_sql(
        dialect,
        "SELECT DISTINCT permission FROM plinth_role_grants WHERE plugin = ?",
    ))
    .bind(plugin)
    .fetch_all(&mut *conn)
    .await?;
    for row in &granted {
        let code = super::store::text(row, "permission")?;
        if !keep.contains(code.as_str()) {
            sqlx::query(&host_sql(
                dialect,
                "DELETE FROM plinth_role_grants WHERE plugin = ? AND permission = ?",
            ))
            .bind(plugin)
            .bind(&code)
            .execute(&mut *conn)
            .await?;
        }
    }

    let before: BTreeSet<&str> = previous
        .map(|m| {
            declared_codes(m)
                .into_iter()
                .map(|(code, _)| code)
                .collect()
        })
        .unwrap_or_default();
    let now = now_ms();
    for (code, roles) in declared {
        if before.contains(code) {
            continue;
        }
        for role in roles {
            ensure_role(conn, role, now).await?;
            let exists = sqlx::query(&host_sql(
                dialect,
                "SELECT 1 AS one FROM plinth_role_grants WHERE role = ? AND permission = ?",
            ))
            .bind(role)
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?;
            if exists.is_none() {
                sqlx::query(&host_sql(
                    dialect,
                    "INSERT INTO plinth_role_grants (role, permission, plugin, granted_at) \
                     VALUES (?, ?, ?, ?)",
                ))
                .bind(role)
                .bind(code)
                .bind(plugin)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// Removes every grant of the codes `plugin` declared.
pub async fn remove_all(conn: &mut sqlx::AnyConnection, plugin: &str) -> Result<(), DbError> {
    let dialect = conn_dialect(conn);
    sqlx::query(&host_sql(
        dialect,
        "DELETE FROM plinth_role_grants WHERE plugin = ?",
    ))
    .bind(plugin)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Creates role `name` when it does not exist yet, titled by its name.
async fn ensure_role(conn: &mut sqlx::AnyConnection, name: &str, now: i64) -> Result<(), DbError> {
    let dialect = conn_dialect(conn);
    let exists = sqlx::query(&host_sql(
        dialect,
        "SELECT 1 AS one FROM plinth_roles WHERE name = ?",
    ))
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    if exists.is_none() {
        sqlx::query(&host_sql(
            dialect,
            "INSERT INTO plinth_roles (name, title, data_scope, builtin, created_at) \
             VALUES (?, ?, ?, 'N', ?)",
        ))
        .bind(name)
        .bind(name)
        .bind(NEW_ROLE_DATA_SCOPE)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The codes `role` holds, sorted; for tests and the admin API.
pub async fn role_codes(db: &super::Db, role: &str) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query(&host_sql(
        db.dialect(),
        "SELECT permission FROM plinth_role_grants WHERE role = ? ORDER BY permission",
    ))
    .bind(role)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| super::store::text(row, "permission"))
        .collect()
}

/// The distinct codes granted on behalf of `plugin`, sorted.
pub async fn plugin_codes(db: &super::Db, plugin: &str) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query(&host_sql(
        db.dialect(),
        "SELECT DISTINCT permission FROM plinth_role_grants WHERE plugin = ? ORDER BY permission",
    ))
    .bind(plugin)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| super::store::text(row, "permission"))
        .collect()
}
