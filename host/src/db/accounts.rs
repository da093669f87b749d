//! The host's identity tables: users and their roles, server-side
//! sessions, service tokens with their grants, roles and their host grants,
//! and the audit log. Every statement on them is written here; the
//! `accounts` module above decides what they mean.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::store::text;
use super::{Db, DbError, host_sql, now_ms};

/// A row of `plinth_users`.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    pub password_hash: String,
    pub disabled: bool,
    pub token_version: i64,
    pub failed_count: i64,
    pub locked_until: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const USER_COLUMNS: &str = "id, login, display_name, password_hash, disabled, token_version, \
                            failed_count, locked_until, created_at, updated_at";

fn user_from_row(row: &AnyRow) -> Result<UserRow, DbError> {
    Ok(UserRow {
        id: row.try_get("id")?,
        login: text(row, "login")?,
        display_name: text(row, "display_name")?,
        password_hash: text(row, "password_hash")?,
        disabled: text(row, "disabled")? == "Y",
        token_version: row.try_get("token_version")?,
        failed_count: row.try_get("failed_count")?,
        locked_until: row.try_get("locked_until")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn flag(on: bool) -> &'static str {
    if on { "Y" } else { "N" }
}

pub async fn user_by_login(db: &Db, login: &str) -> Result<Option<UserRow>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM plinth_users WHERE login = ?");
    let row = sqlx::query(&host_sql(db.dialect(), &sql))
        .bind(login)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn user_by_id(db: &Db, id: i64) -> Result<Option<UserRow>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM plinth_users WHERE id = ?");
    let row = sqlx::query(&host_sql(db.dialect(), &sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn users(db: &Db) -> Result<Vec<UserRow>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM plinth_users ORDER BY login");
    let rows = sqlx::query(&sql).fetch_all(db.pool()).await?;
    rows.iter().map(user_from_row).collect()
}

/// Inserts a user and returns its row (with the id the database gave it).
/// `Ok(None)` when the login is taken.
pub async fn insert_user(
    db: &Db,
    login: &str,
    display_name: &str,
    password_hash: &str,
) -> Result<Option<UserRow>, DbError> {
    if user_by_login(db, login).await?.is_some() {
        return Ok(None);
    }
    let now = now_ms();
    let sql = host_sql(
        db.dialect(),
        "INSERT INTO plinth_users (login, display_name, password_hash, disabled, token_version, \
         failed_count, locked_until, created_at, updated_at) VALUES (?, ?, ?, 'N', 1, 0, 0, ?, ?)",
    );
    let inserted = sqlx::query(&sql)
        .bind(login)
        .bind(display_name)
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(db.pool())
        .await;
    match inserted {
        Ok(_) => user_by_login(db, login).await,
        // Another request created it in between: the unique login wins.
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Runs an UPDATE/DELETE with `id` as the last bind; whether a row changed.
async fn by_id(db: &Db, sql: &str, id: i64) -> Result<bool, DbError> {
    let done = sqlx::query(&host_sql(db.dialect(), sql))
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A new password; every older session stops counting.
pub async fn set_password(db: &Db, id: i64, password_hash: &str) -> Result<bool, DbError> {
    let sql = host_sql(
        db.dialect(),
        "UPDATE plinth_users SET password_hash = ?, token_version = token_version + 1, \
         failed_count = 0, locked_until = 0, updated_at = ? WHERE id = ?",
    );
    let done = sqlx::query(&sql)
        .bind(password_hash)
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn set_display_name(db: &Db, id: i64, display_name: &str) -> Result<bool, DbError> {
    let sql = host_sql(
        db.dialect(),
        "UPDATE plinth_users SET display_name = ?, updated_at = ? WHERE id = ?",
    );
    let done = sqlx::query(&sql)
        .bind(display_name)
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Disables or enables a user; either way older sessions stop counting.
pub async fn set_disabled(db: &Db, id: i64, disabled: bool) -> Result<bool, DbError> {
    let sql = host_sql(
        db.dialect(),
        "UPDATE plinth_users SET disabled = ?, token_version = token_version + 1, updated_at = ? \
         WHERE id = ?",
    );
    let done = sqlx::query(&sql)
        .bind(flag(disabled))
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// "Sign out everywhere": every existing session of the user stops counting.
pub async fn bump_token_version(db: &Db, id: i64) -> Result<bool, DbError> {
    by_id(
        db,
        "UPDATE plinth_users SET token_version = token_version + 1 WHERE id = ?",
        id,
    )
    .await
}

/// Counts a failed sign-in; the new count in a row.
pub async fn count_failure(db: &Db, id: i64) -> Result<i64, DbError> {
    by_id(
        db,
        "UPDATE plinth_users SET failed_count = failed_count + 1 WHERE id = ?",
        id,
    )
    .await?;
    Ok(user_by_id(db, id).await?.map_or(0, |u| u.failed_count))
}

/// Locks the account until `until` (ms) and starts the count afresh.
pub async fn lock_until(db: &Db, id: i64, until: i64) -> Result<(), DbError> {
    let sql = host_sql(
        db.dialect(),
        "UPDATE plinth_users SET failed_count = 0, locked_until = ? WHERE id = ?",
    );
    sqlx::query(&sql)
        .bind(until)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn reset_failures(db: &Db, id: i64) -> Result<(), DbError> {
    by_id(
        db,
        "UPDATE plinth_users SET failed_count = 0, locked_until = 0 WHERE id = ?",
        id,
    )
    .await?;
    Ok(())
}

/// Deletes the user, their roles and their sessions.
pub async fn delete_user(db: &Db, id: i64) -> Result<bool, DbError> {
    by_id(db, "DELETE FROM plinth_user_roles WHERE user_id = ?", id).await?;
    by_id(db, "DELETE FROM plinth_sessions WHERE user_id = ?", id).await?;
    by_id(db, "DELETE FROM plinth_users WHERE id = ?", id).await
}

pub async fn user_roles(db: &Db, id: i64) -> Result<Vec<String>, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT role FROM plinth_user_roles WHERE user_id = ? ORDER BY role",
    );
    let rows = sqlx::query(&sql).bind(id).fetch_all(db.pool()).await?;
    rows.iter().map(|r| text(r, "role")).collect()
}

pub async fn add_user_role(db: &Db, id: i64, role: &str) -> Result<(), DbError> {
    remove_user_role(db, id, role).await?;
    let sql = host_sql(
        db.dialect(),
        "INSERT INTO plinth_user_roles (user_id, role) VALUES (?, ?)",
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(role)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn remove_user_role(db: &Db, id: i64, role: &str) -> Result<bool, DbError> {
    let sql = host_sql(
        db.dialect(),
        "DELETE FROM plinth_user_roles WHERE user_id = ? AND role = ?",
    );
    let done = sqlx::query(&sql)
        .bind(id)
        .bind(role)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A row of `plinth_roles`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleRow {
    pub name: String,
    pub title: String,
    pub data_scope: String,
    pub builtin: bool,
    pub created_at: i64,
}

fn role_from_row(row: &AnyRow) -> Result<RoleRow, DbError> {
    Ok(RoleRow {
        name: text(row, "name")?,
        title: text(row, "title")?,
        data_scope: text(row, "data_scope")?,
        builtin: text(row, "builtin")? == "Y",
        created_at: row.try_get("created_at")?,
    })
}

pub async fn roles(db: &Db) -> Result<Vec<RoleRow>, DbError> {
    let rows = sqlx::query(
        "SELECT name, title, data_scope, builtin, created_at FROM plinth_roles ORDER BY name",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(role_from_row).collect()
}

pub async fn role(db: &Db, name: &str) -> Result<Option<RoleRow>, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT name, title, data_scope, builtin, created_at FROM plinth_roles WHERE name = ?",
    );
    let row = sqlx::query(&sql)
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(role_from_row).transpose()
}

/// Inserts the role unless one of that name exists; whether it inserted.
pub async fn insert_role(
    db: &Db,
    name: &str,
    title: &str,
    data_scope: &str,
    builtin: bool,
) -> Result<bool, DbError> {
    if role(db, name).await?.is_some() {
        return Ok(false);
    }
    let sql = host_sql(
        db.dialect(),
        "INSERT INTO plinth_roles (name, title, data_scope, builtin, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    );
    let inserted = sqlx::query(&sql)
        .bind(name)
        .bind(title)
        .bind(data_scope)
        .bind(flag(builtin))
        .bind(now_ms())
        .execute(db.pool())
        .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a role with its grants and memberships.
pub async fn delete_role(db: &Db, name: &str) -> Result<bool, DbError> {
    for sql in [
        "DELETE FROM plinth_role_grants WHERE role = ?",
        "DELETE FROM plinth_user_roles WHERE role = ?",
    ] {
        sqlx::query(&host_sql(db.dialect(), sql))
            .bind(name)
            .execute(db.pool())
            .await?;
    }
    let done = sqlx::query(&host_sql(
        db.dialect(),
        "DELETE FROM plinth_roles WHERE name = ?",
    ))
    .bind(name)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A grant of `plinth_role_grants`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleGrant {
    pub permission: String,
    /// The plugin that declared the code, '' for a host code.
    pub plugin: String,
    pub granted_at: i64,
}

pub async fn role_grants(db: &Db, role: &str) -> Result<Vec<RoleGrant>, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT permission, plugin, granted_at FROM plinth_role_grants WHERE role = ? \
         ORDER BY permission",
    );
    let rows = sqlx::query(&sql).bind(role).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(RoleGrant {
                permission: text(r, "permission")?,
                plugin: text(r, "plugin")?,
                granted_at: r.try_get("granted_at")?,
            })
        })
        .collect()
}

/// Grants `permission` (declared by `plugin`, '' for the host) to `role`.
pub async fn grant(db: &Db, role: &str, permission: &str, plugin: &str) -> Result<(), DbError> {
    revoke(db, role, permission).await?;
    let sql = host_sql(
        db.dialect(),
        "INSERT INTO plinth_role_grants (role, permission, plugin, granted_at) VALUES (?, ?, ?, ?)",
    );
    sqlx::query(&sql)
        .bind(role)
        .bind(permission)
        .bind(plugin)
        .bind(now_ms())
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn revoke(db: &Db, role: &str, permission: &str) -> Result<bool, DbError> {
    let sql = host_sql(
        db.dialect(),
        "DELETE FROM plinth_role_grants WHERE role = ? AND permission = ?",
    );
    let done = sqlx::query(&sql)
        .bind(role)
        .bind(permission)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// What a set of roles adds up to: whether one is built in (the
/// super-admin), the widest data scope, and every granted code.
#[derive(Debug, Clone, Default)]
pub struct RolesEffect {
    pub builtin: bool,
    pub data_scope: String,
    pub codes: Vec<String>,
}

pub async fn effect_of_user_roles(db: &Db, user_id: i64) -> Result<RolesEffect, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT r.builtin, r.data_scope FROM plinth_roles r \
         JOIN plinth_user_roles u ON u.role = r.name WHERE u.user_id = ?",
    );
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(db.pool()).await?;
    let mut effect = RolesEffect::default();
    // Widest first: all > custom > department > self.
    let rank = |s: &str| match s {
        "all" => 4,
        "custom" => 3,
        "department" => 2,
        "self" => 1,
        _ => 0,
    };
    for row in &rows {
        effect.builtin |= text(row, "builtin")? == "Y";
        let scope = text(row, "data_scope")?;
        if rank(&scope) > rank(&effect.data_scope) {
            effect.data_scope = scope;
        }
    }
    if effect.data_scope.is_empty() {
        effect.data_scope = "self".to_owned();
    }
    let sql = host_sql(
        db.dialect(),
        "SELECT DISTINCT g.permission FROM plinth_role_grants g \
         JOIN plinth_user_roles u ON u.role = g.role WHERE u.user_id = ?",
    );
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(db.pool()).await?;
    effect.codes = rows
        .iter()
        .map(|r| text(r, "permission"))
        .collect::<Result<_, _>>()?;
    Ok(effect)
}

/// A row of `plinth_sessions`.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user_id: i64,
    pub token_version: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub user_id: i64,
    pub token_version: i64,
    pub expires_at: i64,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

pub async fn insert_session(db: &Db, session: &NewSession<'_>) -> Result<(), DbError> {
    let now = now_ms();
    let sql = host_sql(
        db.dialect(),
        "INSERT INTO plinth_sessions (id_hash, user_id, token_version, created_at, last_seen_at, \
         expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    sqlx::query(&sql)
        .bind(session.id_hash)
        .bind(session.user_id)
        .bind(session.token_version)
        .bind(now)
        .bind(now)
        .bind(session.expires_at)
        .bind(session.ip)
        .bind(session.user_agent)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn session(db: &Db, id_hash: &str) -> Result<Option<SessionRow>, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT user_id, token_version, created_at, expires_at FROM plinth_sessions \
         WHERE id_hash = ?",
    );
    let row = sqlx::query(&sql)
        .bind(id_hash)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| {
        Ok(SessionRow {
            user_id: r.try_get("user_id")?,
            token_version: r.try_get("token_version")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

pub async fn touch_session(db: &Db, id_hash: &str) -> Result<(), DbError> {
    let sql = host_sql(
        db.dialect(),
        "UPDATE plinth_sessions SET last_seen_at = ? WHERE id_hash = ?",
    );
    sqlx::query(&sql)
        .bind(now_ms())
        .bind(id_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn delete_session(db: &Db, id_hash: &str) -> Result<(), DbError> {
    let sql = host_sql(
        db.dialect(),
        "DELETE FROM plinth_sessions WHERE id_hash = ?",
    );
    sqlx::query(&sql).bind(id_hash).execute(db.pool()).await?;
    Ok(())
}

/// Drops sessions that expired or that a token-version change retired.
pub async fn delete_dead_sessions(db: &Db) -> Result<u64, DbError> {
    let sql = host_sql(
        db.dialect(),
        "DELETE FROM plinth_sessions WHERE expires_at < ? OR NOT EXISTS (SELECT 1 FROM \
         plinth_users u WHERE u.id = plinth_sessions.user_id \
         AND u.token_version = plinth_sessions.token_version)",
    );
    let done = sqlx::query(&sql).bind(now_ms()).execute(db.pool()).await?;
    Ok(done.rows_affected())
}

/// A row of `plinth_service_tokens` (never the token itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceTokenRow {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    /// 0 when never used.
    pub last_used_at: i64,
    /// 0 while the token is valid.
    pub revoked_at: i64,
}

fn token_from_row(row: &AnyRow) -> Result<ServiceTokenRow, DbError> {
    Ok(ServiceTokenRow {
        id: row.try_get("id")?,
        name: text(row, "name")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

const TOKEN_COLUMNS: &str = "id, name, created_at, last_used_at, revoked_at";

/// Inserts a token; `Ok(None)` when the name is taken.
pub async fn insert_service_token(
    db: &Db,
    name: &str,
    token_hash: &str,
) -> Result<Option<ServiceTokenRow>, DbError> {
    if service_token_by_name(db, name).await?.is_some() {
        return Ok(None);
    }
    let sql = host_sql(
        db.dialect(),
        "INSERT INTO plinth_service_tokens (name, token_hash, created_at, last_used_at, \
         revoked_at) VALUES (?, ?, ?, 0, 0)",
    );
    match sqlx::query(&sql)
        .bind(name)
        .bind(token_hash)
        .bind(now_ms())
        .execute(db.pool())
        .await
    {
        Ok(_) => service_token_by_name(db, name).await,
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub async fn service_token_by_name(
    db: &Db,
    name: &str,
) -> Result<Option<ServiceTokenRow>, DbError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM plinth_service_tokens WHERE name = ?");
    let row = sqlx::query(&host_sql(db.dialect(), &sql))
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(token_from_row).transpose()
}

pub async fn service_token_by_hash(
    db: &Db,
    token_hash: &str,
) -> Result<Option<ServiceTokenRow>, DbError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM plinth_service_tokens WHERE token_hash = ?");
    let row = sqlx::query(&host_sql(db.dialect(), &sql))
        .bind(token_hash)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(token_from_row).transpose()
}

pub async fn service_tokens(db: &Db) -> Result<Vec<ServiceTokenRow>, DbError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM plinth_service_tokens ORDER BY name");
    let rows = sqlx::query(&sql).fetch_all(db.pool()).await?;
    rows.iter().map(token_from_row).collect()
}

pub async fn revoke_service_token(db: &Db, id: i64) -> Result<bool, DbError> {
    let sql = host_sql(
        db.dialect(),
        "UPDATE plinth_service_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0",
    );
    let done = sqlx::query(&sql)
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn touch_service_token(db: &Db, id: i64) -> Result<(), DbError> {
    let sql = host_sql(
        db.dialect(),
        "UPDATE plinth_service_tokens SET last_used_at = ? WHERE id = ?",
    );
    sqlx::query(&sql)
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn service_token_grants(db: &Db, id: i64) -> Result<Vec<String>, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT permission FROM plinth_service_token_grants WHERE token_id = ? ORDER BY permission",
    );
    let rows = sqlx::query(&sql).bind(id).fetch_all(db.pool()).await?;
    rows.iter().map(|r| text(r, "permission")).collect()
}

pub async fn set_service_token_grants(
    db: &Db,
    id: i64,
    permissions: &[String],
) -> Result<(), DbError> {
    by_id(
        db,
        "DELETE FROM plinth_service_token_grants WHERE token_id = ?",
        id,
    )
    .await?;
    let sql = host_sql(
        db.dialect(),
        "INSERT INTO plinth_service_token_grants (token_id, permission, granted_at) \
         VALUES (?, ?, ?)",
    );
    // The grants are a set: a code named twice is granted once (the
    // table's key would refuse the second row).
    let unique: std::collections::BTreeSet<&str> = permissions.iter().map(String::as_str).collect();
    for permission in unique {
        sqlx::query(&sql)
            .bind(id)
            .bind(permission)
            .bind(now_ms())
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

/// One audit record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub actor_kind: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub ip: String,
    pub detail: String,
}

pub async fn insert_audit(db: &Db, entry: &AuditEntry) -> Result<(), DbError> {
    let sql = host_sql(
        db.dialect(),
        "INSERT INTO plinth_audit (at, actor, actor_kind, action, target, outcome, ip, detail) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    sqlx::query(&sql)
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.actor_kind)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.outcome)
        .bind(&entry.ip)
        .bind(&entry.detail)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// When each login last signed in, from the audit log's successful
/// `auth.sign_in` records (the sessions table forgets a sign-in at
/// sign-out); only `login`'s when given.
pub async fn last_sign_ins(
    db: &Db,
    login: Option<&str>,
) -> Result<std::collections::HashMap<String, i64>, DbError> {
    let mut sql = String::from(
        "SELECT actor, MAX(at) AS last_at FROM plinth_audit \
         WHERE action = 'auth.sign_in' AND outcome = 'ok'",
    );
    if login.is_some() {
        sql.push_str(" AND actor = ?");
    }
    sql.push_str(" GROUP BY actor");
    let sql = host_sql(db.dialect(), &sql);
    let mut query = sqlx::query(&sql);
    if let Some(login) = login {
        query = query.bind(login.to_owned());
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| Ok((text(r, "actor")?, r.try_get("last_at")?)))
        .collect()
}

/// Filters of an audit listing; newest first, `before` an id for paging.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

pub async fn audit(db: &Db, filter: &AuditFilter) -> Result<Vec<AuditEntry>, DbError> {
    let mut sql = String::from(
        "SELECT id, at, actor, actor_kind, action, target, outcome, ip, detail FROM plinth_audit \
         WHERE 1 = 1",
    );
    if filter.actor.is_some() {
        sql.push_str(" AND actor = ?");
    }
    if filter.action.is_some() {
        sql.push_str(" AND action = ?");
    }
    if filter.since.is_some() {
        sql.push_str(" AND at >= ?");
    }
    if filter.until.is_some() {
        sql.push_str(" AND at < ?");
    }
    if filter.before.is_some() {
        sql.push_str(" AND id < ?");
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    let sql = host_sql(db.dialect(), &sql);
    let mut query = sqlx::query(&sql);
    if let Some(actor) = &filter.actor {
        query = query.bind(actor.clone());
    }
    if let Some(action) = &filter.action {
        query = query.bind(action.clone());
    }
    for value in [filter.since, filter.until, filter.before]
        .into_iter()
        .flatten()
    {
        query = query.bind(value);
    }
    let rows = query.bind(filter.limit).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: text(r, "actor")?,
                actor_kind: text(r, "actor_kind")?,
                action: text(r, "action")?,
                target: text(r, "target")?,
                outcome: text(r, "outcome")?,
                ip: text(r, "ip")?,
                detail: text(r, "detail")?,
            })
        })
        .collect()
}
