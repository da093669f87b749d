//! The host's own tables: the installed plugin set and each plugin's
//! key-value store (the task run history is [`super::task_runs`]). Every
//! statement the host runs on these tables is written here.

use plinth_package::manifest::{Manifest, ManifestError};
use sqlx::Row;

use super::{Db, DbError, host_sql, now_ms};

/// A row of `plinth_plugins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPlugin {
    pub name: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub state: PluginState,
    /// The manifest as JSON, as validated at install time; read it with
    /// [`InstalledPlugin::manifest`], which validates it again.
    pub manifest: String,
    pub installed_at: i64,
    pub updated_at: i64,
}

/// Whether an installed plugin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginState {
    /// Serves its routes, menus and tasks.
    Enabled,
    /// Keeps its files, tables and data, serves nothing.
    Disabled,
}

impl PluginState {
    /// How the state is stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "enabled" => Some(Self::Enabled),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

impl std::fmt::Display for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a stored manifest could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredManifestError {
    #[error("it is not the JSON the host wrote: {0}")]
    Json(#[source] serde_json::Error),
    #[error("it no longer passes the manifest rules: {0}")]
    Invalid(#[source] ManifestError),
}

/// The form a manifest is stored in (`plinth_plugins.manifest`).
pub fn stored_manifest(manifest: &Manifest) -> String {
    // A manifest holds only strings, numbers, lists and maps with string
    // keys, which always serialize.
    serde_json::to_string(manifest).unwrap_or_default()
}

impl InstalledPlugin {
    /// The stored manifest, validated by [`Manifest::parse`] as if it had
    /// just come in a package, so nothing the host relies on (route, table
    /// prefix, dependencies) is taken from a row that no longer passes.
    pub fn manifest(&self) -> Result<Manifest, StoredManifestError> {
        let stored: Manifest =
            serde_json::from_str(&self.manifest).map_err(StoredManifestError::Json)?;
        Manifest::parse(&stored.to_toml()).map_err(StoredManifestError::Invalid)
    }

    pub fn is_enabled(&self) -> bool {
        self.state == PluginState::Enabled
    }
}

pub async fn installed_plugins(db: &Db) -> Result<Vec<InstalledPlugin>, DbError> {
    let rows = sqlx::query(
        "SELECT name, version, previous_version, state, manifest, installed_at, updated_at \
         FROM plinth_plugins ORDER BY name",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(plugin_from_row).collect()
}

pub async fn installed_plugin(db: &Db, name: &str) -> Result<Option<InstalledPlugin>, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT name, version, previous_version, state, manifest, installed_at, updated_at \
         FROM plinth_plugins WHERE name = ?",
    );
    let row = sqlx::query(&sql)
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(plugin_from_row).transpose()
}

/// Reads a text column. MySQL's TEXT types arrive as BLOBs through the
/// `Any` driver, so bytes are accepted when they are UTF-8.
pub fn text(row: &sqlx::any::AnyRow, column: &str) -> Result<String, DbError> {
    match row.try_get::<String, _>(column) {
        Ok(text) => Ok(text),
        Err(first) => {
            let bytes: Vec<u8> = row.try_get(column).map_err(|_| first)?;
            String::from_utf8(bytes).map_err(|e| {
                DbError::Sql(sqlx::Error::Decode(
                    format!("{column} is not UTF-8: {e}").into(),
                ))
            })
        }
    }
}

pub fn optional_text(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<String>, DbError> {
    let raw = sqlx::Row::try_get_raw(row, column)?;
    if sqlx::ValueRef::is_null(&raw) {
        return Ok(None);
    }
    text(row, column).map(Some)
}

fn plugin_from_row(row: &sqlx::any::AnyRow) -> Result<InstalledPlugin, DbError> {
    Ok(InstalledPlugin {
        name: text(row, "name")?,
        version: text(row, "version")?,
        previous_version: optional_text(row, "previous_version")?,
        state: {
            let stored = text(row, "state")?;
            PluginState::parse(&stored).ok_or_else(|| {
                DbError::Sql(sqlx::Error::Decode(
                    format!("plinth_plugins.state {stored:?} is neither enabled nor disabled")
                        .into(),
                ))
            })?
        },
        manifest: text(row, "manifest")?,
        installed_at: row.try_get("installed_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts or replaces the row for `plugin.name` on `conn`, so the
/// installer can write it inside its transaction, and reconciles the
/// grants of the codes its manifest declares ([`super::plugin_grants`]).
pub async fn upsert_plugin(
    conn: &mut sqlx::AnyConnection,
    plugin: &InstalledPlugin,
) -> Result<(), DbError> {
    let dialect = super::conn_dialect(conn);
    // The grants follow the manifest in the same transaction; the one being
    // replaced says which codes are new.
    let previous = sqlx::query(&host_sql(
        dialect,
        "SELECT manifest FROM plinth_plugins WHERE name = ?",
    ))
    .bind(&plugin.name)
    .fetch_optional(&mut *conn)
    .await?;
    let previous: Option<Manifest> = match previous {
        Some(row) => serde_json::from_str(&text(&row, "manifest")?).ok(),
        None => None,
    };
    if let Ok(next) = serde_json::from_str::<Manifest>(&plugin.manifest) {
        super::plugin_grants::reconcile(conn, previous.as_ref(), &next).await?;
    }
    let delete = host_sql(dialect, "DELETE FROM plinth_plugins WHERE name = ?");
    sqlx::query(&delete)
        .bind(&plugin.name)
        .execute(&mut *conn)
        .await?;
    let insert = host_sql(
        dialect,
        "INSERT INTO plinth_plugins \
         (name, version, previous_version, state, manifest, installed_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    sqlx::query(&insert)
        .bind(&plugin.name)
        .bind(&plugin.version)
        .bind(plugin.previous_version.clone())
        .bind(plugin.state.as_str())
        .bind(&plugin.manifest)
        .bind(plugin.installed_at)
        .bind(plugin.updated_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes the installed-set row of `name` with its key-value store and
/// the grants of its codes.
pub async fn delete_plugin(conn: &mut sqlx::AnyConnection, name: &str) -> Result<(), DbError> {
    let dialect = super::conn_dialect(conn);
    super::plugin_grants::remove_all(conn, name).await?;
    for sql in [
        "DELETE FROM plinth_plugins WHERE name = ?",
        "DELETE FROM plinth_plugin_kv WHERE plugin = ?",
    ] {
        sqlx::query(&host_sql(dialect, sql))
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn kv_get(db: &Db, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, DbError> {
    let sql = host_sql(
        db.dialect(),
        "SELECT v FROM plinth_plugin_kv WHERE plugin = ? AND k = ?",
    );
    let value: Option<(Vec<u8>,)> = sqlx::query_as(&sql)
        .bind(plugin)
        .bind(key)
        .fetch_optional(db.pool())
        .await?;
    Ok(value.map(|(v,)| v))
}

/// Stores a value, replacing an old one. Delete-then-insert in one
/// transaction keeps it portable across the three dialects' upsert syntaxes.
pub async fn kv_set(db: &Db, plugin: &str, key: &str, value: &[u8]) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let delete = host_sql(
        db.dialect(),
        "DELETE FROM plinth_plugin_kv WHERE plugin = ? AND k = ?",
    );
    sqlx::query(&delete)
        .bind(plugin)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    let insert = host_sql(
        db.dialect(),
        "INSERT INTO plinth_plugin_kv (plugin, k, v, updated_at) VALUES (?, ?, ?, ?)",
    );
    sqlx::query(&insert)
        .bind(plugin)
        .bind(key)
        .bind(value.to_vec())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn kv_delete(db: &Db, plugin: &str, key: &str) -> Result<bool, DbError> {
    let sql = host_sql(
        db.dialect(),
        "DELETE FROM plinth_plugin_kv WHERE plugin = ? AND k = ?",
    );
    let result = sqlx::query(&sql)
        .bind(plugin)
        .bind(key)
        .execute(db.pool())
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Drops every table whose name starts with `prefix` (a plugin's tables on
/// uninstall with `--drop-data`). Tables that foreign keys still point at
/// are retried after the others, until none is left or no progress is made.
pub async fn drop_tables_with_prefix(db: &Db, prefix: &str) -> Result<Vec<String>, DbError> {
    let catalog = match db.dialect() {
        super::Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        }
        super::Dialect::Postgres => {
            // information_schema names are of type `name`, which sqlx's Any
            // driver cannot read; cast to text.
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        }
        super::Dialect::Mysql => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name"
        }
    };
    let rows = sqlx::query(catalog).fetch_all(db.pool()).await?;
    let mut left: Vec<String> = Vec::new();
    for row in &rows {
        let name = text(row, "name")?;
        // Only names the scope guard would have let the plugin create.
        if name
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            left.push(name);
        }
    }
    let mut dropped = Vec::new();
    while !left.is_empty() {
        let before = left.len();
        let mut failed = Vec::new();
        let mut last_error = None;
        for table in left {
            let quoted = match db.dialect() {
                super::Dialect::Mysql => format!("`{table}`"),
                _ => format!("\"{table}\""),
            };
            match sqlx::raw_sql(&format!("DROP TABLE {quoted}"))
                .execute(db.pool())
                .await
            {
                Ok(_) => dropped.push(table),
                Err(e) => {
                    last_error = Some(e);
                    failed.push(table);
                }
            }
        }
        if failed.len() == before {
            return Err(last_error.map(DbError::Sql).unwrap_or_else(|| {
                DbError::Sql(sqlx::Error::Protocol("tables could not be dropped".into()))
            }));
        }
        left = failed;
    }
    Ok(dropped)
}
